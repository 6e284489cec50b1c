"""The enrollment group parser's refusals and edges (shared/analysis/enrollment_listings.py),
each pinned exactly: the code and fixed text of every refusal, the limits at their edge,
the empty slots that are skipped, and the repointed-name warnings. Pure.

Group shapes: tests/enrollment_samples.py (Microsoft's REST examples, credited there).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from shared.alerts.registration import EnrollmentGroup, GroupSlot
from shared.analysis.enrollment_listings import (
    FORMAT_IOT_CENTRAL,
    central_group,
    central_is_x509,
    central_listing,
    dps_group,
    dps_groups,
    repointed_names,
)
from shared.analysis.listings import MAX_ENTRIES, Listing, ListingError, RegisteredCertificate
from tests import analyzer_samples
from tests import enrollment_samples as samples

OLD = "644543467786B60C14DFE6B7C968A1990CF63EAC"
NEW = "A1B2C3D4E5F60718293A4B5C6D7E8F9011223344"


def group_with(**x509: Any) -> dict[str, Any]:
    group = samples.dps_ca_reference_group("g", None)
    group["attestation"]["x509"] = {"signingCertificates": None, "caReferences": None, **x509}
    return group


def dps_with(change: Callable[[dict[str, Any]], object]) -> Callable[[], object]:
    group = samples.dps_ca_reference_group("g", "n")
    change(group)
    return lambda: dps_groups([group])


DER = analyzer_samples.tenant().der
DER_SHA1 = hashlib.sha1(DER, usedforsecurity=False).hexdigest().upper()
BODY = base64.b64encode(DER).decode()
REFUSALS: list[tuple[Callable[[], object], str]] = [
    (lambda: dps_groups({"value": []}), "enrollment groups are an array of objects"),  # type: ignore[arg-type]
    (
        lambda: dps_groups([samples.dps_symmetric_key_group("g")] * (MAX_ENTRIES + 1)),
        f"more than {MAX_ENTRIES} enrollment groups",
    ),
    (
        lambda: dps_groups([samples.dps_symmetric_key_group("g")] * 2),
        "an enrollment group id appears twice",
    ),
    (lambda: dps_group("g"), "an enrollment group is not an object"),
    (lambda: dps_group([]), "an enrollment group is not an object"),
    (dps_with(lambda g: g.pop("enrollmentGroupId")), "an enrollment group has no valid id"),
    (
        dps_with(lambda g: g.update(enrollmentGroupId="i" * 129)),
        "an enrollment group has no valid id",
    ),
    (
        dps_with(lambda g: g.update(provisioningStatus="paused")),
        "an enrollment group's provisioningStatus is not enabled/disabled",
    ),
    (
        dps_with(lambda g: g.update(attestation=None)),
        "an enrollment group has no attestation object",
    ),
    (
        dps_with(lambda g: g["attestation"].update(type="jwt")),
        "an enrollment group's attestation type is unknown",
    ),
    (
        dps_with(lambda g: g["attestation"].update(x509=[])),
        "an X.509 enrollment group has no x509 object",
    ),
    (lambda: dps_group(group_with(caReferences="a")), "caReferences is not an object"),
    (
        lambda: dps_group(group_with(caReferences={"primary": 7})),
        "a caReferences name is not a short string",
    ),
    (
        lambda: dps_group(group_with(caReferences={"primary": "n" * 257})),
        "a caReferences name is not a short string",
    ),
    (
        lambda: dps_group(group_with(signingCertificates="a")),
        "signingCertificates is not an object",
    ),
    (
        lambda: dps_group(group_with(signingCertificates={"primary": "x"})),
        "a signing certificate is not an object",
    ),
    (
        lambda: dps_group(group_with(signingCertificates={"primary": {"info": "x"}})),
        "a certificate's info is not an object",
    ),
    (
        lambda: dps_group(group_with(signingCertificates={"primary": {"info": {}}})),
        "a group certificate has no sha1Thumbprint",
    ),
    (
        lambda: dps_group(
            group_with(
                signingCertificates={
                    "primary": {"certificate": BODY, "info": {"sha1Thumbprint": OLD}}
                }
            )
        ),
        "a certificate's thumbprint does not match its body",
    ),
    (lambda: central_group("g", None, None), "an enrollment group is not an object"),
    (
        lambda: central_group({"id": "g"}, None, None),
        'an enrollment group\'s "enabled" is not a bool',
    ),
    (
        lambda: central_group({"id": "g", "enabled": True}, [], None),
        "a group certificate slot is not an object",
    ),
    (
        lambda: central_group({"id": "g", "enabled": True}, None, {"info": {}}),
        'a certificate slot\'s "verified" is not a bool',
    ),
    (lambda: central_listing("  ", ()), "an IoT Central listing needs the app subdomain"),
]


@pytest.mark.parametrize(("call", "message"), REFUSALS, ids=range(len(REFUSALS)))
def test_each_refusal_has_its_code_and_fixed_text(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ListingError) as err:
        call()
    assert (err.value.code, err.value.message) == ("malformed-listing", message)


def test_limits_hold_at_their_edge() -> None:
    many = [samples.dps_symmetric_key_group(f"g{i}") for i in range(MAX_ENTRIES)]
    assert len(dps_groups(many)) == MAX_ENTRIES
    longest = samples.dps_ca_reference_group("i" * 128, "n" * 256)
    assert dps_group(longest) == EnrollmentGroup(
        "i" * 128, True, (GroupSlot("primary", None, "n" * 256),)
    )


def test_status_defaults_to_enabled_and_reads_in_any_case() -> None:
    group = samples.dps_ca_reference_group("g", "n")
    del group["provisioningStatus"]
    assert dps_group(group).enabled is True
    group["provisioningStatus"] = "Disabled"
    assert dps_group(group).enabled is False
    group["provisioningStatus"] = "ENABLED"
    assert dps_group(group).enabled is True


def test_a_tpm_group_covers_nothing() -> None:
    group = samples.dps_ca_reference_group("g", "n")
    group["attestation"] = {"type": "tpm", "tpm": {"endorsementKey": "x"}}
    assert dps_group(group) == EnrollmentGroup("g", True, ())


def test_an_empty_primary_slot_is_skipped_and_the_secondary_kept() -> None:
    for empty in (None, ""):
        refs = group_with(caReferences={"primary": empty, "secondary": "new"})
        assert dps_group(refs).slots == (GroupSlot("secondary", None, "new"),)
    inline = samples.dps_inline_group("g", None, NEW)
    assert dps_group(inline).slots == (GroupSlot("secondary", NEW, ""),)


def test_a_body_and_its_thumbprint_that_agree_are_one_slot() -> None:
    cert = {"certificate": BODY, "info": {"sha1Thumbprint": DER_SHA1.lower()}}
    group = dps_group(group_with(signingCertificates={"primary": cert}))
    assert group.slots == (GroupSlot("primary", DER_SHA1, ""),)


def test_only_an_x509_iot_central_group_has_slots_to_read() -> None:
    assert central_is_x509(samples.central_group("g")) is True
    assert central_is_x509(samples.central_group("g", x509=False)) is False
    assert central_is_x509({"id": "g"}) is False


def test_an_iot_central_listing_says_its_format() -> None:
    group = central_group(samples.central_group("g"), samples.central_slot(OLD), None)
    assert central_listing("app", (group,)).format == FORMAT_IOT_CENTRAL


def test_a_repointed_name_is_named_with_the_groups_that_reference_it() -> None:
    group = EnrollmentGroup("fleet", True, (GroupSlot("primary", None, "ca"),))
    spare = EnrollmentGroup("lab", False, (GroupSlot("secondary", None, "ca"),))
    listing = Listing(
        "dps",
        "dps",
        "dps",
        "dps-certificates",
        (
            RegisteredCertificate("ca", NEW, None, True),
            RegisteredCertificate("spare", NEW, None, True),
            RegisteredCertificate("same", OLD, None, True),
        ),
        (group, spare),
    )
    before = {"ca": OLD, "spare": OLD, "same": OLD}
    assert repointed_names(before, listing) == (
        f"certificate name 'ca' now holds {NEW} (was {OLD}); named by fleet/primary, lab/secondary",
        f"certificate name 'spare' now holds {NEW} (was {OLD})",
    )
