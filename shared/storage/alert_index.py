"""The alert index: only unresolved, unacknowledged tenant CAs, keyed by the next moment
each needs a look, so the timer reads one key range per shard (``RowKey le now``): O(due),
never O(table).

``alertindex``: PK = "open-<shard>" (a hash of the tenant id, 16 shards), RK =
"<next look ISO>|<sha256>". Sharding keeps each partition small (no hot partition; a
tenant's refresh reads 1/16 of the index) and a tenant's rows together, so a move is a
delete and an insert in one partition.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, TransactionOperation, UpdateMode

from shared.alerts.model import TenantCertificate
from shared.alerts.rules import Rules
from shared.storage.gate import NEVER, SCHEDULE_PARTITION, NextLookGate
from shared.storage.keys import iso, parse_iso
from shared.storage.pool import run_all, submit
from shared.storage.tables import Tables

LEGACY_OPEN_PARTITION = "open"  # the unsharded index of earlier versions (migrated)
INDEX_SHARDS = 16
INDEX_PARTITIONS = tuple(f"open-{shard:x}" for shard in range(INDEX_SHARDS))
INDEX_LAYOUT = "sharded-16"  # part of the schedule digest: a layout change realigns


def index_partition(tenant_id: str) -> str:
    """The alert-index shard of a tenant (stable, so its rows never change partition)."""
    return INDEX_PARTITIONS[hashlib.sha256(tenant_id.encode("utf-8")).digest()[0] % INDEX_SHARDS]


def watch_from(cert: TenantCertificate, rules: Rules) -> datetime:
    """The first moment any alert stage for this tenant CA could be due."""
    lead = timedelta(days=max(rules.stages, default=0))
    dues: list[datetime] = []
    for incident in rules.incidents:
        if cert.verdict in incident.applies_to:
            dues.extend(d.due_for(cert.not_after) for d in incident.deadlines)
    if rules.rotation:
        dues.extend(d.due_for(cert.not_after) for d in rules.rotation.deadlines)
    return min(dues) - lead if dues else cert.not_after


def index_entity(cert: TenantCertificate, row_key: str) -> dict[str, Any]:
    """The alert-index row of an open tenant CA (what the timer reads back)."""
    return {
        "PartitionKey": index_partition(cert.tenant_id),
        "RowKey": row_key,
        "sha256": cert.sha256,
        "tenant_id": cert.tenant_id,
        "sha1_thumbprint": cert.sha1_thumbprint,
        "subject": cert.subject,
        "not_before": iso(cert.not_before),
        "not_after": iso(cert.not_after),
        "verdict": cert.verdict,
    }


def tenant_certificate(
    row: Mapping[str, Any], tenant_id: str, sha256: str, **extra: Any
) -> TenantCertificate:
    """A tenant CA from a ``tenantcas`` or ``alertindex`` row (they share these fields)."""
    return TenantCertificate(
        tenant_id=tenant_id,
        sha256=sha256,
        sha1_thumbprint=row["sha1_thumbprint"],
        subject=row["subject"],
        not_before=parse_iso(row["not_before"]),
        not_after=parse_iso(row["not_after"]),
        verdict=row["verdict"],
        **extra,
    )


class AlertIndex:
    def __init__(self, tables: Tables, rules: Rules, gate: NextLookGate) -> None:
        self._tables = tables
        self.rules = rules
        self.gate = gate

    def tenant_rows(self, tenant_id: str) -> dict[str, list[str]]:
        """sha256 -> the index row keys of one tenant's open CAs."""
        existing: dict[str, list[str]] = {}
        for row in self._tables("alertindex").query_entities(
            "PartitionKey eq @pk and tenant_id eq @tenant",
            parameters={"pk": index_partition(tenant_id), "tenant": tenant_id},
            select=["RowKey", "sha256"],
        ):
            existing.setdefault(row["sha256"], []).append(row["RowKey"])
        return existing

    def place(
        self,
        cert: TenantCertificate,
        keys: list[str],
        open_: bool,
        not_before: datetime | None = None,
    ) -> None:
        """Keep one row for an open tenant CA at its first possible stage (the timer moves
        it on), or at ``not_before`` when later (an acknowledgement's end), and none for a
        closed one."""
        shard = index_partition(cert.tenant_id)
        look = watch_from(cert, self.rules)
        if not_before is not None and not_before > look:
            look = not_before
        row_key = f"{iso(look)}|{cert.sha256}" if open_ else None
        for key in keys:
            if key != row_key:
                self._tables.delete_quietly("alertindex", shard, key)
        if row_key is not None and row_key not in keys:
            self._tables("alertindex").upsert_entity(
                index_entity(cert, row_key), mode=UpdateMode.REPLACE
            )
            self.gate.lower_next_look(look)

    def remove(self, tenant_id: str, keys: Iterable[str]) -> None:
        for key in keys:
            self._tables.delete_quietly("alertindex", index_partition(tenant_id), key)

    def open_tenant_certificates(
        self, now: datetime, *, all_open: bool = False
    ) -> list[TenantCertificate]:
        """What the alert timer reads: open tenant CAs due for a look at ``now`` (a key
        range of the index); ``all_open``: every open one (``alerts plan``)."""
        upper = f"{NEVER}|~" if all_open else f"{iso(now)}|~"
        rows = self._each_shard(
            lambda pk: self._tables("alertindex").query_entities(
                "PartitionKey eq @pk and RowKey le @upper",
                parameters={"pk": pk, "upper": upper},
            )
        )
        # Two runs rescheduling at once may leave a certificate under two keys: read it
        # once, and let the next reschedule remove the extra row.
        by_sha: dict[str, TenantCertificate] = {}
        for row in rows:
            known = by_sha.get(row["sha256"])
            if known is not None:
                by_sha[row["sha256"]] = replace(
                    known, index_keys=(*known.index_keys, row["RowKey"])
                )
                continue
            by_sha[row["sha256"]] = tenant_certificate(
                row, row["tenant_id"], row["sha256"], index_keys=(row["RowKey"],)
            )
        return list(by_sha.values())

    def _each_shard(self, read: Callable[[str], Iterable[dict[str, Any]]]) -> list[Any]:
        """The rows ``read(partition)`` gives for every index shard, read side by side."""
        pages = [submit(lambda pk=pk: list(read(pk))) for pk in INDEX_PARTITIONS]
        return [row for page in pages for row in page.result()]

    def reschedule(self, moves: Iterable[tuple[TenantCertificate, datetime | None]]) -> None:
        """Move open tenant CAs' index rows to the moment each next needs a look (None:
        not again unless its tenant changes). A row never leaves its shard, so the moves of
        a shard go up to 99 operations to a transaction. Each move deletes the rows it
        read: when one is gone (a refresh closed the CA, or a concurrent run moved it),
        the batch fails and is redone one move per transaction, and that move is dropped,
        so a pass never puts back a row a refresh has just removed."""
        by_shard: dict[str, list[list[tuple[str, dict[str, Any]]]]] = {}
        for cert, check_at in moves:
            new_key = f"{iso(check_at) if check_at else NEVER}|{cert.sha256}"
            if not cert.index_keys or cert.index_keys == (new_key,):
                continue
            shard = index_partition(cert.tenant_id)
            move: list[tuple[str, dict[str, Any]]] = [
                (TransactionOperation.DELETE, {"PartitionKey": shard, "RowKey": key})
                for key in cert.index_keys
                if key != new_key
            ]
            if new_key not in cert.index_keys:
                move.append((TransactionOperation.UPSERT, index_entity(cert, new_key)))
            by_shard.setdefault(shard, []).append(move)
        batches: list[list[list[tuple[str, dict[str, Any]]]]] = []
        for shard_moves in by_shard.values():
            batch: list[list[tuple[str, dict[str, Any]]]] = []
            size = 0
            for move in shard_moves:
                if size + len(move) > 99:
                    batches.append(batch)
                    batch, size = [], 0
                batch.append(move)
                size += len(move)
            if batch:
                batches.append(batch)
        run_all(lambda batch=batch: self._submit_moves(batch) for batch in batches)

    def _submit_moves(self, batch: list[list[tuple[str, dict[str, Any]]]]) -> None:
        index = self._tables("alertindex")
        try:
            index.submit_transaction([op for move in batch for op in move])
        except (TableTransactionError, HttpResponseError):
            if len(batch) == 1:
                return  # a row of it is gone or already moved: another writer won
            for move in batch:
                with contextlib.suppress(TableTransactionError, HttpResponseError):
                    index.submit_transaction(move)

    def align_schedule(self) -> bool:
        """After the rules (or the index layout) change, put every open row back at its
        first possible stage: rows the timer had moved on were scheduled under the old
        rules. A full read of the index, done only when the digest differs. True when it
        realigned."""
        digest = hashlib.sha256(f"{INDEX_LAYOUT}|{self.rules!r}".encode()).hexdigest()
        index = self._tables("alertindex")
        try:
            if index.get_entity(SCHEDULE_PARTITION, "rules")["digest"] == digest:
                return False
        except ResourceNotFoundError:
            pass
        self._migrate_unsharded_index()
        everyone = self.open_tenant_certificates(datetime.max.replace(tzinfo=UTC), all_open=True)
        self.reschedule((cert, watch_from(cert, self.rules)) for cert in everyone)
        self.gate.clear_next_look()  # the next pass reads the index and sets it afresh
        index.upsert_entity(
            {"PartitionKey": SCHEDULE_PARTITION, "RowKey": "rules", "digest": digest}
        )
        return True

    def _migrate_unsharded_index(self) -> None:
        """Move the rows of the single-partition index (versions before sharding) into
        their shards; the realignment that follows puts them at their first stage."""
        index = self._tables("alertindex")
        legacy = list(
            index.query_entities("PartitionKey eq @pk", parameters={"pk": LEGACY_OPEN_PARTITION})
        )
        for row in legacy:
            moved = {**dict(row), "PartitionKey": index_partition(row["tenant_id"])}
            index.upsert_entity(moved, mode=UpdateMode.REPLACE)
            self._tables.delete_quietly("alertindex", LEGACY_OPEN_PARTITION, row["RowKey"])

    def first_look_after(self, moment: datetime) -> datetime | None:
        """The earliest next-look time in the index later than ``moment`` (a key seek in
        each shard)."""

        def first_key(pk: str) -> list[str]:
            rows = self._tables("alertindex").query_entities(
                "PartitionKey eq @pk and RowKey gt @after",
                parameters={"pk": pk, "after": f"{iso(moment)}|~"},
                select=["RowKey"],
                results_per_page=1,
            )
            return [row["RowKey"].split("|", 1)[0] for row in next(rows.by_page(), [])]

        earliest = min(self._each_shard(first_key), default=NEVER)
        return None if earliest == NEVER else parse_iso(earliest)
