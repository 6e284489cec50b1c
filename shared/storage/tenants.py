"""Tenant CAs and their resolution. ``tenantcas``: PK = tenant id, RK = SHA-256: the tenant
CAs of each tenant, so a replacement is found in one partition read; ``resolved_by`` names
the replacement. Every change to a tenant re-times its rows in the alert index.

Resolution reads the registration evidence (``shared.storage.registrations``) only when a
tenant has a newer CA on record: without a candidate nothing can resolve.

Concurrency: two refreshes of one tenant may run at once (an old CA and its renewal
uploaded together, a listing processed beside a certificate). Each refresh, after its
writes, reads its inputs (the tenant's CAs, acknowledgements and the evidence it used)
and its index rows again; when either moved under it, it refreshes again. The last
refresh to finish therefore always worked from the state it left, and a closed CA never
keeps an index row.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import UpdateMode

from shared.alerts.model import TenantCertificate
from shared.alerts.notice_message import Notice
from shared.alerts.planner import replacement_candidates
from shared.alerts.registration import (
    CATALOG,
    Resolution,
    TargetSnapshot,
    TargetState,
    ca_state,
    resolve_with_evidence,
)
from shared.alerts.rules import Rules
from shared.analysis.renewal_auth import RenewalCheck, check_renewal
from shared.storage.acks import LEGACY_WHOLE_TENANT, Acknowledgement, AckStore
from shared.storage.alert_index import AlertIndex, tenant_certificate
from shared.storage.issuers import IssuerStore
from shared.storage.keys import iso
from shared.storage.notices import NoticeStore
from shared.storage.registrations import RegistrationStore
from shared.storage.tables import Tables

log = logging.getLogger("ca_watch.tenants")
MAX_REFRESH_ROUNDS = 20


REVOKED_STATUSES = ("revoked", "expired")  # a catalog status that never makes a renewal
LIVE_CATALOG_STATUSES = ("active", "inactive")  # listed by a live catalog: authentic


def _row_flags(row: Mapping[str, Any]) -> tuple[bool, bool]:
    """(retired, revoked) of a ``tenantcas`` row."""
    status = str(row.get("catalog_status") or "").lower()
    return bool(row.get("retired_by")), bool(row.get("revoked")) or status in REVOKED_STATUSES


@dataclass(frozen=True)
class TenantState:
    """One tenant as the source of truth has it now: its CAs and their resolutions."""

    certificates: tuple[TenantCertificate, ...]
    resolutions: dict[str, Resolution]
    evidence_digest: tuple[Any, ...]  # what evidence was read (a change means: again)
    retired: frozenset[str] = frozenset()
    catalog_status: Mapping[str, str] = dataclass_field(default_factory=dict)  # lower case

    def certificate(self, sha256: str) -> TenantCertificate | None:
        return next((c for c in self.certificates if c.sha256 == sha256), None)

    def is_open(self, sha256: str) -> bool:
        cert = self.certificate(sha256)
        if cert is None or cert.acknowledged or sha256 in self.retired:
            return False
        resolution = self.resolutions.get(sha256)
        return not (resolution and resolution.resolved_by)

    def state_of(self, sha256: str) -> str:
        """Its state in the one vocabulary (shared.alerts.states)."""
        cert = self.certificate(sha256)
        return ca_state(
            self.resolutions.get(sha256),
            verdict=cert.verdict if cert else "ok",
            acknowledged=bool(cert and cert.acknowledged),
            retired=sha256 in self.retired,
        )


class TenantStore:
    def __init__(
        self,
        tables: Tables,
        rules: Rules,
        index: AlertIndex,
        acks: AckStore,
        registrations: RegistrationStore,
        notices: NoticeStore,
        issuers: IssuerStore,
    ) -> None:
        self._tables = tables
        self.rules = rules
        self._index = index
        self._acks = acks
        self.registrations = registrations
        self.notices = notices
        self.issuers = issuers

    def add(self, tenant_id: str, sha256: str, fields: dict[str, Any]) -> None:
        """Record a tenant CA (its facts; resolution is computed by ``refresh``)."""
        if fields.get("sha1_thumbprint"):
            self.registrations.add_thumbprint(fields["sha1_thumbprint"], sha256, tenant_id)
        self._tables("tenantcas").upsert_entity(
            {"PartitionKey": tenant_id, "RowKey": sha256, **fields}, mode=UpdateMode.MERGE
        )

    def retire(self, tenant_id: str, sha256: str, by: str, note: str | None, now: datetime) -> None:
        """An operator takes a tenant CA out of the inventory (audited, announced)."""
        self._tables("tenantcas").upsert_entity(
            {
                "PartitionKey": tenant_id,
                "RowKey": sha256,
                "retired_by": by,
                "retired_at": iso(now),
                "retired_note": note,
            },
            mode=UpdateMode.MERGE,
        )

    def signed_by_name(self, issuer: str) -> set[str]:
        """Tenants with a CA that names ``issuer``, or whose renewal waits for one (rows of
        earlier versions do not say their issuer): an issuer arriving may authenticate it."""
        rows = self._tables("tenantcas").query_entities(
            "issuer eq @issuer or renewal_check eq @waiting",
            parameters={"issuer": issuer, "waiting": "unauthenticated"},
            select=["PartitionKey"],
        )
        return {row["PartitionKey"] for row in rows}

    def _rows(self, tenant_id: str) -> list[dict[str, Any]]:
        return list(
            self._tables("tenantcas").query_entities(
                "PartitionKey eq @pk", parameters={"pk": tenant_id}
            )
        )

    def tenant_certificates(
        self,
        tenant_id: str,
        acks: Mapping[str, Acknowledgement] | None = None,
        now: datetime | None = None,
        rows: list[dict[str, Any]] | None = None,
    ) -> list[TenantCertificate]:
        """The tenant's CAs (``acks``: its acknowledgements, when the caller read them);
        an acknowledgement counts while in force at ``now`` (None: the wall clock)."""
        if acks is None:
            acks = self._acks.of_tenant(tenant_id)
        moment = now or datetime.now(UTC)
        out = []
        for row in rows if rows is not None else self._rows(tenant_id):
            cert = tenant_certificate(row, tenant_id, row["RowKey"])
            ack = acks.get(row["RowKey"]) or acks.get(LEGACY_WHOLE_TENANT)
            in_force = ack is not None and ack.covers(cert.not_before, moment)
            out.append(
                replace(
                    cert,
                    acknowledged=in_force,
                    resolved_by=row.get("resolved_by") or None,
                    ack_until=ack.until if in_force and ack else None,
                )
            )
        return out

    def state(
        self,
        tenant_id: str,
        snapshots: Sequence[TargetSnapshot] | None = None,
        acks: Mapping[str, Acknowledgement] | None = None,
        now: datetime | None = None,
    ) -> TenantState:
        """The tenant's CAs and resolutions from the tables (``snapshots`` and ``acks``:
        when the caller has read them already, as the alert pass does once per pass)."""
        rows = self._rows(tenant_id)
        certs = self.tenant_certificates(tenant_id, acks, now, rows)
        flags = {row["RowKey"]: _row_flags(row) for row in rows}
        candidates = replacement_candidates(certs, self.rules)
        if snapshots is None:
            snapshots = self.registrations.snapshots() if any(candidates.values()) else []
        resolutions = resolve_with_evidence(
            certs,
            candidates,
            snapshots,
            check=_RenewalChecks(rows, self.issuers),
            revoked=frozenset(sha for sha, (_, revoked) in flags.items() if revoked),
        )
        digest = (
            tuple(sorted((c.sha256, c.acknowledged, c.ack_until) for c in certs)),
            tuple(sorted((sha, flag) for sha, flag in flags.items())),
            tuple((s.target, s.seen_at, s.entries, s.groups, s.error) for s in snapshots),
        )
        retired = frozenset(sha for sha, (is_retired, _) in flags.items() if is_retired)
        statuses = {
            row["RowKey"]: str(row["catalog_status"]).lower()
            for row in rows
            if row.get("catalog_status")
        }
        return TenantState(tuple(certs), resolutions, digest, retired, statuses)

    def refresh_tenant(self, tenant_id: str, now: datetime | None = None) -> None:
        """Recompute replacements and acknowledgements of one tenant and rewrite its
        alert-index rows (only the open ones are indexed), until its inputs hold still."""
        for _ in range(MAX_REFRESH_ROUNDS):
            state = self.state(tenant_id, now=now)
            self._write(tenant_id, state, now)
            again = self.state(tenant_id, now=now)
            if again.evidence_digest == state.evidence_digest and self._index_matches(
                tenant_id, again
            ):
                return
        log.warning("tenant %s kept changing while being refreshed", tenant_id)

    def _write(self, tenant_id: str, state: TenantState, now: datetime | None) -> None:
        existing = self._index.tenant_rows(tenant_id)
        live = {cert.sha256 for cert in state.certificates}
        for sha, keys in existing.items():
            if sha not in live:
                self._index.remove(tenant_id, keys)
        for cert in state.certificates:
            resolution = state.resolutions[cert.sha256]  # resolve_with_evidence answers each
            if resolution.resolved_by and resolution.resolved_by != cert.resolved_by:
                # Announced before the row says so: a crash in between announces again,
                # and the notice's key makes that the same notice.
                self.notices.add(rotation_notice("resolved", cert, resolution, now))
            registration = resolution.registration
            renewed = registration.renewed
            if (
                state.is_open(cert.sha256)
                and renewed
                and state.catalog_status.get(renewed) == "active"
                and registration.pending
            ):
                # Observed, not a date in a rule: devices present the renewal now, and
                # every target still pending fails them (issue 22 §3).
                self.notices.add(rotation_notice("activated", cert, resolution, now))
            for fake in registration.look_alikes:
                # Flagged once per channel: the ledger makes a notice written again after it
                # was sent (every refresh writes it) a no-op.
                self.notices.add(
                    Notice(
                        tenant_id,
                        cert.sha256,
                        "look-alike",
                        fake,
                        now or datetime.now(UTC),
                        subject=cert.subject,
                        renewed=fake,
                    )
                )
            # "" for "none": the SDK leaves None out of a MERGE, which would keep a stale
            # replacement or pending list from an earlier refresh (by_tenant reads "" as None).
            self._tables("tenantcas").upsert_entity(
                {
                    "PartitionKey": tenant_id,
                    "RowKey": cert.sha256,
                    "resolved_by": resolution.resolved_by or "",
                    "resolution_basis": resolution.basis or "",
                    "renewal_pending": ",".join(registration.pending),
                    "registration_evidence": registration.evidence,
                    "state": state.state_of(cert.sha256),
                    "renewal": registration.renewed or "",
                    "renewal_check": registration.renewal_check or "",
                    "look_alikes": ",".join(registration.look_alikes),
                    "lost_trust": ",".join(t.target for t in registration.lost_trust),
                },
                mode=UpdateMode.MERGE,
            )
            # An acknowledgement that ends by itself keeps an index row at its end.
            silenced_until = cert.ack_until if cert.acknowledged else None
            self._index.place(
                cert,
                existing.get(cert.sha256, []),
                open_=state.is_open(cert.sha256) or silenced_until is not None,
                not_before=silenced_until,
            )

    def _index_matches(self, tenant_id: str, state: TenantState) -> bool:
        """No index row for a closed or vanished CA, and one for each open CA."""
        rows = self._index.tenant_rows(tenant_id)
        for sha in rows:
            cert = state.certificate(sha)
            if not state.is_open(sha) and not (cert and cert.acknowledged and cert.ack_until):
                return False
        return all(cert.sha256 in rows for cert in state.certificates if state.is_open(cert.sha256))

    def close_if_resolved(self, tenant_id: str, state: TenantState, sha256: str) -> bool:
        """For the alert pass: True when ``sha256`` is closed now; its rows are fixed."""
        if state.is_open(sha256):
            return False
        self.refresh_tenant(tenant_id)
        return True

    def by_tenant(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every tenant CA row, by tenant then SHA-256 (the report reads them all)."""
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for row in self._tables("tenantcas").list_entities():
            fields = {key: value for key, value in row.items() if value != ""}
            found.setdefault(row["PartitionKey"], {})[row["RowKey"]] = fields
        return found


