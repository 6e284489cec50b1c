"""Registration evidence and resolution (DESIGN §4 "Resolved"). Pure: snapshots in,
answers out.

A tenant's current CA C is resolved only by
1. registration evidence: a renewal R (newer, never revoked) listed and verified in every
   target that has listed C in this rotation (its ``history``), and, where a target's
   enrollment groups were read, every enabled group that covers C also covers R;
2. where no target has ever listed C: an authenticated R (``RenewalCheck``), never a
   look-alike;
3. an operator's scoped acknowledgement (the store's business, not this module's).

A target that has listed C and now lists neither C nor a verified R has *lost trust*. A
target whose last read failed keeps its last good snapshot and is *unknown*; one never read
successfully blocks every resolution (unknown is never absent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

VERIFIED = "verified"
UNVERIFIED = "unverified"
ABSENT = "absent"

# A target's part in a rotation.
DONE = "done"  # the renewal is verified there (and in every group that covers C)
PENDING = "pending"
LOST_TRUST = "lost-trust"  # listed C once, now lists neither C nor a verified renewal

# What is known of a renewal's signature (shared.analysis.renewal_auth.RenewalCheck values),
# plus "catalog": listed by a live Azure Sphere catalog, authenticated by its source.
AUTHENTICATED = "authenticated"
UNAUTHENTICATED = "unauthenticated"
LOOK_ALIKE = "look-alike"
CATALOG = "catalog"
COUNTS_WITHOUT_EVIDENCE = (AUTHENTICATED, CATALOG)
# Where trust is registered (an Azure Sphere catalog is where tenant CAs come from, not one).
TARGET_KINDS = ("iot-hub", "dps", "iot-central", "other")


@dataclass(frozen=True)
class GroupSlot:
    """One CA an enrollment group names (DESIGN §1, "Where trust is registered")."""

    slot: str  # primary | secondary
    # SHA-1, upper-case hex, when the group carries it (inline signingCertificates, an IoT
    # Central slot); None for a DPS caReferences name, resolved against the target's
    # certificate list when resolution runs (a name can be re-pointed).
    thumbprint: str | None
    name: str = ""  # the caReferences name ("" for inline certificates and IoT Central)
    verified: bool | None = None  # an IoT Central slot's flag; None: the DPS list decides


@dataclass(frozen=True)
class EnrollmentGroup:
    group_id: str
    enabled: bool  # a disabled group covers nothing
    slots: tuple[GroupSlot, ...]


@dataclass(frozen=True)
class TargetEntry:
    """One certificate in a target's snapshot."""

    thumbprint: str  # SHA-1, upper-case hex
    sha256: str | None  # when the listing carried the body
    verified: bool
    name: str = ""


@dataclass(frozen=True)
class TargetSnapshot:
    """The last good listing of one registration target (a hub, a DPS, a manifest)."""

    target: str
    kind: str  # iot-hub | dps | iot-central | other
    display_name: str
    seen_at: datetime | None
    source: str
    entries: tuple[TargetEntry, ...]
    error: tuple[str, str] | None = None  # (code, message) of the last failed read
    # Its enrollment groups when they were read; None: never seen, so the group clause of
    # DESIGN §4 rule 1 is unchecked.
    groups: tuple[EnrollmentGroup, ...] | None = None
    history: frozenset[str] = frozenset()  # SHA-1 of every CA it has listed, ever
    read_ok: bool = True  # False: never read successfully (no snapshot to go by)

    @property
    def unknown(self) -> bool:
        return self.error is not None

    def has_listed(self, sha1: str, sha256: str) -> bool:
        """Lists the certificate now, or listed it in an earlier snapshot."""
        return self.entry_for(sha1, sha256) is not None or sha1.upper() in self.history

    def thumbprint_named(self, name: str) -> str | None:
        """The SHA-1 of the certificate a DPS caReferences name points at now."""
        for entry in self.entries:
            if entry.name == name:
                return entry.thumbprint
        return None

    def entry_for(self, sha1: str, sha256: str) -> TargetEntry | None:
        """The entry of a certificate: same SHA-1 thumbprint, and same SHA-256 where the
        listing carried the body (a body that differs is another certificate)."""
        wanted = sha1.upper()
        for entry in self.entries:
            if entry.thumbprint == wanted and entry.sha256 in (None, sha256):
                return entry
        return None

    def state_of(self, sha1: str, sha256: str) -> str:
        entry = self.entry_for(sha1, sha256)
        if entry is None:
            return ABSENT
        return VERIFIED if entry.verified else UNVERIFIED


