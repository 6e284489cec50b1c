"""Table storage for analysed uploads (adapter; the only module that knows the tables).

Tables and keys:
- ``certificates``: PK = first 2 hex of the SHA-256 (spreads load), RK = SHA-256. Every
  fact, the verdict, first/last seen and the blob names it came from.
- ``uploads``: PK = a key made from the blob name, RK = the blob's ETag. Status, error and
  the certificates it held. Older ETags of the same name are superseded and removed.
- ``tenantcas``: PK = tenant id, RK = SHA-256: the tenant CAs of each tenant, so a
  replacement can be found in one partition read.
- ``alertindex``: PK = "open-<shard>" (a hash of the tenant id, 16 shards), RK =
  "<next look ISO>|<sha256>": only unresolved, unacknowledged tenant CAs, ordered by the
  next moment each needs a look, so the timer reads one key range per shard
  (``RowKey le now``): O(due), never O(table). Sharding keeps each partition small (no hot
  partition; a tenant's refresh reads 1/16 of the index) and a tenant's rows together, so
  a move is a delete and an insert in one partition.
- ``acks``: PK = tenant id, RK = SHA-256: operator acknowledgements.
- ``uploadfailures``: PK = the UTC day, RK = the upload's keys: uploads not analysed, so the
  timer's self-health check reads one or two days' failures, not the uploads table.
- ``ledger``: the alert ledger, owned by ``shared.storage.ledger``.

Everything is idempotent: the upload row is written last, so a retried delivery redoes
the same writes; certificate rows merge their sources under ETag concurrency.
Transient storage errors propagate so that the Functions host retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import (
    TableClient,
    TableServiceClient,
    TableTransactionError,
    UpdateMode,
)

from shared.alerts.model import TenantCertificate
from shared.alerts.planner import resolve_replacements
from shared.alerts.rules import Rules
from shared.analysis.classify import Role
from shared.analysis.scan import AnalyzedCertificate, FileResult

_POOL_PREFIX = "ca-watch-store"
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix=_POOL_PREFIX)


def _in_pool() -> bool:
    # A pool thread that waited on tasks of the same pool could deadlock it: run inline.
    return threading.current_thread().name.startswith(_POOL_PREFIX)


def submit(task: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
    if _in_pool():
        done: Future[Any] = Future()
        try:
            done.set_result(task(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as the pool would
            done.set_exception(exc)
        return done
    return _POOL.submit(task, *args, **kwargs)


def run_all(tasks: Iterable[Callable[[], object]]) -> None:
    """Run independent storage calls side by side (each is a network round trip);
    re-raise the first failure so the host retries the event."""
    pending = list(tasks)
    if len(pending) == 1 or _in_pool():
        for task in pending:
            task()
        return
    for future in [_POOL.submit(task) for task in pending]:
        future.result()


TABLES = (
    "certificates",
    "uploads",
    "uploadfailures",
    "tenantcas",
    "alertindex",
    "acks",
    "ledger",
)
LEGACY_OPEN_PARTITION = "open"  # the unsharded index of earlier versions (migrated)
INDEX_SHARDS = 16
INDEX_PARTITIONS = tuple(f"open-{shard:x}" for shard in range(INDEX_SHARDS))
INDEX_LAYOUT = "sharded-16"  # part of the schedule digest: a layout change realigns
NEVER = "9999-12-31T23:59:59Z"  # an index time later than any run
SCHEDULE_PARTITION = "schedule"  # one row: the digest of the rules the index was timed by
_MAX_CONFLICT_RETRIES = 20
# Table keys may not hold these characters; they are percent-encoded.
_KEY_UNSAFE = {"/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F", "%": "%25"}


def table_key(value: str) -> str:
    out = "".join(_KEY_UNSAFE.get(ch, ch) for ch in value)
    return "".join(ch if ch >= " " and ch != "\x7f" else f"%{ord(ch):02X}" for ch in out)


def normalize_etag(etag: str) -> str:
    """The SDKs quote ETags in some answers and not in others; compare them bare."""
    return etag.strip().strip('"')


def upload_partition(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]


def index_partition(tenant_id: str) -> str:
    """The alert-index shard of a tenant (stable, so its rows never change partition)."""
    return INDEX_PARTITIONS[hashlib.sha256(tenant_id.encode("utf-8")).digest()[0] % INDEX_SHARDS]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Acknowledgement:
    by: str
    at: datetime
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "at": iso(self.at), "note": self.note}


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


def _tenant_certificate(
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


class TableStore:
    def __init__(self, service: TableServiceClient, rules: Rules, prefix: str = "") -> None:
        self.service = service
        self.rules = rules
        self.prefix = prefix
        self._tables: dict[str, TableClient] = {}

    def table(self, name: str) -> TableClient:
        client = self._tables.get(name)
        if client is None:
            client = self.service.get_table_client(self.prefix + name)
            self._tables[name] = client
        return client

    def ensure_tables(self) -> None:
        for name in TABLES:
            with contextlib.suppress(ResourceExistsError):
                self.service.create_table(self.prefix + name)

    # --- uploads ---------------------------------------------------------------------
    def upload_rows(self, name: str) -> list[dict[str, Any]]:
        """Every recorded version (ETag) of one blob name: one partition read that answers
        both "is this ETag done?" and "what older content does it supersede?"."""
        return [
            dict(row)
            for row in self.table("uploads").query_entities(
                "PartitionKey eq @pk", parameters={"pk": upload_partition(name)}
            )
        ]

    def processed_uploads(self) -> set[tuple[str, str]]:
        """(name, etag) of every recorded upload: what the local runner skips."""
        return {
            (row["name"], row["etag"])
            for row in self.table("uploads").list_entities(select=["name", "etag"])
        }

    def record_upload(
        self,
        name: str,
        etag: str,
        result: FileResult,
        now: datetime,
        *,
        previous: list[dict[str, Any]] | None = None,
        before_commit: Future[Any] | None = None,
    ) -> bool:
        """Record one analysed (or refused) blob. False when it was already recorded.
        ``previous``: the name's upload rows, when the caller has just read them;
        ``before_commit``: other work (the result blob) that must succeed first."""
        etag = normalize_etag(etag)
        if previous is None:
            previous = self.upload_rows(name)
        if any(row["RowKey"] == table_key(etag) for row in previous):
            return False  # a duplicate delivery of the same event
        unique: dict[str, AnalyzedCertificate] = {}
        for cert in result.certificates:
            unique.setdefault(cert.sha256, cert)
        # Certificate rows are independent of each other: write them side by side.
        run_all(lambda cert=cert: self._add_source(cert, name, now) for cert in unique.values())
        tenants = {
            cert.classification.tenant_id
            for cert in unique.values()
            if cert.classification.role is Role.TENANT_CA and cert.classification.tenant_id
        }
        tenants |= self._supersede(name, etag, set(unique), previous)
        run_all(lambda tenant=tenant: self.refresh_tenant(tenant) for tenant in sorted(tenants))
        if before_commit is not None:
            before_commit.result()
        error = result.error
        if error is not None:  # indexed by day for the self-health check, before the commit
            self.table("uploadfailures").upsert_entity(
                {
                    "PartitionKey": now.astimezone(UTC).date().isoformat(),
                    "RowKey": f"{upload_partition(name)}|{table_key(etag)}",
                    "name": name,
                    "status": str(result.status),
                    "error_code": str(error.code),
                    "processed_at": iso(now),
                }
            )
        # Written last: a crash before this line leaves the upload pending, and the
        # redelivered event redoes the same (idempotent) writes above.
        self.table("uploads").upsert_entity(
            {
                "PartitionKey": upload_partition(name),
                "RowKey": table_key(etag),
                "name": name,
                "etag": etag,
                "status": str(result.status),
                "error_code": str(error.code) if error else None,
                "error_message": error.message if error else None,
                "format": result.format or None,
                "certificates": json.dumps(list(unique)),
                "processed_at": iso(now),
            },
            mode=UpdateMode.REPLACE,
        )
        return True

    def _supersede(
        self, name: str, etag: str, keep: set[str], previous: list[dict[str, Any]]
    ) -> set[str]:
        """Remove what older content under the same name contributed; the affected tenants."""
        tenants: set[str] = set()
        for row in previous:
            if row["RowKey"] == table_key(etag):
                continue
            for sha in json.loads(row.get("certificates") or "[]"):
                if sha not in keep:
                    tenant = self._remove_source(sha, name)
                    if tenant:
                        tenants.add(tenant)
            self._delete_quietly("uploads", row["PartitionKey"], row["RowKey"])
        return tenants

    # --- certificates ----------------------------------------------------------------
    def _add_source(self, cert: AnalyzedCertificate, name: str, now: datetime) -> None:
        table = self.table("certificates")
        try:  # most certificates are new: one request on the common path
            table.create_entity(self.certificate_entity(cert, [name], now, now))
        except ResourceExistsError:
            self._merge_source(cert, name, now)
        if cert.classification.role is Role.TENANT_CA and cert.classification.tenant_id:
            facts = cert.facts
            self.table("tenantcas").upsert_entity(
                {
                    "PartitionKey": cert.classification.tenant_id,
                    "RowKey": cert.sha256,
                    "sha1_thumbprint": facts.sha1_thumbprint,
                    "subject": facts.subject,
                    "not_before": iso(facts.not_before),
                    "not_after": iso(facts.not_after),
                    "verdict": str(cert.classification.verdict),
                },
                mode=UpdateMode.MERGE,
            )

    def _merge_source(self, cert: AnalyzedCertificate, name: str, now: datetime) -> None:
        """Add a source to an existing row under ETag concurrency (another upload of the
        same certificate may be merging at the same moment)."""
        table = self.table("certificates")
        for _ in range(_MAX_CONFLICT_RETRIES):
            try:
                row = table.get_entity(cert.sha256[:2], cert.sha256)
            except ResourceNotFoundError:
                try:
                    table.create_entity(self.certificate_entity(cert, [name], now, now))
                    return
                except ResourceExistsError:
                    continue  # created concurrently: merge into it
            sources = json.loads(row.get("sources") or "[]")
            if name not in sources:
                sources.append(name)
            entity = self.certificate_entity(
                cert, sorted(sources), parse_iso(row["first_seen"]), now
            )
            try:
                table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return
            except (ResourceModifiedError, HttpResponseError) as exc:
                if getattr(exc, "status_code", None) != 412:
                    raise
        raise RuntimeError(f"certificate {cert.sha256}: too many concurrent updates")

    def certificate_entity(
        self, cert: AnalyzedCertificate, sources: list[str], first: datetime, last: datetime
    ) -> dict[str, Any]:
        body = cert.to_json()
        return {
            "PartitionKey": cert.sha256[:2],
            "RowKey": cert.sha256,
            "document": json.dumps(body, separators=(",", ":")),
            "verdict": body["verdict"],
            "role": body["azure_sphere"]["role"],
            "tenant_id": body["azure_sphere"]["tenant_id"],
            "not_before": body["not_before"],
            "not_after": body["not_after"],
            "mismatch": body["signature_algorithm"]["mismatch"],
            "sha1_thumbprint": body["sha1_thumbprint"],
            "sources": json.dumps(sources),
            "first_seen": iso(first),
            "last_seen": iso(last),
        }

    def _remove_source(self, sha: str, name: str) -> str | None:
        """Drop one blob name from a certificate; delete the row when no source is left.
        Returns the tenant id of a tenant CA that was touched."""
        table = self.table("certificates")
        for _ in range(_MAX_CONFLICT_RETRIES):
            try:
                row = table.get_entity(sha[:2], sha)
            except ResourceNotFoundError:
                return None
            sources = [s for s in json.loads(row.get("sources") or "[]") if s != name]
            tenant = row.get("tenant_id") if row.get("role") == str(Role.TENANT_CA) else None
            try:
                if sources:
                    row["sources"] = json.dumps(sources)
                    table.update_entity(
                        row,
                        mode=UpdateMode.REPLACE,
                        etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                else:
                    table.delete_entity(
                        sha[:2],
                        sha,
                        etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                    if tenant:
                        self._delete_quietly("tenantcas", tenant, sha)
                return tenant
            except (ResourceModifiedError, HttpResponseError) as exc:
                if getattr(exc, "status_code", None) != 412:
                    raise
        raise RuntimeError(f"certificate {sha}: too many concurrent updates")

    def _delete_quietly(self, table: str, pk: str, rk: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.table(table).delete_entity(pk, rk)

    # --- tenants, resolution and the alert index -----------------------------------
    def tenant_certificates(self, tenant_id: str) -> list[TenantCertificate]:
        acks = self.acknowledgements(tenant_id)
        rows = self.table("tenantcas").query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_id}
        )
        return [
            _tenant_certificate(
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
        index = self.table("alertindex")
        shard = index_partition(tenant_id)
        existing: dict[str, list[str]] = {}
        for row in index.query_entities(
            "PartitionKey eq @pk and tenant_id eq @tenant",
            parameters={"pk": shard, "tenant": tenant_id},
            select=["RowKey", "sha256"],
        ):
            existing.setdefault(row["sha256"], []).append(row["RowKey"])
        live = {cert.sha256 for cert in certs}
        for sha, keys in existing.items():
            if sha not in live:
                for key in keys:
                    self._delete_quietly("alertindex", shard, key)
        for cert in certs:
            resolver = resolved.get(cert.sha256)
            self.table("tenantcas").upsert_entity(
                {"PartitionKey": tenant_id, "RowKey": cert.sha256, "resolved_by": resolver},
                mode=UpdateMode.MERGE,
            )
            keys = existing.get(cert.sha256, [])
            # Open, and looked at from its first possible stage (the timer moves it on).
            row_key = (
                None
                if resolver or cert.acknowledged
                else (f"{iso(watch_from(cert, self.rules))}|{cert.sha256}")
            )
            for key in keys:
                if key != row_key:
                    self._delete_quietly("alertindex", shard, key)
            if row_key is not None and row_key not in keys:
                index.upsert_entity(index_entity(cert, row_key), mode=UpdateMode.REPLACE)
                self.lower_next_look(watch_from(cert, self.rules))

    def open_tenant_certificates(
        self, now: datetime, *, all_open: bool = False
    ) -> list[TenantCertificate]:
        """What the alert timer reads: open tenant CAs due for a look at ``now`` (a key
        range of the index); ``all_open``: every open one (``alerts plan``)."""
        upper = f"{NEVER}|~" if all_open else f"{iso(now)}|~"
        rows = self._each_shard(
            lambda pk: self.table("alertindex").query_entities(
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
            by_sha[row["sha256"]] = _tenant_certificate(
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
        a shard go up to 49 to a transaction (an upsert and a delete each); a batch that
        fails (a concurrent run moved a row first) is redone row by row. Upsert before
        delete: a crash in between leaves two rows, costing one extra read, never an alert."""
        by_shard: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for cert, check_at in moves:
            new_key = f"{iso(check_at) if check_at else NEVER}|{cert.sha256}"
            if not cert.index_keys or cert.index_keys == (new_key,):
                continue
            shard = index_partition(cert.tenant_id)
            operations = by_shard.setdefault(shard, [])
            if new_key not in cert.index_keys:
                operations.append(("upsert", index_entity(cert, new_key)))
            operations.extend(
                ("delete", {"PartitionKey": shard, "RowKey": key})
                for key in cert.index_keys
                if key != new_key
            )
        batches = [
            operations[start : start + 99]
            for operations in by_shard.values()
            for start in range(0, len(operations), 99)
        ]
        run_all(lambda batch=batch: self._submit_moves(batch) for batch in batches)

    def _submit_moves(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        index = self.table("alertindex")
        try:
            index.submit_transaction(batch)
        except (TableTransactionError, HttpResponseError):
            for kind, entity in batch:
                if kind == "upsert":
                    index.upsert_entity(entity, mode=UpdateMode.REPLACE)
                else:
                    self._delete_quietly("alertindex", entity["PartitionKey"], entity["RowKey"])

    def align_schedule(self) -> bool:
        """After the rules (or the index layout) change, put every open row back at its
        first possible stage: rows the timer had moved on were scheduled under the old
        rules. A full read of the index, done only when the digest differs. True when it
        realigned."""
        digest = hashlib.sha256(f"{INDEX_LAYOUT}|{self.rules!r}".encode()).hexdigest()
        index = self.table("alertindex")
        try:
            if index.get_entity(SCHEDULE_PARTITION, "rules")["digest"] == digest:
                return False
        except ResourceNotFoundError:
            pass
        self._migrate_unsharded_index()
        everyone = self.open_tenant_certificates(datetime.max.replace(tzinfo=UTC), all_open=True)
        self.reschedule((cert, watch_from(cert, self.rules)) for cert in everyone)
        self.clear_next_look()  # the next pass reads the index and sets it afresh
        index.upsert_entity(
            {"PartitionKey": SCHEDULE_PARTITION, "RowKey": "rules", "digest": digest}
        )
        return True

    def _migrate_unsharded_index(self) -> None:
        """Move the rows of the single-partition index (versions before sharding) into
        their shards; the realignment that follows puts them at their first stage."""
        index = self.table("alertindex")
        legacy = list(
            index.query_entities("PartitionKey eq @pk", parameters={"pk": LEGACY_OPEN_PARTITION})
        )
        for row in legacy:
            moved = {**dict(row), "PartitionKey": index_partition(row["tenant_id"])}
            index.upsert_entity(moved, mode=UpdateMode.REPLACE)
            self._delete_quietly("alertindex", LEGACY_OPEN_PARTITION, row["RowKey"])

    # --- the gate: when the index next holds something to look at ---------------------
    # One row says the earliest next-look time in the whole index, so a pass with nothing
    # due reads one row instead of querying the index. Writers only ever *lower* it (under
    # ETag); the timer raises it after a pass only if nobody lowered it meanwhile.

    def next_look(self) -> tuple[datetime, str] | None:
        """(earliest next-look time, the row's ETag), or None when unknown."""
        try:
            row = self.table("alertindex").get_entity(SCHEDULE_PARTITION, "next")
        except ResourceNotFoundError:
            return None
        return parse_iso(row["at"]), row.metadata["etag"]

    def lower_next_look(self, at: datetime) -> None:
        """Make sure the gate opens by ``at`` (a tenant CA was added or reopened)."""
        index = self.table("alertindex")
        entity = {"PartitionKey": SCHEDULE_PARTITION, "RowKey": "next", "at": iso(at)}
        for _ in range(_MAX_CONFLICT_RETRIES):
            current = self.next_look()
            try:
                if current is None:
                    index.create_entity(entity)
                elif current[0] > at:
                    index.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=current[1],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return
            except (ResourceExistsError, ResourceModifiedError):
                continue  # someone else moved it: look again
            except HttpResponseError as exc:
                if getattr(exc, "status_code", None) != 412:
                    raise
        self.clear_next_look()  # contended: fall back to always reading the index

    def raise_next_look(self, at: datetime | None, seen: tuple[datetime, str] | None) -> None:
        """After a pass: the gate opens at ``at`` (None: never), unless it changed since the
        pass read it as ``seen`` (a writer lowered it: keep theirs)."""
        entity = {
            "PartitionKey": SCHEDULE_PARTITION,
            "RowKey": "next",
            "at": iso(at) if at else NEVER,
        }
        index = self.table("alertindex")
        try:
            if seen is None:
                index.create_entity(entity)
            else:
                index.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=seen[1],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError):
            pass
        except HttpResponseError as exc:
            if getattr(exc, "status_code", None) != 412:
                raise

    def clear_next_look(self) -> None:
        self._delete_quietly("alertindex", SCHEDULE_PARTITION, "next")

    def first_look_after(self, moment: datetime) -> datetime | None:
        """The earliest next-look time in the index later than ``moment`` (a key seek in
        each shard)."""

        def first_key(pk: str) -> list[str]:
            rows = self.table("alertindex").query_entities(
                "PartitionKey eq @pk and RowKey gt @after",
                parameters={"pk": pk, "after": f"{iso(moment)}|~"},
                select=["RowKey"],
                results_per_page=1,
            )
            return [row["RowKey"].split("|", 1)[0] for row in next(rows.by_page(), [])]

        earliest = min(self._each_shard(first_key), default=NEVER)
        return None if earliest == NEVER else parse_iso(earliest)

    def failed_uploads(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Uploads refused or unreadable between ``since`` and ``until``: one partition
        read per UTC day in the span (two for the timer's 24 hours)."""
        day, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
        rows: list[dict[str, Any]] = []
        while day <= last:
            rows.extend(
                dict(row)
                for row in self.table("uploadfailures").query_entities(
                    "PartitionKey eq @day and processed_at ge @since and processed_at le @until",
                    parameters={"day": day.isoformat(), "since": iso(since), "until": iso(until)},
                )
            )
            day += timedelta(days=1)
        return sorted(rows, key=lambda row: str(row["name"]))

    # --- acknowledgements --------------------------------------------------------------
    def acknowledgements(self, tenant_id: str) -> dict[str, Acknowledgement]:
        rows = self.table("acks").query_entities(
            "PartitionKey eq @pk", parameters={"pk": tenant_id}
        )
        return {
            row["RowKey"]: Acknowledgement(row["by"], parse_iso(row["at"]), row.get("note"))
            for row in rows
        }

    def acknowledge(
        self, tenant_id: str, sha256: str | None, by: str, note: str | None, now: datetime
    ) -> None:
        """Silence one tenant CA (or, with sha256 None, every CA of the tenant)."""
        self.table("acks").upsert_entity(
            {
                "PartitionKey": tenant_id,
                "RowKey": sha256 or "*",
                "by": by,
                "at": iso(now),
                "note": note,
            }
        )
        self.refresh_tenant(tenant_id)

    def find_tenant_ca(self, reference: str) -> tuple[str, str | None] | None:
        """(tenant_id, sha256 or None) for a tenant id, a SHA-256 or a SHA-1 thumbprint."""
        ref = reference.strip().lower().replace(":", "")
        if len(ref) == 36 and ref.count("-") == 4:
            return ref, None
        table = self.table("certificates")
        if len(ref) == 64:
            try:
                row = table.get_entity(ref[:2], ref)
                return (row["tenant_id"], ref) if row.get("tenant_id") else None
            except ResourceNotFoundError:
                return None
        if len(ref) == 40:
            for row in table.query_entities(
                "sha1_thumbprint eq @t",
                parameters={"t": ref.upper()},
                select=["RowKey", "tenant_id"],
            ):
                return (row["tenant_id"], row["RowKey"]) if row.get("tenant_id") else None
        return None

    # --- the report --------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        tenants: dict[str, dict[str, dict[str, Any]]] = {}
        for row in self.table("tenantcas").list_entities():
            tenants.setdefault(row["PartitionKey"], {})[row["RowKey"]] = dict(row)
        acks_by_tenant: dict[str, dict[str, Acknowledgement]] = {}
        for row in self.table("acks").list_entities():
            acks_by_tenant.setdefault(row["PartitionKey"], {})[row["RowKey"]] = Acknowledgement(
                row["by"], parse_iso(row["at"]), row.get("note")
            )
        certificates = []
        for row in self.table("certificates").list_entities():
            body = json.loads(row["document"])
            body["sources"] = json.loads(row.get("sources") or "[]")
            body["first_seen"], body["last_seen"] = row["first_seen"], row["last_seen"]
            tenant = row.get("tenant_id")
            tenant_row = tenants.get(tenant or "", {}).get(row["RowKey"], {})
            body["resolved_by"] = tenant_row.get("resolved_by")
            acks = acks_by_tenant.get(tenant or "", {})
            ack = acks.get(row["RowKey"]) or (acks.get("*") if tenant_row else None)
            body["acknowledged"] = ack.to_json() if ack else None
            certificates.append(body)
        certificates.sort(key=lambda c: (c["azure_sphere"]["tenant_id"] or "~", c["not_before"]))
        uploads = [
            {
                "name": row["name"],
                "etag": row["etag"],
                "status": row["status"],
                "error": (
                    {"code": row["error_code"], "message": row["error_message"]}
                    if row.get("error_code")
                    else None
                ),
                "certificates": json.loads(row.get("certificates") or "[]"),
                "processed_at": row.get("processed_at"),
            }
            for row in self.table("uploads").list_entities()
        ]
        uploads.sort(key=lambda u: u["name"])
        return {"schema": "ca-watch/report/v1", "certificates": certificates, "uploads": uploads}

    def iter_rows(self, table: str) -> Iterator[dict[str, Any]]:
        yield from (dict(row) for row in self.table(table).list_entities())

    def delete_all(self, tables: Iterable[str] = TABLES) -> None:
        """Drop the tables (tests and `make run` start clean)."""
        for name in tables:
            with contextlib.suppress(ResourceNotFoundError):
                self.service.delete_table(self.prefix + name)
        self._tables.clear()
