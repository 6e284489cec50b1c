"""Operator acknowledgements (DESIGN §4 "Resolved", rule 3): scoped and audited.

``acks``: PK = tenant id, RK = SHA-256 of one acknowledged tenant CA. An acknowledgement of
a tenant is written as one row per CA on record at that moment (``scope`` "tenant"), so it
never covers a CA first seen later. ``until`` (optional) ends it by itself; ``withdraw``
ends it now. Rows of earlier versions with RK "*" (every CA of the tenant) cover only the
CAs issued before the acknowledgement was made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.storage.keys import iso, parse_iso
from shared.storage.tables import Tables

LEGACY_WHOLE_TENANT = "*"


@dataclass(frozen=True)
class Acknowledgement:
    by: str
    at: datetime
    note: str | None
    until: datetime | None = None
    scope: str = "certificate"  # certificate | tenant (the CAs on record at ``at``)

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "at": iso(self.at),
            "note": self.note,
            "until": iso(self.until) if self.until else None,
            "scope": self.scope,
        }

    def covers(self, not_before: datetime, now: datetime | None) -> bool:
        """In force at ``now`` (None: ignore ``until``) for a CA issued at ``not_before``."""
        if self.scope == "legacy-tenant" and not_before > self.at:
            return False
        return self.until is None or now is None or now < self.until

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Acknowledgement:
        legacy = row.get("RowKey") == LEGACY_WHOLE_TENANT
        return cls(
            row["by"],
            parse_iso(row["at"]),
            row.get("note"),
            parse_iso(row["until"]) if row.get("until") else None,
            "legacy-tenant" if legacy else row.get("scope") or "certificate",
        )


class AckStore:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def of_tenant(self, tenant_id: str) -> dict[str, Acknowledgement]:
        rows = self._tables("acks").query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_id}
        )
        return {row["RowKey"]: Acknowledgement.from_row(row) for row in rows}

    def by_tenant(self) -> dict[str, dict[str, Acknowledgement]]:
        """Every acknowledgement, by tenant then SHA-256 (the report reads them all)."""
        found: dict[str, dict[str, Acknowledgement]] = {}
        for row in self._tables("acks").list_entities():
            found.setdefault(row["PartitionKey"], {})[row["RowKey"]] = Acknowledgement.from_row(row)
        return found

    def record(
        self,
        tenant_id: str,
        certificates: Iterable[str],
        by: str,
        note: str | None,
        now: datetime,
        *,
        until: datetime | None = None,
        scope: str = "certificate",
    ) -> list[str]:
        """Silence these tenant CAs (SHA-256s: the one named, or every CA of the tenant on
        record now). Returns the SHA-256s acknowledged."""
        shas = sorted(set(certificates))
        for sha in shas:
            self._tables("acks").upsert_entity(
                {
                    "PartitionKey": tenant_id,
                    "RowKey": sha,
                    "by": by,
                    "at": iso(now),
                    "note": note,
                    "until": iso(until) if until else None,
                    "scope": scope,
                }
            )
        return shas

    def withdraw(self, tenant_id: str, certificates: Iterable[str] | None) -> list[str]:
        """End acknowledgements now: of these SHA-256s, or (None) every one of the tenant.
        Returns the row keys withdrawn."""
        current = self.of_tenant(tenant_id)
        wanted = list(current) if certificates is None else list(certificates)
        gone = [key for key in wanted if key in current]
        for key in gone:
            self._tables.delete_quietly("acks", tenant_id, key)
        return gone
