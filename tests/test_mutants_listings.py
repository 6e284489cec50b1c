"""Registration listings recognised by content (DESIGN §3): a table of documents as the
tools print them and what each gives (format, target, kind, display name, entries), and a
table of malformed ones with the exact reason the upload is refused.

Pure core. Bodies are short byte strings shaped like a signed DER structure (a SEQUENCE of
SEQUENCE, SEQUENCE, BIT STRING): the parser checks the base64 and that shape and hashes the
bytes; it does not parse the certificate.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from shared.analysis.listing_json import looks_like_listing
from shared.analysis.listings import (
    ListingError,
    RegisteredCertificate,
    SphereCaEntry,
    normalize_thumbprint,
    parse_listing_document,
    read_listing_document,
)

BODY = bytes.fromhex("30083000300003020001")
OTHER_BODY = bytes.fromhex("30083000300003020002")
BODY_SHA1 = hashlib.sha1(BODY, usedforsecurity=False).hexdigest().upper()
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()
B64 = base64.b64encode(BODY).decode()
PEM = f"-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----\n"
T1 = "0123456789ABCDEF0123456789ABCDEF01234567"
T2 = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"

SUB = "/subscriptions/0000/resourceGroups/Fleet-RG/providers/Microsoft.Devices"
HUB = f"{SUB}/IotHubs/Fleet-Hub"
HUB2 = f"{SUB}/IotHubs/Another-Hub"
DPS = f"{SUB}/provisioningServices/Fleet-DPS"
RFC1123 = "Tue, 01 Dec 2026 10:00:00 GMT"
DEC1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def arm(parent: str, cert: str, /, **props: Any) -> dict[str, Any]:
    return {"id": f"{parent}/certificates/{cert}", "name": cert, "properties": props}


def certs(document: object) -> list[tuple[Any, ...]]:
    return [
        (c.name, c.thumbprint, c.sha256, c.verified, c.subject, c.expiry)
        for listing in parse_listing_document(document).listings
        for c in listing.certificates
    ]


def targets(document: object) -> list[tuple[str, str, str, str, int]]:
    return [
        (li.target, li.kind, li.display_name, li.format, len(li.certificates))
        for li in parse_listing_document(document).listings
    ]


HUB_LISTING = {
    "value": [
        arm(HUB, "old", thumbprint=T1, isVerified=True, subject="CN=Old", expiry=RFC1123),
        arm(HUB, "new", thumbprint=T2.lower(), isVerified=False),
    ]
}


def test_hub_listing_wrapped_or_bare() -> None:
    for document in (HUB_LISTING, HUB_LISTING["value"]):
        result = parse_listing_document(document)
        assert result.format == "iot-hub-certificates" and result.sphere_entries == ()
        assert targets(document) == [
            (HUB.lower(), "iot-hub", "Fleet-Hub", "iot-hub-certificates", 2)
        ]
        assert certs(document) == [
            ("old", T1, None, True, "CN=Old", DEC1),
            ("new", T2, None, False, None, None),
        ]


def test_dps_listing_and_entries_grouped_by_target_in_id_order() -> None:
    dps = [arm(DPS, "a", thumbprint=T1, isVerified=True)]
    assert parse_listing_document(dps).format == "dps-certificates"
    assert targets(dps) == [(DPS.lower(), "dps", "Fleet-DPS", "dps-certificates", 1)]
    two_hubs = [
        arm(HUB, "a", thumbprint=T1, isVerified=True),
        arm(HUB2, "b", thumbprint=T2, isVerified=True),
        arm(HUB, "c", thumbprint=T2, isVerified=False),
    ]
    assert targets(two_hubs) == [
        (HUB2.lower(), "iot-hub", "Another-Hub", "iot-hub-certificates", 1),
        (HUB.lower(), "iot-hub", "Fleet-Hub", "iot-hub-certificates", 2),
    ]
    assert [c[0] for c in certs(two_hubs)] == ["b", "a", "c"]


@pytest.mark.parametrize(
    "spelling",
    [
        T1,
        T1.lower(),
        ":".join(T1[i : i + 2] for i in range(0, 40, 2)),
        " ".join(T1[i : i + 2] for i in range(0, 40, 2)).lower(),
        "-".join(T1[i : i + 4] for i in range(0, 40, 4)),
        f"\t{T1[:20]}\n{T1[20:]} ",
    ],
)
def test_thumbprints_in_any_spelling(spelling: str) -> None:
    assert normalize_thumbprint(spelling) == T1
    assert certs([arm(HUB, "a", thumbprint=spelling)])[0][1] == T1


def fields(
    name: str = "n",
    thumbprint: str = T1,
    sha256: str | None = None,
    verified: bool = False,
    expiry: datetime | None = None,
) -> tuple[Any, ...]:
    """(name, thumbprint, sha256, verified, subject, expiry) of one entry, subject unset."""
    return (name, thumbprint, sha256, verified, None, expiry)


PLUS2 = timezone(timedelta(hours=2))
ENTRY_FIELDS = [
    # (properties, entry name) -> what the entry says
    ({"thumbprint": T1}, "n", fields()),
    ({"certificate": B64, "isVerified": True}, "n", fields("n", BODY_SHA1, BODY_SHA256, True)),
    ({"certificate": PEM, "thumbprint": BODY_SHA1.lower()}, "n",
     fields("n", BODY_SHA1, BODY_SHA256)),
    ({"certificate": "", "thumbprint": T1}, "n", fields()),
    ({"certificate": None, "thumbprint": T1, "subject": 7}, "n", fields()),
    ({"thumbprint": T1}, "", fields("cert-from-id")),
    ({"thumbprint": T1}, None, fields("cert-from-id")),
    ({"thumbprint": T1, "expiry": "2026-12-01T10:00:00Z"}, "n", fields(expiry=DEC1)),
    ({"thumbprint": T1, "expiry": "2026-12-01T10:00:00"}, "n", fields(expiry=DEC1)),
    ({"thumbprint": T1, "expiry": "2026-12-01T12:00:00+02:00"}, "n",
     fields(expiry=datetime(2026, 12, 1, 12, tzinfo=PLUS2))),
    ({"thumbprint": T1, "expiry": "Tue, 01 Dec 2026 10:00:00 -0000"}, "n", fields(expiry=DEC1)),
    ({"thumbprint": T1, "expiry": "  "}, "n", fields()),
    ({"thumbprint": T1, "expiry": 20261201}, "n", fields()),
    # A body that is no certificate is a placeholder: the thumbprint names the entry.
    ({"thumbprint": T1, "certificate": "not base64!"}, "n", fields()),
    ({"thumbprint": T1, "certificate": "QUJD"}, "n", fields()),
    ({"thumbprint": T1, "certificate": "MA=="}, "n", fields()),
    ({"thumbprint": T1, "certificate": "caf\u00e9"}, "n", fields()),
    ({"thumbprint": T1, "certificate": base64.b64encode(BODY + b"\x00").decode()}, "n",
     fields()),
    ({"thumbprint": T1, "certificate": base64.b64encode(PEM.encode()).decode()[:-4]}, "n",
     fields()),
    ({"thumbprint": T1, "certificate": "-----BEGIN X-----\nQUJD\n-----END X-----"}, "n",
     fields()),
    ({"thumbprint": T1, "certificate": PEM.replace(B64, "!!!!")}, "n", fields()),
    ({"thumbprint": T1, "certificate": PEM.replace(B64, "QUJD")}, "n", fields()),
    # Base64 of the PEM file (az iot hub certificate create -p), a bundle's first block.
    ({"certificate": base64.b64encode(PEM.encode()).decode()}, "n",
     fields("n", BODY_SHA1, BODY_SHA256)),
    ({"certificate": base64.b64encode((PEM + PEM.replace(B64, "MA==")).encode()).decode()},
     "n", fields("n", BODY_SHA1, BODY_SHA256)),
    ({"certificate": "-----BEGIN X509 CERTIFICATE-----\n" + B64 + "\n-----END X509 "
      "CERTIFICATE-----"}, "n", fields("n", BODY_SHA1, BODY_SHA256)),
]  # fmt: skip


@pytest.mark.parametrize(("props", "name", "expected"), ENTRY_FIELDS)
def test_hub_entry_fields(props: dict[str, Any], name: str | None, expected: tuple) -> None:
    entry = {"id": f"{HUB}/certificates/cert-from-id", "properties": props}
    if name is not None:
        entry["name"] = name
    (found,) = certs([entry])
    assert found == expected
    if found[5] is not None:
        assert found[5].utcoffset() is not None  # always an aware time


def test_an_id_with_a_trailing_slash_or_in_any_case_is_the_same_target() -> None:
    entry = {
        "id": HUB.upper() + "/CERTIFICATES/x/",
        "properties": {"thumbprint": T1},
    }
    assert targets([entry]) == [(HUB.lower(), "iot-hub", "FLEET-HUB", "iot-hub-certificates", 1)]
    assert certs([entry])[0][0] == "x"  # no "name": the id's last part


def manifest(**fields: Any) -> dict[str, Any]:
    return {"schema": "ca-watch/registrations/v1", "target": " Partner-Cloud ", **fields}


def test_manifest() -> None:
    document = manifest(
        certificates=[
            {"thumbprint": T1.lower(), "verified": True, "name": "primary"},
            {"certificate": B64},
        ]
    )
    result = parse_listing_document(document)
    assert result.format == "ca-watch-registrations" and result.sphere_entries == ()
    assert targets(document) == [
        ("partner-cloud", "other", "Partner-Cloud", "ca-watch-registrations", 2)
    ]
    assert certs(document) == [
        ("primary", T1, None, True, None, None),
        ("", BODY_SHA1, BODY_SHA256, False, None, None),
    ]
    central = manifest(kind="iot-central", certificates=[])
    assert targets(central) == [
        ("partner-cloud", "iot-central", "Partner-Cloud", "ca-watch-registrations", 0)
    ]


SPHERE = [
    # entry -> (thumbprint, body, is_active, is_revoked)
    ({"Certificate": B64, "Thumbprint": BODY_SHA1, "IsActive": True, "IsRevoked": False},
     (BODY_SHA1, BODY, True, False)),
    ({"thumbprint": T1.lower(), "status": "Active"}, (T1, None, True, False)),
    ({"thumbprint": T1, "status": "revoked"}, (T1, None, False, True)),
    ({"thumbprint": T1, "status": "Retired"}, (T1, None, False, False)),
    ({"thumbprint": T1, "status": "Active", "isActive": False, "isRevoked": True},
     (T1, None, False, True)),
    ({"thumbprint": T1}, (T1, None, None, None)),
    ({"thumbprint": T1, "isActive": "yes", "isRevoked": 1, "status": 3}, (T1, None, None, None)),
    ({"THUMBPRINT": T1, "CERTIFICATE": ""}, (T1, None, None, None)),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "expected"), SPHERE)
def test_azure_sphere_ca_list(entry: dict[str, Any], expected: tuple) -> None:
    for document in ([entry], {"value": [entry]}):
        result = parse_listing_document(document)
        assert result.format == "azure-sphere-ca-list" and result.listings == ()
        (found,) = result.sphere_entries
        assert (found.thumbprint, found.der, found.is_active, found.is_revoked) == expected


def test_sphere_entry_json() -> None:
    assert SphereCaEntry(BODY_SHA1, BODY, True, False).to_json() == {
        "thumbprint": BODY_SHA1,
        "sha256": BODY_SHA256,
        "is_active": True,
        "is_revoked": False,
        "status": None,
    }
    assert SphereCaEntry(T1, None, None, None, "Revoked").to_json() == {
        "thumbprint": T1,
        "sha256": None,
        "is_active": None,
        "is_revoked": None,
        "status": "Revoked",
    }


M = "malformed-listing"
ARM_ID = "an entry's id is not an IoT Hub, DPS or Azure Sphere catalog certificate id"
MIXES = "a listing mixes the certificates of IoT Hubs, DPSs or Azure Sphere catalogs"
NEITHER = "an entry has neither a thumbprint nor a readable certificate"
ID = f"{HUB}/certificates/a"
MALFORMED = [
    ({"value": "x"}, M, 'a listing object needs a "value" array'),
    ({"schema": "ca-watch/scan/v1"}, M, 'a listing object needs a "value" array'),
    ("text", M, "a listing is an object or an array"),
    (None, M, "a listing is an object or an array"),
    ([], "empty-listing", "the listing holds no certificates"),
    ({"value": []}, "empty-listing", "the listing holds no certificates"),
    ([1], M, "the listing's entries have no known shape"),
    ([{"name": "x"}], M, "the listing's entries have no known shape"),
    ([arm(HUB, "a", thumbprint=T1), {"thumbprint": T1}], M,
     "the listing's entries have no known shape"),
    ([{"id": "/not/an/arm/id", "properties": {"thumbprint": T1}}], M,
     ARM_ID),
    ([{"properties": {"thumbprint": T1}}], M, ARM_ID),
    ([{"id": HUB, "properties": {"thumbprint": T1}}], M, ARM_ID),
    ([{"id": ID, "properties": [T1]}], M, "an entry's properties is not an object"),
    ([arm(HUB, "a", thumbprint=T1), arm(DPS, "a", thumbprint=T1)], M, MIXES),
    ([arm(HUB, "a", thumbprint=5)], M, "a thumbprint is not a string"),
    ([arm(HUB, "a", thumbprint="zz")], M, "a thumbprint is not 40 hex digits (SHA-1)"),
    ([arm(HUB, "a", thumbprint=T1 + "0")], M, "a thumbprint is not 40 hex digits (SHA-1)"),
    ([arm(HUB, "a", thumbprint="G" + T1[1:])], M, "a thumbprint is not 40 hex digits (SHA-1)"),
    ([arm(HUB, "a")], M, NEITHER),
    ([arm(HUB, "a", certificate="")], M, NEITHER),
    ([arm(HUB, "a", thumbprint=T1, certificate=B64)], M,
     "an entry's thumbprint does not match its body"),
    ([arm(HUB, "a", thumbprint=T1, isVerified="yes")], M,
     "a verified flag is not true or false"),
    ([arm(HUB, "a", thumbprint=T1, isVerified=None)], M, "a verified flag is not true or false"),
    ([arm(HUB, "a", certificate=5)], M, "a certificate body is not text"),
    ([arm(HUB, "a", certificate="not base64!")], M, NEITHER),
    ([arm(HUB, "a", certificate=B64[:4] + "!" + B64[4:])], M, NEITHER),
    ([arm(HUB, "a", certificate="QUJD")], M, NEITHER),
    ([arm(HUB, "a", certificate="MA==")], M, NEITHER),
    ([arm(HUB, "a", certificate=PEM.replace("CERTIFICATE", "PRIVATE KEY"))], "private-key-material",
     "a certificate body holds a private key; it was not stored. Upload the listing only and "
     "keep the key secret"),
    ([arm(HUB, "a", thumbprint="\ufb00" * 20)], M,
     "a thumbprint holds a character that is not ASCII"),
    ([arm(HUB, "a", thumbprint=T1, expiry="soon")], M, "an expiry is not an RFC 1123 date"),
    (manifest(target=None), M, 'the manifest needs a "target" string'),
    (manifest(target="  "), M, 'the manifest needs a "target" string'),
    (manifest(target=7), M, 'the manifest needs a "target" string'),
    (manifest(kind="iot-hub", certificates=[]), M, 'a manifest "kind" is iot-central or other'),
    (manifest(), M, 'the manifest needs a "certificates" array'),
    (manifest(certificates={"thumbprint": T1}), M, 'the manifest needs a "certificates" array'),
    (manifest(certificates=[T1]), M, "a manifest certificate is not an object"),
    (manifest(certificates=[{"thumbprint": T1, "verified": "no"}]), M,
     "a verified flag is not true or false"),
    ([{"Thumbprint": T1, "Certificate": base64.b64encode(OTHER_BODY).decode()}], M,
     "an entry's thumbprint does not match its body"),
    ([{"Thumbprint": "x"}], M, "a thumbprint is not 40 hex digits (SHA-1)"),
]  # fmt: skip


@pytest.mark.parametrize(("document", "code", "reason"), MALFORMED)
def test_malformed_listing_says_why(document: object, code: str, reason: str) -> None:
    with pytest.raises(ListingError) as caught:
        parse_listing_document(document)
    assert (caught.value.code, caught.value.message) == (code, reason)
    assert str(caught.value) == f"{code}: {reason}"


def test_entry_count_limit() -> None:
    entry = {"thumbprint": T1}
    assert len(parse_listing_document([entry] * 10_000).sphere_entries) == 10_000
    with pytest.raises(ListingError) as caught:
        parse_listing_document([entry] * 10_001)
    assert str(caught.value) == "malformed-listing: more than 10000 entries"
    distinct = [{"thumbprint": f"{index:040X}"} for index in range(10_001)]
    with pytest.raises(ListingError) as caught:
        parse_listing_document(manifest(certificates=distinct))
    assert caught.value.message == 'the manifest needs a "certificates" array'
    (at_limit,) = parse_listing_document(manifest(certificates=distinct[:10_000])).listings
    assert len(at_limit.certificates) == 10_000


def encoded(document: object, encoding: str) -> bytes:
    return json.dumps(document).encode(encoding)


@pytest.mark.parametrize(
    "data",
    [
        encoded(HUB_LISTING, "utf-8"),
        b"\xef\xbb\xbf" + encoded(HUB_LISTING, "utf-8"),
        encoded(HUB_LISTING, "utf-16"),  # with its byte-order mark
        b"\xfe\xff" + encoded(HUB_LISTING, "utf-16-be"),
        b"\xff\xfe" + encoded(HUB_LISTING, "utf-16-le"),
        b" \r\n\t" + encoded(HUB_LISTING["value"], "utf-8"),
    ],
)
def test_listing_bytes_in_every_encoding_the_tools_write(data: bytes) -> None:
    assert looks_like_listing(data)
    document = read_listing_document(data)
    assert [(li.display_name, len(li.certificates)) for li in document.listings] == [
        ("Fleet-Hub", 2)
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"thumbprint": "\xff"}', "the listing is not UTF-8 or UTF-16 text"),
        (b"\xff\xfe\x00\xd8", "the listing is not UTF-8 or UTF-16 text"),  # lone surrogate
        (b'{"thumbprint": ', "the listing is not valid JSON"),
        (b"[" * 100_000, "the listing is not valid JSON"),
    ],
)
def test_unreadable_listing_bytes(data: bytes, reason: str) -> None:
    with pytest.raises(ListingError) as caught:
        read_listing_document(data)
    assert (caught.value.code, caught.value.message) == ("malformed-listing", reason)


SNIFF = [
    (b'{"thumbprint": 1}', True),
    (b'  [{"Thumbprint" : 1}]', True),
    (b'{"THUMBPRINT":1}', True),
    (b'{"schema" : "ca-watch/registrations/v1"}', True),
    (b'{"thumbprint": "\xff"}', True),  # read_listing_document then says it is not text
    (b"\xef\xbb\xbf" + b'{"thumbprint": 1}', True),
    ('{"thumbprint": 1}'.encode("utf-16"), True),
    (b"\xef\xbb\xbf" + b"thumbprint: 1", False),
    ("thumbprint: 1".encode("utf-16"), False),
    (b'{"sha1_thumbprint": "AB"}', False),
    (b'{"schema": "ca-watch/scan/v1"}', False),
    (b'{"name": "thumbprint"}', False),
    (b"-----BEGIN CERTIFICATE-----\n", False),
    (b"0\x82\x01\x00", False),
    (b"", False),
    (b'x{"thumbprint": 1}', False),
    (b"\x00{" + b'"thumbprint": 1}', False),
]


@pytest.mark.parametrize(("data", "expected"), SNIFF)
def test_sniff(data: bytes, expected: bool) -> None:
    assert looks_like_listing(data) is expected


def test_registered_certificate_defaults() -> None:
    (found,) = parse_listing_document([arm(HUB, "a", thumbprint=T1)]).listings[0].certificates
    assert found == RegisteredCertificate("a", T1, None, False)


GROUPS_NEED_TARGET = (
    "enrollment-groups-need-target",
    "enrollment groups do not say which DPS or IoT Central app they belong to: upload them "
    "with `ca-watch upload --dps DPS_RESOURCE_ID groups.json certificates.json`, or wrap them "
    'in a {"schema": "ca-watch/enrollment-groups/v1", "target": ...} envelope '
    "(docs/listings.md)",
)
NO_VALUE = (M, 'a listing object needs a "value" array')
REFUSALS = [
    # A raw enrollment group names no target: refused with what to do instead.
    ({"enrollmentGroupId": "fleet"}, GROUPS_NEED_TARGET),
    ({"Attestation": {"type": "x509"}}, GROUPS_NEED_TARGET),
    ([{"enrollmentGroupId": "a"}, {"enrollmentGroupId": "b"}], GROUPS_NEED_TARGET),
    ({"verified": True, "info": {"sha1Thumbprint": T1}}, GROUPS_NEED_TARGET),  # IoT Central slot
    ({"Verified": False, "INFO": {}}, GROUPS_NEED_TARGET),
    # Half a slot is no group: the plain "no value array" refusal.
    ({"info": {"sha1Thumbprint": T1}}, NO_VALUE),
    ({"verified": True}, NO_VALUE),
    # The envelope is enrollment_envelope's to read, whatever its key's case.
    ({"schema": "ca-watch/enrollment-groups/v1", "target": DPS}, (
        M, "an enrollment group envelope is read by enrollment_envelope")),
    ({"Schema": "ca-watch/enrollment-groups/v1", "enrollmentGroups": []}, (
        M, "an enrollment group envelope is read by enrollment_envelope")),
    (manifest(target=HUB, certificates=[]), (
        "manifest-claims-arm-target",
        "a manifest may not speak for an IoT Hub or DPS: upload what `az iot hub certificate "
        "list` or `az iot dps certificate list` prints instead")),
    ([arm(f"{SUB}/IotHubs/Hub-{n}", "ca", thumbprint=T1) for n in range(21)], (
        "too-many-targets",
        "the listing names more than 20 targets; upload one listing per hub, DPS or catalog "
        "(as `az iot hub certificate list` prints it)")),
]  # fmt: skip


@pytest.mark.parametrize(("document", "expected"), REFUSALS)
def test_refusals_say_exactly_why(document: object, expected: tuple[str, str]) -> None:
    with pytest.raises(ListingError) as caught:
        parse_listing_document(document)
    assert (caught.value.code, caught.value.message) == expected


def test_an_object_with_a_value_array_is_read_by_its_value_even_beside_a_group_key() -> None:
    document = {**HUB_LISTING, "enrollmentGroupId": "ignored", "attestation": {}}
    assert targets(document) == [(HUB.lower(), "iot-hub", "Fleet-Hub", "iot-hub-certificates", 2)]


def test_a_ca_listed_twice_keeps_one_entry_verified_wins_and_the_body_is_kept() -> None:
    """``az iot hub certificate create`` twice (once left unverified, once verified): one
    CA, registered, with the body either entry carried."""
    unverified_body = arm(HUB, "first", certificate=B64, isVerified=False)
    verified_thumb = arm(HUB, "second", thumbprint=BODY_SHA1, isVerified=True)
    later_verified = certs([unverified_body, verified_thumb])
    assert later_verified == [("second", BODY_SHA1, BODY_SHA256, True, None, None)]
    earlier_verified = certs([verified_thumb, unverified_body])
    assert earlier_verified == [("second", BODY_SHA1, BODY_SHA256, True, None, None)]
    # Neither verified, or both: the first seen wins (its name), the body still kept.
    both_unverified = certs(
        [
            arm(HUB, "a", thumbprint=BODY_SHA1),
            arm(HUB, "b", certificate=B64),
            arm(HUB, "c", thumbprint=BODY_SHA1),
        ]
    )
    assert both_unverified == [("a", BODY_SHA1, BODY_SHA256, False, None, None)]
    both_verified = certs(
        [
            arm(HUB, "a", thumbprint=T1, isVerified=True),
            arm(HUB, "b", thumbprint=T1, isVerified=True),
        ]
    )
    assert both_verified == [("a", T1, None, True, None, None)]


def test_an_unknown_catalog_status_is_kept_up_to_64_characters() -> None:
    status = "S" * 64 + "tail"
    (entry,) = parse_listing_document(
        [{"thumbprint": T1, "status": f"  {status}  "}]
    ).sphere_entries
    assert entry.status == "S" * 64