@dataclass(frozen=True)
class TargetState:
    target: str
    kind: str
    display_name: str
    current: str  # verified | unverified | absent
    renewed: str
    current_name: str = ""  # the current CA's certificate name in the target
    renewed_name: str = ""
    status: str = ""  # done | pending | lost-trust ("": from ``renewed`` alone)
    unknown: bool = False  # its last read failed: this is its last good snapshot
    source: str = ""  # "live" or the blob name the snapshot came from
    seen_at: datetime | None = None  # when the evidence was made
    error: tuple[str, str] | None = None
    groups_seen: bool | None = None  # None: the kind has no groups; False: never read
    groups_missing: tuple[str, ...] = ()  # enabled groups that cover C but not R

    def __post_init__(self) -> None:
        if not self.status:  # frozen: the one place a field is set after __init__
            object.__setattr__(self, "status", DONE if self.renewed == VERIFIED else PENDING)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "display_name": self.display_name,
            "current": self.current,
            "renewed": self.renewed,
            "status": self.status,
            "unknown": self.unknown,
            "source": self.source,
            "seen_at": _iso(self.seen_at),
            "error": {"code": self.error[0], "message": self.error[1]} if self.error else None,
            "groups": None
            if self.groups_seen is None
            else {"seen": self.groups_seen, "missing": list(self.groups_missing)},
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


@dataclass(frozen=True)
class Registration:
    """Where a tenant CA is registered and what is left before its renewal is trusted."""

    evidence: bool  # some target lists the current CA, or has listed it
    renewed: str | None  # sha256 of the renewed CA on record
    targets: tuple[TargetState, ...]  # every target that has listed the current CA
    renewed_thumbprint: str | None = None
    renewal_check: str | None = None  # what is known of the renewal's signature
    look_alikes: tuple[str, ...] = ()  # sha256 of newer CAs that are look-alikes
    unread: tuple[str, ...] = ()  # targets never read successfully: unknown, block all

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(t.target for t in self.targets if t.status != DONE)

    @property
    def pending_targets(self) -> tuple[TargetState, ...]:
        return tuple(t for t in self.targets if t.status != DONE)

    @property
    def lost_trust(self) -> tuple[TargetState, ...]:
        return tuple(t for t in self.targets if t.status == LOST_TRUST)

    def to_json(self) -> dict[str, Any]:
        return {
            "evidence": self.evidence,
            "renewed": self.renewed,
            "renewal_check": self.renewal_check,
            "look_alikes": list(self.look_alikes),
            "targets": [t.to_json() for t in self.targets],
            "pending": list(self.pending),
            "lost_trust": [t.target for t in self.lost_trust],
            "unknown": [t.target for t in self.targets if t.unknown] + list(self.unread),
        }


class _Cert(Protocol):
    @property
    def sha256(self) -> str: ...
    @property
    def sha1_thumbprint(self) -> str: ...


def _slot_thumbprint(snap: TargetSnapshot, slot: GroupSlot) -> str | None:
    if slot.thumbprint is not None:
        return slot.thumbprint.upper()
    return snap.thumbprint_named(slot.name) if slot.name else None


def _group_holds(
    snap: TargetSnapshot, group: EnrollmentGroup, sha1: str, *, verified: bool
) -> bool:
    for slot in group.slots:
        if _slot_thumbprint(snap, slot) != sha1:
            continue
        if not verified or slot.verified is True:
            return True
        if slot.verified is None:  # a DPS reference: the certificate list says
            entry = next((e for e in snap.entries if e.thumbprint == sha1), None)
            if entry is not None and entry.verified:
                return True
    return False


def groups_missing(snap: TargetSnapshot, current: _Cert, renewed: _Cert) -> tuple[str, ...]:
    """The enabled groups of ``snap`` that cover the current CA but not a verified renewal."""
    if snap.groups is None:
        return ()
    cur, new = current.sha1_thumbprint.upper(), renewed.sha1_thumbprint.upper()
    return tuple(
        group.group_id
        for group in snap.groups
        if group.enabled
        and _group_holds(snap, group, cur, verified=False)
        and not _group_holds(snap, group, new, verified=True)
    )


def _target_state(snap: TargetSnapshot, current: _Cert, renewed: _Cert | None) -> TargetState:
    held = snap.entry_for(current.sha1_thumbprint, current.sha256)
    new = snap.entry_for(renewed.sha1_thumbprint, renewed.sha256) if renewed else None
    missing = groups_missing(snap, current, renewed) if renewed else ()
    if renewed and snap.kind == "iot-central" and snap.groups is not None and not missing:
        # IoT Central has no certificate list: a renewal counts only in an enabled group.
        sha1 = renewed.sha1_thumbprint.upper()
        if not any(g.enabled and _group_holds(snap, g, sha1, verified=True) for g in snap.groups):
            missing = tuple(g.group_id for g in snap.groups if not g.enabled)
    if new is not None and new.verified and not missing:
        status = DONE
    elif held is None and not (new is not None and new.verified):
        status = LOST_TRUST
    else:
        status = PENDING
    has_groups = snap.kind in ("dps", "iot-central")
    return TargetState(
        snap.target,
        snap.kind,
        snap.display_name,
        ABSENT if held is None else VERIFIED if held.verified else UNVERIFIED,
        ABSENT if new is None else VERIFIED if new.verified else UNVERIFIED,
        held.name if held else "",
        new.name if new else "",
        status=status,
        unknown=snap.unknown,
        source=snap.source,
        seen_at=snap.seen_at,
        error=snap.error,
        groups_seen=(snap.groups is not None) if has_groups else None,
        groups_missing=missing,
    )


