"""Tenant CAs and their resolution. ``tenantcas``: PK = tenant id, RK = SHA-256: the tenant
CAs of each tenant, so a replacement is found in one partition read; ``resolved_by`` names
the replacement. Every change to a tenant re-times its rows in the alert index."""

from __future__ import annotations

from typing import Any

from azure.data.tables import UpdateMode

from shared.alerts.model import TenantCertificate
from shared.alerts.planner import resolve_replacements
from shared.alerts.rules import Rules
from shared.storage.acks import AckStore
from shared.storage.alert_index import AlertIndex, tenant_certificate
from shared.storage.tables import Tables


class TenantStore:
    def __init__(self, tables: Tables, rules: Rules, index: AlertIndex, acks: AckStore) -> None:
        self._tables = tables
        self.rules = rules
        self._index = index
        self._acks = acks

    def add(self, tenant_id: str, sha256: str, fields: dict[str, Any]) -> None:
        """Record a tenant CA (its facts; resolution is computed by ``refresh``)."""
        self._tables("tenantcas").upsert_entity(
            {"PartitionKey": tenant_id, "RowKey": sha256, **fields}, mode=UpdateMode.MERGE
        )

    def remove(self, tenant_id: str, sha256: str) -> None:
        self._tables.delete_quietly("tenantcas", tenant_id, sha256)

    def tenant_certificates(self, tenant_id: str) -> list[TenantCertificate]:
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

    def refresh_tenant(self, tenant_id: str) -> None:
        """Recompute replacements and acknowledgements of one tenant and rewrite its
        alert-index rows (only the open ones are indexed)."""
        certs = self.tenant_certificates(tenant_id)
        resolved = resolve_replacements(certs, self.rules)
        existing = self._index.tenant_rows(tenant_id)
        live = {cert.sha256 for cert in certs}
        for sha, keys in existing.items():
            if sha not in live:
                self._index.remove(tenant_id, keys)
        for cert in certs:
            resolver = resolved.get(cert.sha256)
            self._tables("tenantcas").upsert_entity(
                {"PartitionKey": tenant_id, "RowKey": cert.sha256, "resolved_by": resolver},
                mode=UpdateMode.MERGE,
            )
            self._index.place(
                cert,
                existing.get(cert.sha256, []),
                open_=not (resolver or cert.acknowledged),
            )

    def by_tenant(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every tenant CA row, by tenant then SHA-256 (the report reads them all)."""
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for row in self._tables("tenantcas").list_entities():
            found.setdefault(row["PartitionKey"], {})[row["RowKey"]] = dict(row)
        return found
