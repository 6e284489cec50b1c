"""Who a document may speak for (issue 21, DESIGN §1 "Who may silence an alert", §3): a
``ca-watch/registrations/v1`` manifest may not claim an IoT Hub or DPS resource ID, and a
document names at most ``MAX_TARGETS`` targets. Pure, plus the blob function's analysis.
"""

from __future__ import annotations

import json

import pytest

from shared.alerts.rules import load_rules
from shared.analysis.listings import MAX_TARGETS, ListingError, parse_listing
from shared.analysis.scan import analyze_bytes
from shared.local import samples
from tests.registration_samples import DPS_ID, HUB_ID, SUB, arm_entry

CA = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=41)


def manifest(target: object, kind: str = "other") -> dict[str, object]:
    return {
        "schema": "ca-watch/registrations/v1",
        "target": target,
        "kind": kind,
        "certificates": [],  # the empty manifest that erased a hub's evidence
    }


ARM_TARGETS = {
    "hub id": HUB_ID,
    "DPS id": DPS_ID,
    "lower case": HUB_ID.lower(),
    "upper case": DPS_ID.upper(),
    "trailing slash": HUB_ID + "/",
    "white space around": f"  {HUB_ID}\n",
    "a certificate under it": HUB_ID + "/certificates/ca",
    "ARM URL": "https://management.azure.com" + HUB_ID,
    "doubled slash": HUB_ID.replace("/IotHubs/", "//IotHubs/"),
}


@pytest.mark.parametrize("target", ARM_TARGETS.values(), ids=ARM_TARGETS.keys())
@pytest.mark.parametrize("kind", ["other", "iot-central"])
def test_a_manifest_may_not_claim_a_hub_or_dps(target: str, kind: str) -> None:
    with pytest.raises(ListingError) as caught:
        parse_listing(manifest(target, kind))
    assert caught.value.code == "manifest-claims-arm-target"
    assert "az iot hub certificate list" in caught.value.message  # says what to upload instead


@pytest.mark.parametrize(
    "target",
    [
        "fleet-central",  # an IoT Central app subdomain
        "https://fleet-central.azureiotcentral.com",
        "partner-cloud/eu",
        f"{SUB}/providers/Microsoft.IoTCentral/iotApps/fleet-central",
    ],
)
def test_other_targets_stay_allowed(target: str) -> None:
    (listing,) = parse_listing(manifest(target, "iot-central"))
    assert listing.target == target.lower() and listing.certificates == ()


def test_the_refusal_reaches_the_upload_record_with_its_code() -> None:
    data = json.dumps(manifest(HUB_ID)).encode()
    result = analyze_bytes("erase-hub.json", data, load_rules())
    assert (str(result.status), str(result.error.code)) == (
        "unreadable",
        "manifest-claims-arm-target",
    )
    assert result.listing is None


def hubs(count: int) -> list[dict[str, object]]:
    return [
        arm_entry(HUB_ID.replace("Fleet-Hub", f"Hub-{index}"), "ca", CA, verified=True)
        for index in range(count)
    ]


def test_a_document_names_at_most_twenty_targets() -> None:
    assert MAX_TARGETS == 20
    assert len(parse_listing(hubs(MAX_TARGETS))) == MAX_TARGETS
    with pytest.raises(ListingError) as caught:
        parse_listing(hubs(MAX_TARGETS + 1))
    assert caught.value.code == "too-many-targets"
    assert "20" in caught.value.message
    result = analyze_bytes("many.json", json.dumps(hubs(1000)).encode(), load_rules())
    assert str(result.error.code) == "too-many-targets"


def test_many_certificates_of_one_hub_are_not_many_targets() -> None:
    entries = [
        arm_entry(HUB_ID, f"ca-{index}", CA, verified=index % 2 == 0) for index in range(100)
    ]
    (listing,) = parse_listing(entries)
    assert len(listing.certificates) == 1  # the same CA a hundred times: one entry


@pytest.mark.parametrize("document", [{"value": []}, []])
def test_an_empty_listing_names_no_target(document: object) -> None:
    # DESIGN §3: "an empty {"value": []} is an empty listing of no known target".
    with pytest.raises(ListingError) as caught:
        parse_listing(document)
    assert caught.value.code == "empty-listing"