def registration_of(
    current: _Cert,
    renewed: _Cert | None,
    snapshots: Iterable[TargetSnapshot],
    *,
    renewal_check: str | None = None,
    look_alikes: tuple[str, ...] = (),
) -> Registration:
    snapshots = list(snapshots)
    states = [
        _target_state(snap, current, renewed)
        for snap in snapshots
        if snap.read_ok and snap.has_listed(current.sha1_thumbprint, current.sha256)
    ]
    states.sort(key=lambda s: (s.kind, s.display_name, s.target))
    return Registration(
        evidence=bool(states),
        renewed=renewed.sha256 if renewed else None,
        targets=tuple(states),
        renewed_thumbprint=renewed.sha1_thumbprint if renewed else None,
        renewal_check=renewal_check,
        look_alikes=look_alikes,
        unread=tuple(
            sorted(s.target for s in snapshots if not s.read_ok and s.kind in TARGET_KINDS)
        ),
    )


@dataclass(frozen=True)
class Resolution:
    resolved_by: str | None  # the renewed CA that closes it, or None
    registration: Registration
    basis: str | None = None  # "registration" | "authenticated-renewal" when resolved


# (current sha256, renewed sha256) -> what is known of the renewal's signature
RenewalChecker = Callable[[str, str], str]


@dataclass
class _Checks:
    check: RenewalChecker | None
    memo: dict[tuple[str, str], str] = field(default_factory=dict)

    def __call__(self, current: str, renewed: str) -> str:
        if self.check is None:
            return UNAUTHENTICATED
        key = (current, renewed)
        if key not in self.memo:
            self.memo[key] = self.check(current, renewed)
        return self.memo[key]


def resolve_with_evidence(
    certs: Sequence[_Cert],
    candidates: Mapping[str, Sequence[str]],
    snapshots: Sequence[TargetSnapshot],
    *,
    check: RenewalChecker | None = None,
    revoked: frozenset[str] = frozenset(),
) -> dict[str, Resolution]:
    """sha256 -> its resolution, given the qualifying newer CAs of each (newest first, from
    ``planner.replacement_candidates``), the targets' snapshots, a renewal checker and the
    CAs that are revoked or expired in their catalog (never a renewal)."""
    by_sha = {cert.sha256: cert for cert in certs}
    checks = _Checks(check)
    out: dict[str, Resolution] = {}
    for cert in certs:
        newer = [
            by_sha[sha]
            for sha in candidates.get(cert.sha256, ())
            if sha in by_sha and sha not in revoked
        ]
        out[cert.sha256] = _resolve(cert, newer, snapshots, checks)
    return out


def _resolve(
    cert: _Cert, newer: list[_Cert], snapshots: Sequence[TargetSnapshot], checks: _Checks
) -> Resolution:
    if not newer:
        return Resolution(None, registration_of(cert, None, snapshots))
    verdicts = {r.sha256: checks(cert.sha256, r.sha256) for r in newer}
    look_alikes = tuple(sha for sha, verdict in verdicts.items() if verdict == LOOK_ALIKE)
    blocked = any(not snap.read_ok and snap.kind in TARGET_KINDS for snap in snapshots)
    evidence = any(
        snap.read_ok and snap.has_listed(cert.sha1_thumbprint, cert.sha256) for snap in snapshots
    )
    for candidate in newer:
        if blocked:
            break
        registration = registration_of(
            cert,
            candidate,
            snapshots,
            renewal_check=verdicts[candidate.sha256],
            look_alikes=look_alikes,
        )
        if evidence and not registration.pending:  # rule 1: verified in every target
            return Resolution(candidate.sha256, registration, "registration")
        if not evidence and verdicts[candidate.sha256] in COUNTS_WITHOUT_EVIDENCE:  # rule 2
            return Resolution(candidate.sha256, registration, "authenticated-renewal")
    # Ask for the newest renewal that is no look-alike (the newest of all when every one is).
    shown = next((r for r in newer if verdicts[r.sha256] != LOOK_ALIKE), newer[0])
    return Resolution(
        None,
        registration_of(
            cert, shown, snapshots, renewal_check=verdicts[shown.sha256], look_alikes=look_alikes
        ),
    )


def ca_state(
    resolution: Resolution | None, *, verdict: str, acknowledged: bool, retired: bool
) -> str:
    """The state of a tenant CA in the one vocabulary (shared.alerts.states), as the store
    knows it; a view may show an open CA with no action due yet as "ok"."""
    if retired:
        return "retired"
    if acknowledged:
        return "acknowledged"
    if resolution is None:
        return "affected" if verdict == "affected" else "pending"
    if resolution.resolved_by:
        return "resolved"
    reg = resolution.registration
    if reg.lost_trust:
        return "lost-trust"
    if reg.look_alikes and reg.renewal_check == LOOK_ALIKE:
        return "look-alike"
    if reg.unread or any(t.unknown for t in reg.targets):
        return "unknown"
    if reg.renewed and not reg.evidence and reg.renewal_check == UNAUTHENTICATED:
        return "unauthenticated-renewal"
    if verdict == "affected" and reg.renewed is None:
        return "affected"
    return "pending"
