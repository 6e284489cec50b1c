"""Announcements owed (DESIGN §4 "Every resolution is announced").

``notices``: PK = "pending", RK = "<tenant>|<sha256>|<kind>|<ref>": one row per resolution,
acknowledgement, withdrawal or retirement to announce. The alert pass sends each once per
channel under the ledger, then deletes the row; the same event written twice (two refreshes
at once) is one row.
"""

from __future__ import annotations

import json
from typing import Any

from azure.data.tables import UpdateMode

from shared.alerts.notice_message import Notice
from shared.storage.keys import iso, parse_iso, table_key
from shared.storage.tables import Tables

PENDING = "pending"
MAX_NOTICES_PER_PASS = 200  # a backlog drains over several passes, never unbounded


def notice_key(notice: Notice) -> str:
    return table_key(f"{notice.tenant_id}|{notice.certificate}|{notice.kind}|{notice.ref}")


def notice_entity(notice: Notice) -> dict[str, Any]:
    return {
        "PartitionKey": PENDING,
        "RowKey": notice_key(notice),
        "tenant_id": notice.tenant_id,
        "certificate": notice.certificate,
        "kind": notice.kind,
        "ref": notice.ref,
        "at": iso(notice.at),
        "subject": notice.subject,
        "renewed": notice.renewed,
        "renewed_thumbprint": notice.renewed_thumbprint,
        "by": notice.by,
        "until": iso(notice.until) if notice.until else None,
        "basis": notice.basis,
        # Targets are few (a document names at most 20): this stays far under 32K.
        "evidence": json.dumps(list(notice.evidence), separators=(",", ":")),
    }


def notice_from_row(row: dict[str, Any]) -> Notice:
    try:
        evidence = tuple(json.loads(row.get("evidence") or "[]"))
    except ValueError:
        evidence = ()
    return Notice(
        row["tenant_id"],
        row["certificate"],
        row["kind"],
        row.get("ref") or "",
        parse_iso(row["at"]),
        row.get("subject") or "",
        row.get("renewed"),
        row.get("renewed_thumbprint"),
        row.get("by"),
        parse_iso(row["until"]) if row.get("until") else None,
        row.get("basis"),
        evidence,
    )


class NoticeStore:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables

    def add(self, notice: Notice) -> None:
        self._tables("notices").upsert_entity(notice_entity(notice), mode=UpdateMode.REPLACE)

    def pending(self, limit: int = MAX_NOTICES_PER_PASS) -> list[Notice]:
        rows = self._tables("notices").query_entities(
            "PartitionKey eq @pk", parameters={"pk": PENDING}, results_per_page=limit
        )
        out = []
        for row in rows:
            out.append(notice_from_row(row))
            if len(out) >= limit:
                break
        return sorted(out, key=lambda n: (n.at, n.tenant_id, notice_key(n)))

    def done(self, notice: Notice) -> None:
        self._tables.delete_quietly("notices", PENDING, notice_key(notice))