class _RenewalChecks:
    """What is known of each renewal's signature: a live catalog vouches for what it lists;
    otherwise its signature is checked against the issuers on record (read once, lazily:
    most refreshes have registration evidence and never ask)."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], issuers: IssuerStore) -> None:
        self._rows = {row["RowKey"]: row for row in rows}
        self._issuers = issuers
        self._issuer_ders: list[bytes] | None = None

    def __call__(self, current: str, renewed: str) -> str:
        row = self._rows.get(renewed, {})
        if row.get("catalog") and str(row.get("catalog_status") or "").lower() in (
            LIVE_CATALOG_STATUSES
        ):
            return CATALOG
        current_der, renewed_der = _der(self._rows.get(current, {})), _der(row)
        if current_der is None or renewed_der is None:
            return str(RenewalCheck.UNAUTHENTICATED)
        if self._issuer_ders is None:
            self._issuer_ders = self._issuers.issuers()
        return str(check_renewal(current_der, renewed_der, self._issuer_ders))


def _der(row: Mapping[str, Any]) -> bytes | None:
    value = row.get("der")
    return base64.b64decode(value) if value else None


def _evidence(targets: Sequence[TargetState]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "target": t.target,
            "kind": t.kind,
            "display_name": t.display_name,
            "source": t.source,
            "seen_at": iso(t.seen_at) if t.seen_at else None,
            "renewed": t.renewed,
            "status": t.status,
        }
        for t in targets
    )


def rotation_notice(
    kind: str, cert: TenantCertificate, resolution: Resolution, now: datetime | None
) -> Notice:
    """``resolved``: which CA replaced which, on what evidence (every target that trusted
    the current CA); ``activated``: the renewal became Active in its Azure Sphere catalog
    while targets still wait (those targets)."""
    registration = resolution.registration
    resolved = kind == "resolved"
    renewed = resolution.resolved_by if resolved else registration.renewed
    targets = registration.targets if resolved else registration.pending_targets
    return Notice(
        tenant_id=cert.tenant_id,
        certificate=cert.sha256,
        kind=kind,
        ref=renewed or "",
        at=now or datetime.now(UTC),
        subject=cert.subject,
        renewed=renewed,
        renewed_thumbprint=registration.renewed_thumbprint,
        basis=resolution.basis if resolved else None,
        evidence=_evidence(targets),
    )
