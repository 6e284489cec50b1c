"""DESIGN §4 rule 1's group clause (issue 22): in a DPS, every enabled enrollment group that
covers the current CA C (by a caReferences name that resolves to C, or an inline
signingCertificates thumbprint) must cover the renewal R too; in IoT Central, the group that
holds C must hold R, verified, in its other slot. Pure: snapshots in, answers out."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shared.alerts.registration import (
    DONE,
    PENDING,
    EnrollmentGroup,
    GroupSlot,
    TargetEntry,
    TargetSnapshot,
    registration_of,
    resolve_with_evidence,
)

C_SHA1, R_SHA1, X_SHA1 = "C" * 40, "D" * 40, "E" * 40


@dataclass(frozen=True)
class Cert:
    sha256: str
    sha1_thumbprint: str


CURRENT, RENEWED = Cert("c" * 64, C_SHA1), Cert("d" * 64, R_SHA1)
DPS_ENTRIES = (
    TargetEntry(C_SHA1, None, True, "tenant-ca-old"),
    TargetEntry(R_SHA1, None, True, "tenant-ca-new"),
)


def dps(*groups: EnrollmentGroup, entries: tuple[TargetEntry, ...] = DPS_ENTRIES) -> TargetSnapshot:
    return TargetSnapshot("dps", "dps", "fleet-dps", None, "live", entries, groups=groups)


def ref(slot: str, name: str) -> GroupSlot:
    return GroupSlot(slot, None, name)


def inline(slot: str, sha1: str) -> GroupSlot:
    return GroupSlot(slot, sha1)


def state(snapshot: TargetSnapshot) -> tuple[str, tuple[str, ...]]:
    (target,) = registration_of(CURRENT, RENEWED, [snapshot]).targets
    return target.status, target.groups_missing


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        # Verified in the certificate list, but no group names it yet: the renewal provisions
        # no device (the false all-clear of the issue).
        (
            (EnrollmentGroup("fleet", True, (ref("primary", "tenant-ca-old"),)),),
            (PENDING, ("fleet",)),
        ),
        # Rolled as Microsoft's "how to roll certificates" says: the renewal is the secondary.
        (
            (
                EnrollmentGroup(
                    "fleet",
                    True,
                    (ref("primary", "tenant-ca-old"), ref("secondary", "tenant-ca-new")),
                ),
            ),
            (DONE, ()),
        ),
        # A disabled group covers nothing.
        ((EnrollmentGroup("old", False, (ref("primary", "tenant-ca-old"),)),), (DONE, ())),
        # Inline certificates count by thumbprint.
        ((EnrollmentGroup("inline", True, (inline("primary", C_SHA1),)),), (PENDING, ("inline",))),
        (
            (
                EnrollmentGroup(
                    "inline", True, (inline("primary", C_SHA1), inline("secondary", R_SHA1))
                ),
            ),
            (DONE, ()),
        ),
        # Every enabled group that covers C; a group that does not cover C does not count.
        (
            (
                EnrollmentGroup(
                    "a", True, (ref("primary", "tenant-ca-old"), ref("secondary", "tenant-ca-new"))
                ),
                EnrollmentGroup("b", True, (ref("primary", "tenant-ca-old"),)),
                EnrollmentGroup("c", True, (inline("primary", X_SHA1),)),
            ),
            (PENDING, ("b",)),
        ),
    ],
)
def test_every_enabled_group_covering_the_current_ca_must_cover_the_renewal(
    groups: tuple[EnrollmentGroup, ...], expected: tuple[str, tuple[str, ...]]
) -> None:
    assert state(dps(*groups)) == expected


def test_a_reference_name_re_pointed_at_another_certificate_does_not_cover_the_renewal() -> None:
    """Re-uploading under a name swaps the CA silently: names resolve at resolution time."""
    repointed = (
        TargetEntry(C_SHA1, None, True, "tenant-ca-old"),
        TargetEntry(X_SHA1, None, True, "tenant-ca-new"),
        TargetEntry(R_SHA1, None, True, "other"),
    )
    group = EnrollmentGroup(
        "fleet", True, (ref("primary", "tenant-ca-old"), ref("secondary", "tenant-ca-new"))
    )
    assert state(dps(group, entries=repointed)) == (PENDING, ("fleet",))


def test_a_group_naming_an_unverified_renewal_does_not_cover_it() -> None:
    entries = (
        TargetEntry(C_SHA1, None, True, "tenant-ca-old"),
        TargetEntry(R_SHA1, None, False, "tenant-ca-new"),
    )
    group = EnrollmentGroup(
        "fleet", True, (ref("primary", "tenant-ca-old"), ref("secondary", "tenant-ca-new"))
    )
    assert state(dps(group, entries=entries))[0] == PENDING


def test_groups_never_read_are_said_so_and_do_not_block() -> None:
    snapshot = TargetSnapshot("dps", "dps", "fleet-dps", None, "dps.json", DPS_ENTRIES)
    (target,) = registration_of(CURRENT, RENEWED, [snapshot]).targets
    assert (target.status, target.groups_seen) == (DONE, False)
    assert target.to_json()["groups"] == {"seen": False, "missing": []}


def central(
    primary: GroupSlot, secondary: GroupSlot | None, enabled: bool = True
) -> TargetSnapshot:
    slots = (primary,) if secondary is None else (primary, secondary)
    entries = tuple(
        TargetEntry(s.thumbprint or "", None, bool(s.verified), f"fleet/{s.slot}") for s in slots
    )
    return TargetSnapshot(
        "fleet-app",
        "iot-central",
        "fleet-app",
        None,
        "live",
        entries,
        groups=(EnrollmentGroup("fleet", enabled, slots),),
    )


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (
            central(
                GroupSlot("primary", C_SHA1, "", True), GroupSlot("secondary", R_SHA1, "", False)
            ),
            PENDING,
        ),
        (
            central(
                GroupSlot("primary", C_SHA1, "", True), GroupSlot("secondary", R_SHA1, "", True)
            ),
            DONE,
        ),
        (central(GroupSlot("primary", C_SHA1, "", True), None), PENDING),
    ],
)
def test_iot_central_needs_the_renewal_verified_in_the_other_slot(
    snapshot: TargetSnapshot, expected: str
) -> None:
    assert state(snapshot)[0] == expected


def test_a_disabled_iot_central_group_with_the_renewal_unverified_keeps_the_tenant_open() -> None:
    snapshot = central(
        GroupSlot("primary", C_SHA1, "", True),
        GroupSlot("secondary", R_SHA1, "", False),
        enabled=False,
    )
    out = resolve_with_evidence([CURRENT, RENEWED], {CURRENT.sha256: [RENEWED.sha256]}, [snapshot])
    assert out[CURRENT.sha256].resolved_by is None  # the slot itself says unverified


def test_referencing_the_renewal_closes_the_tenant() -> None:
    open_ = dps(EnrollmentGroup("fleet", True, (ref("primary", "tenant-ca-old"),)))
    closed = dps(
        EnrollmentGroup(
            "fleet", True, (ref("primary", "tenant-ca-old"), ref("secondary", "tenant-ca-new"))
        )
    )
    candidates = {CURRENT.sha256: [RENEWED.sha256]}
    assert (
        resolve_with_evidence([CURRENT, RENEWED], candidates, [open_])[CURRENT.sha256].resolved_by
        is None
    )
    assert (
        resolve_with_evidence([CURRENT, RENEWED], candidates, [closed])[CURRENT.sha256].resolved_by
        == RENEWED.sha256
    )
