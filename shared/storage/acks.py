"""Operator acknowledgements. ``acks``: PK = tenant id, RK = SHA-256, or "*" for every CA of
the tenant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.storage.keys import iso, parse_iso
from shared.storage.tables import Tables


@dataclass(frozen=True)
class Acknowledgement:
    by: str
    at: datetime
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "at": iso(self.at), "note": self.note}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Acknowledgement:
        return cls(row["by"], parse_iso(row["at"]), row.get("note"))


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
        self, tenant_id: str, sha256: str | None, by: str, note: str | None, now: datetime
    ) -> None:
        """Silence one tenant CA (or, with sha256 None, every CA of the tenant)."""
        self._tables("acks").upsert_entity(
            {
                "PartitionKey": tenant_id,
                "RowKey": sha256 or "*",
                "by": by,
                "at": iso(now),
                "note": note,
            }
        )
