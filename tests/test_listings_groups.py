"""Uploads of enrollment groups (issue 22): ``az iot dps enrollment-group list`` / ``show``
and the IoT Central group and slot documents name no target, so they are refused with a
code that says how to upload them, and read inside a ``ca-watch/enrollment-groups/v1``
envelope with the same parser the live readers use. Pure, plus the blob function's
analysis.

Group shapes: tests/enrollment_samples.py (Microsoft's REST examples, credited there). The
DPS certificate list: tests/registration_samples.py (``az iot dps certificate list``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.alerts.registration import GroupSlot
from shared.alerts.rules import load_rules
from shared.analysis.enrollment_envelope import parse_uploaded_listing, read_uploaded_listing
from shared.analysis.enrollment_listings import central_group, central_listing, dps_groups
from shared.analysis.listing_json import looks_like_listing
from shared.analysis.listings import ListingError, parse_listing_document
from shared.analysis.scan import analyze_bytes
from shared.local import samples
from tests import enrollment_samples as groups
from tests.registration_samples import DPS_ID, HUB_ID, arm_listing

OLD = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=41)
NEW = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=42)
THUMB = "644543467786B60C14DFE6B7C968A1990CF63EAC"
DPS_CERTIFICATES = json.loads(
    arm_listing(DPS_ID, [("tenant-ca", OLD, True), ("renewal", NEW, True)])
)
DPS_GROUPS = [
    groups.dps_ca_reference_group("sphere", "tenant-ca", "renewal"),
    groups.dps_inline_group("inline", THUMB),
    groups.dps_ca_reference_group("retired", "tenant-ca", enabled=False),
    groups.dps_symmetric_key_group("keys"),
]


def envelope(target: str = DPS_ID, **fields: Any) -> dict[str, Any]:
    return {
        "schema": "ca-watch/enrollment-groups/v1",
        "target": target,
        "certificates": DPS_CERTIFICATES,
        "groups": DPS_GROUPS,
        **fields,
    }


def refusal(document: object) -> ListingError:
    with pytest.raises(ListingError) as caught:
        parse_uploaded_listing(document)
    return caught.value


RAW = {
    "az iot dps enrollment-group list": DPS_GROUPS,
    "az iot dps enrollment-group show": DPS_GROUPS[0],
    "IoT Central group list": {"value": [groups.central_group("sphere")]},
    "IoT Central group": groups.central_group("sphere"),
    "IoT Central slot": groups.central_slot(THUMB),
}


@pytest.mark.parametrize("document", RAW.values(), ids=RAW.keys())
def test_raw_groups_are_refused_with_a_code_that_says_how(document: object) -> None:
    data = json.dumps(document, indent=2).encode()
    assert looks_like_listing(data)
    error = refusal(document)
    assert error.code == "enrollment-groups-need-target"
    assert "ca-watch upload --dps" in error.message and "envelope" in error.message
    result = analyze_bytes("groups.json", data, load_rules())
    assert (str(result.status), str(result.error.code)) == (
        "unreadable",
        "enrollment-groups-need-target",
    )


def test_a_dps_envelope_is_one_snapshot_of_certificates_and_groups() -> None:
    (listing,) = parse_uploaded_listing(envelope()).listings
    assert (listing.target, listing.kind, listing.display_name, listing.format) == (
        DPS_ID.lower(),
        "dps",
        "Fleet-DPS",
        "dps-enrollment-groups",
    )
    (from_list,) = parse_listing_document(DPS_CERTIFICATES).listings
    assert listing.certificates == from_list.certificates  # the names the groups point at
    assert listing.groups == dps_groups(DPS_GROUPS)  # the live readers' parser
    sphere = listing.groups[0]
    assert sphere.slots == (
        GroupSlot("primary", None, "tenant-ca"),
        GroupSlot("secondary", None, "renewal"),
    )
    assert [g.enabled for g in listing.groups] == [True, True, False, True]


def test_the_blob_function_reads_the_envelope() -> None:
    data = json.dumps(envelope(), indent=2).encode("utf-16")  # PowerShell 5.1 writes UTF-16
    assert looks_like_listing(data)
    result = analyze_bytes("fleet-dps-groups.json", data, load_rules())
    assert str(result.status) == "analyzed" and result.format == "dps-enrollment-groups"
    (listing,) = result.listing.listings
    assert len(listing.groups) == 4 and len(listing.certificates) == 2
    assert result.to_json()["listing"]["targets"][0]["target"] == DPS_ID.lower()
    assert read_uploaded_listing(data) == result.listing


def test_show_output_and_an_empty_certificate_list_are_read() -> None:
    (listing,) = parse_uploaded_listing(
        envelope(certificates={"value": []}, groups=DPS_GROUPS[1])
    ).listings
    assert listing.certificates == () and [g.group_id for g in listing.groups] == ["inline"]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (envelope(certificates=None), 'needs "certificates"'),
        ({k: v for k, v in envelope().items() if k != "certificates"}, 'needs "certificates"'),
        (
            envelope(certificates=json.loads(arm_listing(HUB_ID, [("a", OLD, True)]))),
            "not the certificate list of its target DPS",
        ),
        (
            envelope(
                certificates=json.loads(
                    arm_listing(DPS_ID.replace("Fleet-DPS", "Other-DPS"), [("a", OLD, True)])
                )
            ),
            "not the certificate list of its target DPS",
        ),
        (envelope(kind="iot-central"), 'an envelope "kind" is dps'),
        (envelope(target="fleet-central", kind="dps"), 'an envelope "kind" is dps'),
        (envelope(target=" "), 'needs a "target" string'),
        (envelope(groups="sphere"), 'needs a "groups" array'),
        (envelope(groups=[DPS_GROUPS[0], DPS_GROUPS[0]]), "an enrollment group id appears twice"),
    ],
)
def test_a_malformed_envelope_says_why(document: dict[str, Any], reason: str) -> None:
    error = refusal(document)
    assert error.code == "malformed-listing" and reason in error.message


# --- IoT Central ---------------------------------------------------------------------------


def central_envelope(target: str = "fleet-central") -> dict[str, Any]:
    return {
        "schema": "ca-watch/enrollment-groups/v1",
        "target": target,
        "groups": [
            {
                "group": groups.central_group("sphere"),
                "primary": groups.central_slot(THUMB),
                "secondary": groups.central_slot(
                    "A1B2C3D4E5F60718293A4B5C6D7E8F9011223344", verified=False
                ),
            },
            {"group": groups.central_group("keys", x509=False)},
            {
                "group": groups.central_group("off", enabled=False),
                "primary": groups.central_slot(THUMB),
            },
        ],
    }


@pytest.mark.parametrize(
    "target", ["fleet-central", "Fleet-Central", "https://fleet-central.azureiotcentral.com/"]
)
def test_an_iot_central_envelope_reads_as_the_live_reader_does(target: str) -> None:
    (listing,) = parse_uploaded_listing(central_envelope(target)).listings
    live = central_listing(
        "fleet-central",
        (
            central_group(
                groups.central_group("sphere"),
                groups.central_slot(THUMB),
                groups.central_slot("A1B2C3D4E5F60718293A4B5C6D7E8F9011223344", verified=False),
            ),
            central_group(groups.central_group("keys", x509=False), None, None),
            central_group(
                groups.central_group("off", enabled=False), groups.central_slot(THUMB), None
            ),
        ),
    )
    assert listing == live
    assert (listing.target, listing.kind) == ("fleet-central", "iot-central")


@pytest.mark.parametrize(
    "document",
    [
        envelope(target=HUB_ID),  # groups belong to a DPS or an app, never to a hub
        {**central_envelope(HUB_ID), "kind": "iot-central"},
        {**central_envelope("https://management.azure.com" + DPS_ID), "kind": "iot-central"},
    ],
)
def test_an_iot_central_envelope_may_not_name_a_hub_or_dps(document: dict[str, Any]) -> None:
    assert refusal(document).code == "manifest-claims-arm-target"


def test_an_iot_central_envelope_lists_group_objects() -> None:
    error = refusal({**central_envelope(), "groups": [groups.central_group("sphere")]})
    assert error.code == "malformed-listing" and '"group"' in error.message
