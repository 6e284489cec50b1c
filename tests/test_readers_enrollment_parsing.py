"""The pure enrollment group parser (shared/analysis/enrollment_listings.py), shared by the
live readers and uploads. Fixture shapes: tests/enrollment_samples.py (credits there)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest

from shared.alerts.registration import EnrollmentGroup, GroupSlot
from shared.analysis.enrollment_listings import central_group, central_listing, dps_groups
from shared.analysis.listings import ListingError
from tests import analyzer_samples
from tests import enrollment_samples as samples

OLD = "644543467786B60C14DFE6B7C968A1990CF63EAC"
NEW = "A1B2C3D4E5F60718293A4B5C6D7E8F9011223344"


def test_dps_ca_references_become_named_slots_and_status_becomes_enabled() -> None:
    groups = dps_groups(
        [
            samples.dps_ca_reference_group("sphere", "tenant-ca-2025", "tenant-ca-2026"),
            samples.dps_ca_reference_group("old", "tenant-ca-2024", enabled=False),
        ]
    )
    assert groups == (
        EnrollmentGroup(
            "sphere",
            True,
            (
                GroupSlot("primary", None, "tenant-ca-2025"),
                GroupSlot("secondary", None, "tenant-ca-2026"),
            ),
        ),
        EnrollmentGroup("old", False, (GroupSlot("primary", None, "tenant-ca-2024"),)),
    )


def test_dps_inline_signing_certificates_become_thumbprint_slots_upper_case() -> None:
    (group,) = dps_groups([samples.dps_inline_group("inline", OLD.lower(), NEW)])
    assert group.slots == (GroupSlot("primary", OLD, ""), GroupSlot("secondary", NEW, ""))
    assert group.enabled


def test_dps_inline_certificate_body_without_info_gives_its_sha1() -> None:
    der = analyzer_samples.tenant().der
    obj = samples.dps_inline_group("inline", OLD)
    obj["attestation"]["x509"]["signingCertificates"]["primary"] = {
        "certificate": base64.b64encode(der).decode(),
        "info": None,
    }
    (group,) = dps_groups([obj])
    assert group.slots[0].thumbprint == hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def test_a_key_based_dps_group_covers_nothing_but_is_counted() -> None:
    (group,) = dps_groups([samples.dps_symmetric_key_group("keys")])
    assert group == EnrollmentGroup("keys", True, ())


def test_attestation_type_none_of_the_published_query_example_covers_nothing() -> None:
    # EnrollmentGroup_Query_MaximumSet_Gen.json carries "type": "none" with every form
    # filled: generated nonsense, but it must read as a group that covers nothing.
    example = copy.deepcopy(samples.dps_ca_reference_group("sfsevlobqfdnqmghunj", "x"))
    example["attestation"]["type"] = "none"
    assert dps_groups([example]) == (EnrollmentGroup("sfsevlobqfdnqmghunj", True, ()),)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda g: g.pop("enrollmentGroupId"), "no valid id"),
        (lambda g: g.update(provisioningStatus="paused"), "provisioningStatus"),
        (lambda g: g.update(attestation=None), "no attestation"),
        (lambda g: g["attestation"].update(type="jwt"), "attestation type"),
        (lambda g: g["attestation"].update(x509=[]), "no x509 object"),
        (lambda g: g["attestation"]["x509"].update(caReferences="a"), "caReferences"),
        (lambda g: g["attestation"]["x509"]["caReferences"].update(primary=7), "caReferences"),
    ],
)
def test_malformed_dps_groups_are_refused_with_a_fixed_text(mutate, fragment: str) -> None:
    obj = samples.dps_ca_reference_group("g", "n")
    mutate(obj)
    with pytest.raises(ListingError) as err:
        dps_groups([obj])
    assert err.value.code == "malformed-listing"
    assert fragment in err.value.message


def test_dps_groups_refuses_a_non_array_and_a_duplicate_id() -> None:
    with pytest.raises(ListingError):
        dps_groups({"value": []})  # type: ignore[arg-type]
    group = samples.dps_ca_reference_group("g", "n")
    with pytest.raises(ListingError, match="twice"):
        dps_groups([group, group])


def test_dps_inline_thumbprint_that_is_not_sha1_is_refused() -> None:
    with pytest.raises(ListingError, match="40 hex"):
        dps_groups([samples.dps_inline_group("g", "fdmftjqllzvxcd")])


def test_central_group_with_both_slots() -> None:
    group = central_group(
        samples.central_group("sphere"),
        samples.central_slot(OLD),
        samples.central_slot(NEW, verified=False),
    )
    assert group == EnrollmentGroup(
        "sphere",
        True,
        (GroupSlot("primary", OLD, "", True), GroupSlot("secondary", NEW, "", False)),
    )


def test_central_group_empty_slot_and_disabled_group() -> None:
    group = central_group(
        samples.central_group("g", enabled=False), None, samples.central_slot(NEW)
    )
    assert group == EnrollmentGroup("g", False, (GroupSlot("secondary", NEW, "", True),))


@pytest.mark.parametrize(
    ("group", "slot", "fragment"),
    [
        ({"id": "g"}, None, '"enabled"'),
        ({"id": "", "enabled": True}, None, "no valid id"),
        ({"id": "g", "enabled": True}, {"info": {"sha1Thumbprint": OLD}}, '"verified"'),
        ({"id": "g", "enabled": True}, {"verified": True, "info": {}}, "sha1Thumbprint"),
        ({"id": "g", "enabled": True}, {"verified": True, "info": "x"}, "info"),
        ({"id": "g", "enabled": True}, [], "slot"),
    ],
)
def test_malformed_central_documents_are_refused(group, slot, fragment: str) -> None:
    with pytest.raises(ListingError) as err:
        central_group(group, slot, None)
    assert fragment in err.value.message


def test_parsing_survives_a_json_round_trip() -> None:
    """Upload and live read go through json.loads: the parser takes plain JSON values."""
    objs = json.loads(json.dumps([samples.dps_inline_group("g", OLD, NEW)]))
    assert dps_groups(objs)[0].slots[1].thumbprint == NEW


def test_central_listing_names_each_slot_and_keeps_the_groups() -> None:
    groups = (
        central_group(samples.central_group("g1"), samples.central_slot(OLD), None),
        central_group(
            samples.central_group("g2", enabled=False),
            None,
            samples.central_slot(NEW, verified=False),
        ),
    )
    listing = central_listing("  Contoso-App ", groups)
    assert (listing.target, listing.kind, listing.display_name) == (
        "contoso-app",
        "iot-central",
        "contoso-app",
    )
    assert [(c.name, c.thumbprint, c.verified, c.sha256) for c in listing.certificates] == [
        ("g1/primary", OLD, True, None),
        ("g2/secondary", NEW, False, None),
    ]
    assert listing.groups == groups


def test_repointed_names_flags_a_name_whose_thumbprint_changed_and_its_groups() -> None:
    from shared.analysis.enrollment_listings import repointed_names
    from shared.analysis.listings import Listing, RegisteredCertificate

    groups = dps_groups([samples.dps_ca_reference_group("sphere", "tenant-ca", "other")])
    listing = Listing(
        "dps",
        "dps",
        "dps",
        "dps-certificates",
        (
            RegisteredCertificate("tenant-ca", NEW, None, True),
            RegisteredCertificate("other", OLD, None, True),
            RegisteredCertificate("fresh", OLD, None, True),
        ),
        groups,
    )
    (warning,) = repointed_names({"tenant-ca": OLD, "other": OLD}, listing)
    assert warning == (
        f"certificate name 'tenant-ca' now holds {NEW} (was {OLD}); named by sphere/primary"
    )
    assert repointed_names({}, listing) == ()
