"""The exactly-once alert ledger on the ``ledger`` table (adapter; DESIGN §4).

Keys: PartitionKey = ``table_key("<channel>|<deadline_id>|<stage_key>")``, RowKey = the
certificate's SHA-256. Every item of one stage on one channel shares a partition, so a
run reads all claims of a stage with one partition query and writes claims and marks in
entity-group transactions of up to 100 rows: a pass over 1,000 due items costs tens of
round trips, not thousands.

Protocol: claim (create the row; take over only a stale claim, or a failed or unknown row
whose backoff has passed, under ETag), then send, then mark ``sent``, ``failed`` (nothing
arrived) or ``unknown`` (it may have arrived; ``unclear_sends`` counts these, and a row is
not tried after two). A run that loses a claim race owns nothing and sends nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableTransactionError, TransactionOperation, UpdateMode

from shared.alerts.model import LedgerEntry, LedgerKey, LedgerStatus
from shared.alerts.planner import (
    CLAIM_TIMEOUT,
    MAX_UNCLEAR_SENDS,
    Decision,
    decide,
    next_attempt_after,
)
from shared.storage.keys import iso, parse_iso, table_key

BATCH = 100  # the Table service's limit on operations per entity-group transaction
# A non-retryable failure (bad webhook, refused recipient) needs a human: try once a day
# rather than every few minutes, but never give the message up.
NON_RETRYABLE_BACKOFF = timedelta(hours=24)
MAX_ERROR_CHARS = 1000
_ROW_ATTEMPTS = 4  # per-row claim: create / re-read / update cycles before giving up


def partition_key(key: LedgerKey) -> str:
    return table_key(f"{key.channel}|{key.deadline_id}|{key.stage_key}")


def row_key(key: LedgerKey) -> str:
    return table_key(key.certificate)


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _opt_time(row: dict[str, Any], name: str) -> datetime | None:
    value = row.get(name)
    return parse_iso(value) if value else None


def _entry(key: LedgerKey, row: dict[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        key=key,
        status=LedgerStatus(row.get("status") or LedgerStatus.CLAIMED),
        attempts=int(row.get("attempts") or 0),
        claimed_at=_opt_time(row, "claimed_at"),
        sent_at=_opt_time(row, "sent_at"),
        next_attempt_at=_opt_time(row, "next_attempt_at"),
        error=row.get("error"),
        unclear_sends=int(row.get("unclear_sends") or 0),
    )


def _unclear_after_takeover(row: dict[str, Any]) -> int:
    """A stale claim's run may have sent before it died: the takeover may repeat it."""
    unclear = int(row.get("unclear_sends") or 0)
    return unclear + 1 if row.get("status") == str(LedgerStatus.CLAIMED) else unclear


def _is_conflict(exc: HttpResponseError) -> bool:
    """A row exists (409), changed under us (412) or is gone (404, released by another
    run since we read it): another run got there first."""
    return getattr(exc, "status_code", None) in (404, 409, 412)


