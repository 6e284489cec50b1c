"""What ``properties.certificate`` really holds, duplicates, and what a thumbprint may be
(issue 21, "Read the listings Azure really prints"). Pure: no storage.

Shapes credited:
- ARM's own examples list bodies as placeholders: Azure/azure-rest-api-specs,
  ``specification/iothub/resource-manager/Microsoft.Devices/stable/2023-06-30/examples/
  iothub_listcertificates.json`` (``"certificate": "####...####"``, thumbprint
  ``97388663832D0393C9246CAB4FBA2C8677185A25``) and the DPS
  ``DpsCertificate_List.json`` (2022-02-05) alike.
- ``az iot hub certificate create --path ca.pem`` sends the PEM file's text
  (azure-iot-cli-extension ``open_certificate``: the file decoded as UTF-8, trailing white
  space stripped); ARM lists it back as base64 of that text.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from shared.analysis.listings import (
    ListingError,
    normalize_thumbprint,
    parse_listing,
    read_listing_document,
)
from shared.local import samples
from shared.readers.arm_certificates import _listing as live_listing
from shared.settings import parse_registration_target
from tests.registration_samples import DPS_ID, HUB_ID, arm_entry

CA = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=41)
SHA1 = hashlib.sha1(CA.der, usedforsecurity=False).hexdigest().upper()
SHA256 = hashlib.sha256(CA.der).hexdigest()
# The ARM example's entry, verbatim but for the hub's resource id.
ARM_EXAMPLE_ENTRY: dict[str, Any] = {
    "properties": {
        "subject": "CN=testdevice1",
        "expiry": "Sat, 31 Dec 2039 23:59:59 GMT",
        "thumbprint": "97388663832D0393C9246CAB4FBA2C8677185A25",
        "isVerified": False,
        "created": "Thu, 12 Oct 2017 19:23:50 GMT",
        "updated": "Thu, 12 Oct 2017 19:23:50 GMT",
        "certificate": "############################################",
    },
    "id": f"{HUB_ID}/certificates/cert",
    "name": "cert",
    "type": "Microsoft.Devices/IotHubs/Certificates",
    "etag": "AAAAAAExpNs=",
}


def entry_with_body(body: str, *, thumbprint: str | None = SHA1) -> dict[str, Any]:
    entry = arm_entry(HUB_ID, "ca", CA, verified=True)
    entry["properties"]["certificate"] = body
    if thumbprint is None:
        del entry["properties"]["thumbprint"]
    else:
        entry["properties"]["thumbprint"] = thumbprint
    return entry


def only_certificate(document: object) -> Any:
    (listing,) = parse_listing(document)
    (certificate,) = listing.certificates
    return certificate


PEM_TEXT = CA.pem.decode().rstrip()  # what open_certificate sends
BODIES = {
    "base64 DER": base64.b64encode(CA.der).decode(),
    "base64 of the PEM file (az iot hub certificate create -p ca.pem)": base64.b64encode(
        PEM_TEXT.encode()
    ).decode(),
    "base64 of a CRLF PEM file": base64.b64encode(PEM_TEXT.replace("\n", "\r\n").encode()).decode(),
    "PEM text": PEM_TEXT,
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_every_body_azure_stores_gives_the_certificate(body: str) -> None:
    certificate = only_certificate([entry_with_body(body)])
    assert (certificate.thumbprint, certificate.sha256) == (SHA1, SHA256)
    # Without a thumbprint the body alone names the certificate.
    certificate = only_certificate([entry_with_body(body, thumbprint=None)])
    assert (certificate.thumbprint, certificate.sha256) == (SHA1, SHA256)


PLACEHOLDERS = ["############################################", "MA==", "####", "AAAA", "*"]


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_a_placeholder_body_keeps_the_thumbprint(placeholder: str) -> None:
    certificate = only_certificate([entry_with_body(placeholder)])
    assert (certificate.thumbprint, certificate.sha256, certificate.verified) == (
        SHA1,
        None,
        True,
    )


def test_the_arm_example_is_read_as_printed() -> None:
    document = {"value": [ARM_EXAMPLE_ENTRY]}
    (listing,) = parse_listing(document)
    assert (listing.kind, listing.display_name) == ("iot-hub", "Fleet-Hub")
    (certificate,) = listing.certificates
    assert (certificate.name, certificate.thumbprint, certificate.sha256) == (
        "cert",
        "97388663832D0393C9246CAB4FBA2C8677185A25",
        None,
    )
    dps_entry = {**ARM_EXAMPLE_ENTRY, "id": f"{DPS_ID}/certificates/cert"}
    (dps,) = parse_listing({"value": [dps_entry]})
    assert dps.kind == "dps" and dps.certificates[0].thumbprint == certificate.thumbprint


@pytest.mark.parametrize("body", [*BODIES.values(), *PLACEHOLDERS])
def test_upload_and_live_pull_read_the_same_listing(body: str) -> None:
    document = {"value": [entry_with_body(body), ARM_EXAMPLE_ENTRY]}
    uploaded = read_listing_document(json.dumps(document).encode()).listings
    target = parse_registration_target(HUB_ID)
    assert (live_listing(target, document["value"]),) == uploaded


def test_upload_and_live_pull_both_refuse_a_body_that_contradicts_its_thumbprint() -> None:
    other = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=42)
    document = {"value": [entry_with_body(base64.b64encode(other.der).decode())]}
    with pytest.raises(ListingError):
        read_listing_document(json.dumps(document).encode())
    with pytest.raises(ListingError):
        live_listing(parse_registration_target(HUB_ID), document["value"])


def test_a_placeholder_without_a_thumbprint_is_refused() -> None:
    with pytest.raises(ListingError) as caught:
        parse_listing([entry_with_body("####", thumbprint=None)])
    assert caught.value.code == "malformed-listing"
    assert "thumbprint" in caught.value.message


def test_a_readable_body_that_contradicts_the_thumbprint_is_refused() -> None:
    other = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=42)
    with pytest.raises(ListingError) as caught:
        parse_listing([entry_with_body(base64.b64encode(other.der).decode())])
    assert caught.value.message == "an entry's thumbprint does not match its body"


# --- the same CA twice ---------------------------------------------------------------------


@pytest.mark.parametrize("order", ["unverified first", "verified first"])
def test_the_same_ca_listed_twice_is_one_entry_and_verified_wins(order: str) -> None:
    unverified = arm_entry(HUB_ID, "ca-pending", CA, verified=False)
    verified = arm_entry(HUB_ID, "ca", CA, verified=True, with_body=True)
    entries = [unverified, verified] if order == "unverified first" else [verified, unverified]
    (listing,) = parse_listing(entries)
    (certificate,) = listing.certificates
    assert (certificate.name, certificate.verified, certificate.sha256) == ("ca", True, SHA256)


def test_the_same_ca_twice_in_a_manifest_is_one_entry() -> None:
    document = {
        "schema": "ca-watch/registrations/v1",
        "target": "partner",
        "certificates": [
            {"thumbprint": SHA1, "verified": False},
            {"thumbprint": SHA1.lower(), "verified": True, "name": "renewal"},
        ],
    }
    certificate = only_certificate(document)
    assert (certificate.thumbprint, certificate.verified, certificate.name) == (
        SHA1,
        True,
        "renewal",
    )


# --- a thumbprint is ASCII hex --------------------------------------------------------------

NOT_ASCII = {
    # U+FB00 LATIN SMALL LIGATURE FF upper-cases to "FF": 20 of them passed as 40 hex digits.
    "ligature ff": "\ufb00" * 20,
    "ligature inside": "\ufb00" + SHA1[2:],
    # Windows' certificate dialog copies a thumbprint with a left-to-right mark in front.
    "left-to-right mark": "\u200e" + SHA1,
    "fullwidth digits": "\uff10" * 40,
    "arabic-indic digits": "\u0660" * 40,
    "no-break spaces": " ".join(SHA1[i : i + 2] for i in range(0, 40, 2)).replace(" ", "\u00a0"),
}


@pytest.mark.parametrize("value", NOT_ASCII.values(), ids=NOT_ASCII.keys())
def test_a_thumbprint_holds_ascii_hex_only(value: str) -> None:
    with pytest.raises(ListingError) as caught:
        normalize_thumbprint(value)
    assert caught.value.code == "malformed-listing"
    with pytest.raises(ListingError):
        parse_listing([{"id": f"{HUB_ID}/certificates/a", "properties": {"thumbprint": value}}])


def test_ascii_separators_still_normalise() -> None:
    spaced = " ".join(SHA1[i : i + 2] for i in range(0, 40, 2)).lower()
    assert normalize_thumbprint(spaced) == SHA1
    assert normalize_thumbprint(SHA1.replace("", ":")[1:-1]) == SHA1


LOOK_ALIKE_IDS = {
    # U+017F LONG S matches "s" under re.IGNORECASE (as U+212A KELVIN SIGN matches "k").
    "long s in subscriptions": HUB_ID.replace("/subscriptions/", "/\u017fubscriptions/"),
    "long s in microsoft": HUB_ID.replace("Microsoft.Devices", "Micro\u017foft.Devices"),
    "long s in providers": HUB_ID.replace("/providers/", "/provider\u017f/"),
}


@pytest.mark.parametrize("parent", LOOK_ALIKE_IDS.values(), ids=LOOK_ALIKE_IDS.keys())
def test_a_resource_id_is_ascii(parent: str) -> None:
    entry = arm_entry(parent, "ca", CA, verified=True)
    with pytest.raises(ListingError) as caught:
        parse_listing([entry])
    assert caught.value.code == "malformed-listing"
