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

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.data.tables import UpdateMode

from shared.alerts.model import TenantCertificate
from shared.alerts.planner import replacement_candidates
from shared.alerts.registration import Resolution, TargetSnapshot, resolve_with_evidence
from shared.alerts.rules import Rules
from shared.storage.acks import AckStore
from shared.storage.alert_index import AlertIndex, tenant_certificate
from shared.storage.registrations import RegistrationStore
from shared.storage.tables import Tables

log = logging.getLogger("ca_watch.tenants")
MAX_REFRESH_ROUNDS = 20


@dataclass(frozen=True)
class TenantState:
    """One tenant as the source of truth has it now: its CAs and their resolutions."""

    certificates: tuple[TenantCertificate, ...]
    resolutions: dict[str, Resolution]
    evidence_digest: tuple[Any, ...]  # what evidence was read (a change means: again)

    def is_open(self, sha256: str) -> bool:
        cert = next((c for c in self.certificates if c.sha256 == sha256), None)
        if cert is None or cert.acknowledged:
            return False
        resolution = self.resolutions.get(sha256)
        return not (resolution and resolution.resolved_by)


class TenantStore:
    def __init__(
        self,
        tables: Tables,
        rules: Rules,
        index: AlertIndex,
        acks: AckStore,
        registrations: RegistrationStore,
    ) -> None:
        self._tables = tables
        self.rules = rules
        self._index = index
        self._acks = acks
        self.registrations = registrations

    def add(self, tenant_id: str, sha256: str, fields: dict[str, Any]) -> None:
        """Record a tenant CA (its facts; resolution is computed by ``refresh``)."""
        if fields.get("sha1_thumbprint"):
            self.registrations.add_thumbprint(fields["sha1_thumbprint"], sha256, tenant_id)
        self._tables("tenantcas").upsert_entity(
            {"PartitionKey": tenant_id, "RowKey": sha256, **fields}, mode=UpdateMode.MERGE
        )

    def remove(self, tenant_id: str, sha256: str) -> None:
        self._tables.delete_quietly("tenantcas", tenant_id, sha256)

    def tenant_certificates(
        self, tenant_id: str, acks: Mapping[str, Any] | None = None
    ) -> list[TenantCertificate]:
        """The tenant's CAs (``acks``: its acknowledgements, when the caller read them)."""
        if acks is None:
            acks = self._acks.of_tenant(tenant_id)
        rows = self._tables("tenantcas").query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_id}
        )
        return [
            tenant_certificate(
                row,
                tenant_id,
                row["RowKey"],
                acknowledged=row["RowKey"] in acks or "*" in acks,
            )
            for row in rows
        ]

    def state(
        self,
        tenant_id: str,
        snapshots: Sequence[TargetSnapshot] | None = None,
        acks: Mapping[str, Any] | None = None,
    ) -> TenantState:
        """The tenant's CAs and resolutions from the tables (``snapshots`` and ``acks``:
        when the caller has read them already, as the alert pass does once per pass)."""
        certs = self.tenant_certificates(tenant_id, acks)
        candidates = replacement_candidates(certs, self.rules)
        if snapshots is None:
            snapshots = self.registrations.snapshots() if any(candidates.values()) else []
        resolutions = resolve_with_evidence(certs, candidates, snapshots)
        digest = (
            tuple(sorted((c.sha256, c.acknowledged) for c in certs)),
            tuple((s.target, s.seen_at, s.entries) for s in snapshots),
        )
        return TenantState(tuple(certs), resolutions, digest)

    def refresh_tenant(self, tenant_id: str) -> None:
        """Recompute replacements and acknowledgements of one tenant and rewrite its
        alert-index rows (only the open ones are indexed), until its inputs hold still."""
        for _ in range(MAX_REFRESH_ROUNDS):
            state = self.state(tenant_id)
            self._write(tenant_id, state)
            again = self.state(tenant_id)
            if again.evidence_digest == state.evidence_digest and self._index_matches(
                tenant_id, again
            ):
                return
        log.warning("tenant %s kept changing while being refreshed", tenant_id)

    def _write(self, tenant_id: str, state: TenantState) -> None:
        existing = self._index.tenant_rows(tenant_id)
        live = {cert.sha256 for cert in state.certificates}
        for sha, keys in existing.items():
            if sha not in live:
                self._index.remove(tenant_id, keys)
        for cert in state.certificates:
            resolution = state.resolutions[cert.sha256]  # resolve_with_evidence answers each
            # "" for "none": the SDK leaves None out of a MERGE, which would keep a stale
            # replacement or pending list from an earlier refresh (by_tenant reads "" as None).
            self._tables("tenantcas").upsert_entity(
                {
                    "PartitionKey": tenant_id,
                    "RowKey": cert.sha256,
                    "resolved_by": resolution.resolved_by or "",
                    "renewal_pending": ",".join(resolution.registration.pending),
                    "registration_evidence": resolution.registration.evidence,
                },
                mode=UpdateMode.MERGE,
            )
            self._index.place(cert, existing.get(cert.sha256, []), open_=state.is_open(cert.sha256))

    def _index_matches(self, tenant_id: str, state: TenantState) -> bool:
        """No index row for a closed or vanished CA, and one for each open CA."""
        rows = self._index.tenant_rows(tenant_id)
        for sha in rows:
            if not state.is_open(sha):
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