class Ledger:
    """One run's view of the ledger. It remembers the rows (and ETags) it read or wrote,
    so claims of rows it saw are ETag-guarded updates and failures count attempts."""

    def __init__(self, table: TableClient, claim_timeout: timedelta = CLAIM_TIMEOUT) -> None:
        self.table = table
        self.claim_timeout = claim_timeout
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}

    # --- reading ---------------------------------------------------------------------
    def read_entries(self, keys: Iterable[LedgerKey]) -> dict[LedgerKey, LedgerEntry]:
        """The ledger rows of ``keys`` that exist: one partition query per stage."""
        by_partition: dict[str, dict[str, LedgerKey]] = defaultdict(dict)
        for key in keys:
            by_partition[partition_key(key)][row_key(key)] = key
        out: dict[LedgerKey, LedgerEntry] = {}
        for pk, wanted in by_partition.items():
            for row in self.table.query_entities("PartitionKey eq @pk", parameters={"pk": pk}):
                key = wanted.get(row["RowKey"])
                if key is None:
                    continue  # a certificate of the same stage this run does not ask about
                entity = dict(row)
                entity["__etag"] = row.metadata["etag"]
                self._rows[(pk, row["RowKey"])] = entity
                out[key] = _entry(key, entity)
        return out

    # --- claiming --------------------------------------------------------------------
    def _claim_entity(self, key: LedgerKey, run_id: str, now: datetime) -> dict[str, Any]:
        previous = self._rows.get((partition_key(key), row_key(key)), {})
        return {
            "PartitionKey": partition_key(key),
            "RowKey": row_key(key),
            "tenant_id": key.tenant_id,
            "certificate": key.certificate,
            "deadline_id": key.deadline_id,
            "stage_key": key.stage_key,
            "channel": key.channel,
            "status": str(LedgerStatus.CLAIMED),
            "claimed_by": run_id,
            "claimed_at": iso(now),
            # Attempts and the last error survive a takeover so that backoff keeps growing.
            "attempts": int(previous.get("attempts") or 0),
            "unclear_sends": _unclear_after_takeover(previous),
            "error": previous.get("error"),
            "sent_at": None,
            "next_attempt_at": None,
            "provider_id": None,
        }

    def claim(self, keys: Iterable[LedgerKey], run_id: str, now: datetime) -> set[LedgerKey]:
        """Claim ``keys`` for this run; returns the ones it won (and may now send).

        Rows this ledger has not seen are created, rows it has seen are taken over under
        their ETag, 100 per transaction. A transaction is all or nothing: when one fails
        because another run created or changed a row, its rows are retried one by one.
        """
        by_partition: dict[str, list[LedgerKey]] = defaultdict(list)
        for key in dict.fromkeys(keys):
            by_partition[partition_key(key)].append(key)
        won: set[LedgerKey] = set()
        for pk, partition_keys in by_partition.items():
            for chunk in _chunks(partition_keys):
                # A row read as sent, freshly claimed or backing off is not ours to take.
                chunk = [k for k in chunk if self._may_claim(k, now)]
                if not chunk:
                    continue
                entities = [self._claim_entity(k, run_id, now) for k in chunk]
                operations: list[Any] = []
                for entity in entities:
                    seen = self._rows.get((pk, entity["RowKey"]))
                    if seen is None:
                        operations.append((TransactionOperation.CREATE, entity))
                    else:
                        operations.append(
                            (
                                TransactionOperation.UPDATE,
                                entity,
                                {
                                    "mode": UpdateMode.REPLACE,
                                    "etag": seen["__etag"],
                                    "match_condition": MatchConditions.IfNotModified,
                                },
                            )
                        )
                try:
                    results = self.table.submit_transaction(operations)
                except TableTransactionError as exc:
                    if not _is_conflict(exc):
                        raise
                    for key, entity in zip(chunk, entities, strict=True):
                        if self._claim_one(key, entity, now):
                            won.add(key)
                    continue
                for key, entity, meta in zip(chunk, entities, results, strict=True):
                    self._remember(entity, meta.get("etag"))
                    won.add(key)
        return won

    def _may_claim(self, key: LedgerKey, now: datetime) -> bool:
        seen = self._rows.get((partition_key(key), row_key(key)))
        if seen is None:
            return True
        return decide(_entry(key, seen), now, self.claim_timeout) is Decision.RETRY

    def _remember(self, entity: dict[str, Any], etag: str | None) -> None:
        self._rows[(entity["PartitionKey"], entity["RowKey"])] = {**entity, "__etag": etag}

    def _claim_one(self, key: LedgerKey, entity: dict[str, Any], now: datetime) -> bool:
        """Claim one row outside a transaction; False when another run owns it."""
        pk, rk = entity["PartitionKey"], entity["RowKey"]
        for _ in range(_ROW_ATTEMPTS):
            try:
                current = self.table.get_entity(pk, rk)
            except ResourceNotFoundError:
                try:
                    meta = self.table.create_entity(entity)
                except ResourceExistsError:
                    continue  # created a moment ago by another run: look at it
                self._remember(entity, meta.get("etag"))
                return True
            if decide(_entry(key, dict(current)), now, self.claim_timeout) is not Decision.RETRY:
                return False  # sent, freshly claimed, or failed and backing off
            # Keep the counts and the last error the row really holds, as a takeover of a
            # row this run had read does (not what this run read earlier, if anything).
            entity = {
                **entity,
                "attempts": int(current.get("attempts") or 0),
                "unclear_sends": _unclear_after_takeover(dict(current)),
                "error": current.get("error"),
            }
            try:
                meta = self.table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except HttpResponseError as exc:
                if not _is_conflict(exc):
                    raise
                continue  # changed or released since we read it: look again
            self._remember(entity, meta.get("etag"))
            return True
        return False  # contended this hard, another run is clearly on it

    # --- marking -----------------------------------------------------------------------
    def _merge(self, rows: Iterable[dict[str, Any]]) -> None:
        """Merge ``rows`` (PartitionKey/RowKey + fields) in transactions of 100.

        No ETag: the send has happened (or failed), and recording that is what matters.
        """
        by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_partition[row["PartitionKey"]].append(row)
        for partition_rows in by_partition.values():
            for chunk in _chunks(partition_rows):
                results = self.table.submit_transaction(
                    [
                        (TransactionOperation.UPSERT, row, {"mode": UpdateMode.MERGE})
                        for row in chunk
                    ]
                )
                for row, meta in zip(chunk, results, strict=True):
                    key = (row["PartitionKey"], row["RowKey"])
                    self._rows[key] = {**self._rows.get(key, {}), **row, "__etag": meta.get("etag")}

    def mark_sent(
        self, keys: Iterable[LedgerKey], now: datetime, provider_id: str | None = None
    ) -> None:
        self._merge(
            {
                "PartitionKey": partition_key(k),
                "RowKey": row_key(k),
                "status": str(LedgerStatus.SENT),
                "sent_at": iso(now),
                "provider_id": provider_id,
                "next_attempt_at": None,
            }
            for k in dict.fromkeys(keys)
        )

    def mark_failed(
        self,
        keys: Iterable[LedgerKey],
        now: datetime,
        error: str,
        *,
        retryable: bool = True,
        retry_after: timedelta | None = None,
    ) -> None:
        """Record a failed send: attempts + 1, the error, and when to try again (never
        sooner than the peer's ``retry_after``)."""
        rows = []
        for k in dict.fromkeys(keys):
            pk, rk = partition_key(k), row_key(k)
            attempts = int(self._rows.get((pk, rk), {}).get("attempts") or 0) + 1
            retry_at = (
                next_attempt_after(attempts, now) if retryable else now + NON_RETRYABLE_BACKOFF
            )
            if retry_after is not None:  # as the peer asked, up to a day
                retry_at = max(retry_at, now + min(retry_after, NON_RETRYABLE_BACKOFF))
            rows.append(
                {
                    "PartitionKey": pk,
                    "RowKey": rk,
                    "status": str(LedgerStatus.FAILED),
                    "attempts": attempts,
                    "error": error[:MAX_ERROR_CHARS],
                    "next_attempt_at": iso(retry_at),
                }
            )
        self._merge(rows)

    def mark_unknown(self, keys: Iterable[LedgerKey], now: datetime, error: str) -> None:
        """Record a send whose outcome is unknown (it may have arrived): attempts and
        unclear sends + 1. A later run tries once more (after the backoff) and marks that
        message as a possible repeat; after ``MAX_UNCLEAR_SENDS`` it is not tried again."""
        rows = []
        for k in dict.fromkeys(keys):
            pk, rk = partition_key(k), row_key(k)
            seen = self._rows.get((pk, rk), {})
            attempts = int(seen.get("attempts") or 0) + 1
            unclear = int(seen.get("unclear_sends") or 0) + 1
            retry_at = next_attempt_after(attempts, now) if unclear < MAX_UNCLEAR_SENDS else None
            rows.append(
                {
                    "PartitionKey": pk,
                    "RowKey": rk,
                    "status": str(LedgerStatus.UNKNOWN),
                    "attempts": attempts,
                    "unclear_sends": unclear,
                    "error": error[:MAX_ERROR_CHARS],
                    "next_attempt_at": iso(retry_at) if retry_at else None,
                }
            )
        self._merge(rows)

    def entry(self, key: LedgerKey) -> LedgerEntry | None:
        """The row of ``key`` as this ledger last read or wrote it (no round trip)."""
        row = self._rows.get((partition_key(key), row_key(key)))
        return _entry(key, row) if row else None

    def release(self, keys: Iterable[LedgerKey]) -> None:
        """Give up this run's claims without sending (items cut from a message by the size
        limit). The rows are deleted under the ETag of our claim, so the next run finds no
        row and plans them afresh; a row another run has taken over since is left alone.
        (A released row that had failed before loses its attempt count: it is about to be
        sent anyway.)"""
        by_partition: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for k in dict.fromkeys(keys):
            pk, rk = partition_key(k), row_key(k)
            etag = self._rows.pop((pk, rk), {}).get("__etag")
            if etag:
                by_partition[pk].append((rk, etag))
        for pk, rows in by_partition.items():
            for chunk in _chunks(rows):
                operations: list[Any] = [
                    (
                        TransactionOperation.DELETE,
                        {"PartitionKey": pk, "RowKey": rk},
                        {"etag": etag, "match_condition": MatchConditions.IfNotModified},
                    )
                    for rk, etag in chunk
                ]
                try:
                    self.table.submit_transaction(operations)
                except TableTransactionError as exc:
                    if not _is_conflict(exc):
                        raise
                    for rk, etag in chunk:  # one row changed: delete the others one by one
                        self._delete_one(pk, rk, etag)

    def _delete_one(self, pk: str, rk: str, etag: str) -> None:
        try:
            self.table.delete_entity(
                pk, rk, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except HttpResponseError as exc:  # gone, or taken over by another run: leave it
            if not _is_conflict(exc):
                raise
