"""Registration evidence and resolution (DESIGN §4). Pure: snapshots in, answers out.

A tenant CA is resolved when a newer tenant CA of the same tenant is on record (see
``planner.resolve_replacements`` for which one qualifies) *and*, in every target that
lists the current CA, the newer one is listed and verified. A target that lists neither
does not count; where no target lists the current CA (no evidence), the newer CA on
record resolves it, as before registration evidence existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

VERIFIED = "verified"
UNVERIFIED = "unverified"
ABSENT = "absent"


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

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "display_name": self.display_name,
            "current": self.current,
            "renewed": self.renewed,
        }


@dataclass(frozen=True)
class Registration:
    """Where a tenant CA is registered and what is left before its renewal is trusted."""

    evidence: bool  # some target lists the current CA
    renewed: str | None  # sha256 of the renewed CA on record
    targets: tuple[TargetState, ...]  # every target that lists the current CA
    renewed_thumbprint: str | None = None

    @property
    def pending(self) -> tuple[str, ...]:
        return tuple(t.target for t in self.targets if t.renewed != VERIFIED)

    @property
    def pending_targets(self) -> tuple[TargetState, ...]:
        return tuple(t for t in self.targets if t.renewed != VERIFIED)

    def to_json(self) -> dict[str, Any]:
        return {
            "evidence": self.evidence,
            "renewed": self.renewed,
            "targets": [t.to_json() for t in self.targets],
            "pending": list(self.pending),
        }


class _Cert(Protocol):
    @property
    def sha256(self) -> str: ...
    @property
    def sha1_thumbprint(self) -> str: ...


def registration_of(
    current: _Cert, renewed: _Cert | None, snapshots: Iterable[TargetSnapshot]
) -> Registration:
    states = []
    for snap in snapshots:
        held = snap.entry_for(current.sha1_thumbprint, current.sha256)
        if held is None:
            continue  # a target that does not trust the current CA does not count
        new = snap.entry_for(renewed.sha1_thumbprint, renewed.sha256) if renewed else None
        states.append(
            TargetState(
                snap.target,
                snap.kind,
                snap.display_name,
                VERIFIED if held.verified else UNVERIFIED,
                ABSENT if new is None else VERIFIED if new.verified else UNVERIFIED,
                held.name,
                new.name if new else "",
            )
        )
    states.sort(key=lambda s: (s.kind, s.display_name, s.target))
    return Registration(
        evidence=bool(states),
        renewed=renewed.sha256 if renewed else None,
        targets=tuple(states),
        renewed_thumbprint=renewed.sha1_thumbprint if renewed else None,
    )


@dataclass(frozen=True)
class Resolution:
    resolved_by: str | None  # the renewed CA that closes it, or None
    registration: Registration


def resolve_with_evidence(
    certs: Sequence[_Cert],
    candidates: Mapping[str, Sequence[str]],
    snapshots: Sequence[TargetSnapshot],
) -> dict[str, Resolution]:
    """sha256 -> its resolution, given the qualifying newer CAs of each (newest first, from
    ``planner.replacement_candidates``) and the targets' snapshots. The first candidate
    registered and verified everywhere the current CA is listed resolves it; otherwise
    the newest candidate is the one the message asks to register."""
    by_sha = {cert.sha256: cert for cert in certs}
    out: dict[str, Resolution] = {}
    for cert in certs:
        newer = [by_sha[sha] for sha in candidates.get(cert.sha256, ()) if sha in by_sha]
        if not newer:
            out[cert.sha256] = Resolution(None, registration_of(cert, None, snapshots))
            continue
        for candidate in newer:
            registration = registration_of(cert, candidate, snapshots)
            if not registration.pending:
                out[cert.sha256] = Resolution(candidate.sha256, registration)
                break
        else:
            out[cert.sha256] = Resolution(None, registration_of(cert, newer[0], snapshots))
    return out
