"""Upload rows. ``uploads``: PK = a key made from the blob name, RK = the blob's ETag:
status, error and the certificates it held; older ETags of the same name are superseded and
removed. ``uploadfailures``: PK = the UTC day, RK = the upload's keys: uploads not
analysed, so the timer's self-health check reads one or two days' failures, not the
uploads table.

No property grows past a table's limit (32K characters): the upload row lists its first
``INLINE_CERTIFICATES`` SHA-256s itself (an ordinary upload costs no extra request) and
the rest in ``uploadcerts`` rows (PK = the upload's PK, RK = "<ETag>|<chunk>"), each
holding ``CERTIFICATES_PER_ROW``. Should a write fail on size anyway, the upload is
recorded as rejected (``too-large-to-record``) with a failure row: never unrecorded.

Everything is idempotent: the upload row is written last, so a retried delivery redoes the
same writes. Transient storage errors propagate so that the Functions host retries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables import UpdateMode

from shared.analysis.classify import Role
from shared.analysis.reader import ErrorCode, ReadError, Status
from shared.analysis.scan import AnalyzedCertificate, FileResult
from shared.storage.certificates import TEXT_LIMIT, CertificateStore, cut_text
from shared.storage.keys import iso, normalize_etag, table_key, upload_partition
from shared.storage.pool import run_all
from shared.storage.tables import Tables
from shared.storage.tenants import TenantStore

INLINE_CERTIFICATES = 200  # SHA-256s on the upload row itself: 200 x 67 characters
CERTIFICATES_PER_ROW = 400  # SHA-256s per ``uploadcerts`` row: 26,800 characters
_SIZE_ERRORS = ("PropertyValueTooLarge", "EntityTooLarge", "RequestBodyTooLarge")


IGNORED_LISTING_KIND = "ignored-listing"  # its rows in ``uploadfailures``


def outgrew_table(exc: HttpResponseError) -> bool:
    """A write refused because a value or row is over a table limit (not transient)."""
    text = f"{getattr(exc, 'error_code', '')} {exc}"
    return getattr(exc, "status_code", None) == 413 or any(code in text for code in _SIZE_ERRORS)


def _chunk_key(etag_key: str, index: int) -> str:
    return f"{etag_key}|{index:04d}"


class UploadStore:
    def __init__(
        self, tables: Tables, certificates: CertificateStore, tenants: TenantStore
    ) -> None:
        self._tables = tables
        self._certificates = certificates
        self._tenants = tenants

    def upload_rows(self, name: str) -> list[dict[str, Any]]:
        """Every recorded version (ETag) of one blob name: one partition read that answers
        both "is this ETag done?" and "what older content does it supersede?"."""
        return [
            dict(row)
            for row in self._tables("uploads").query_entities(
                "PartitionKey eq @pk", parameters={"pk": upload_partition(name)}
            )
        ]

    def processed_uploads(self) -> set[tuple[str, str]]:
        """(name, etag) of every recorded upload: what the local runner skips."""
        return {
            (row["name"], row["etag"])
            for row in self._tables("uploads").list_entities(select=["name", "etag"])
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
        extra: Mapping[str, Any] | None = None,
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
        tenants = {
            cert.classification.tenant_id
            for cert in unique.values()
            if cert.classification.role is Role.TENANT_CA and cert.classification.tenant_id
        }
        try:  # certificate rows are independent of each other: written side by side
            run_all(
                lambda cert=cert: self._certificates.add_source(cert, name, now)
                for cert in unique.values()
            )
        except HttpResponseError as exc:
            if not outgrew_table(exc):
                raise
            result = _too_large_to_record(result, exc)
        tenants |= self._supersede(name, set(unique), previous)
        run_all(
            lambda tenant=tenant: self._tenants.refresh_tenant(tenant) for tenant in sorted(tenants)
        )
        if before_commit is not None:
            before_commit.result()
        error = result.error
        if error is not None:  # indexed by day for the self-health check, before the commit
            self._tables("uploadfailures").upsert_entity(
                {
                    "PartitionKey": now.astimezone(UTC).date().isoformat(),
                    "RowKey": f"{upload_partition(name)}|{table_key(etag)}",
                    "name": name,
                    "status": str(result.status),
                    "error_code": str(error.code),
                    "processed_at": iso(now),
                }
            )
        shas = list(unique)
        chunk_rows = self._write_certificate_rows(name, etag, shas[INLINE_CERTIFICATES:])
        # Written last: a crash before this line leaves the upload pending, and the
        # redelivered event redoes the same (idempotent) writes above.
        self._tables("uploads").upsert_entity(
            {
                "PartitionKey": upload_partition(name),
                "RowKey": table_key(etag),
                "name": name,
                "etag": etag,
                "status": str(result.status),
                "error_code": str(error.code) if error else None,
                "error_message": cut_text(error.message, TEXT_LIMIT) if error else None,
                "format": result.format or None,
                "certificates": json.dumps(shas[:INLINE_CERTIFICATES]),
                "certificate_rows": chunk_rows,
                "processed_at": iso(now),
                **(extra or {}),
            },
            mode=UpdateMode.REPLACE,
        )
        return True

    def _write_certificate_rows(self, name: str, etag: str, shas: list[str]) -> int:
        """The SHA-256s past the inline ones, ``CERTIFICATES_PER_ROW`` a row; how many rows."""
        chunks = [
            shas[i : i + CERTIFICATES_PER_ROW] for i in range(0, len(shas), CERTIFICATES_PER_ROW)
        ]
        table = self._tables("uploadcerts")
        run_all(
            lambda index=index, chunk=chunk: table.upsert_entity(
                {
                    "PartitionKey": upload_partition(name),
                    "RowKey": _chunk_key(table_key(etag), index),
                    "certificates": json.dumps(chunk),
                },
                mode=UpdateMode.REPLACE,
            )
            for index, chunk in enumerate(chunks)
        )
        return len(chunks)

    def certificates_of(self, row: dict[str, Any]) -> list[str]:
        """Every SHA-256 an upload row stands for, inline and in ``uploadcerts`` rows."""
        shas: list[str] = json.loads(row.get("certificates") or "[]")
        for index in range(int(row.get("certificate_rows") or 0)):
            chunk = self._tables("uploadcerts").get_entity(
                row["PartitionKey"], _chunk_key(row["RowKey"], index)
            )
            shas.extend(json.loads(chunk["certificates"]))
        return shas

    def certificate_rows(self) -> dict[tuple[str, str], list[str]]:
        """Every ``uploadcerts`` row's SHA-256s by (upload PK, upload RK), in chunk order
        (the report reads them all in one listing)."""
        found: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
        for row in self._tables("uploadcerts").list_entities():
            etag_key, _, index = row["RowKey"].rpartition("|")
            found.setdefault((row["PartitionKey"], etag_key), []).append(
                (index, json.loads(row["certificates"]))
            )
        return {
            key: [sha for _, chunk in sorted(rows) for sha in chunk] for key, rows in found.items()
        }

    def _supersede(self, name: str, keep: set[str], previous: list[dict[str, Any]]) -> set[str]:
        """Remove what older content under the same name contributed; the affected tenants."""
        tenants: set[str] = set()
        for row in previous:  # never this ETag's row: record_upload returned on it
            for sha in self.certificates_of(row):
                if sha not in keep:
                    tenant = self._certificates.remove_source(sha, name)
                    if tenant:
                        tenants.add(tenant)
            # The chunk rows before the upload row: a crash in between leaves a row whose
            # certificates are already let go, and the retry lets them go again.
            for index in range(int(row.get("certificate_rows") or 0)):
                self._tables.delete_quietly(
                    "uploadcerts", row["PartitionKey"], _chunk_key(row["RowKey"], index)
                )
            self._tables.delete_quietly("uploads", row["PartitionKey"], row["RowKey"])
        return tenants

    def record_ignored_listing(self, name: str, target: str, outcome: str, now: datetime) -> None:
        """An uploaded listing that changed nothing (``live-target``, ``stale-listing``), in
        the day's failures index: `process` and the self-health check name it."""
        self._tables("uploadfailures").upsert_entity(
            {
                "PartitionKey": now.astimezone(UTC).date().isoformat(),
                "RowKey": f"{upload_partition(name)}|ignored|{table_key(target)}",
                "name": name,
                "target": target,
                "kind": IGNORED_LISTING_KIND,
                "status": "ignored",
                "error_code": outcome,
                "processed_at": iso(now),
            },
            mode=UpdateMode.REPLACE,
        )

    def retire(self, name: str, by: str, note: str | None, now: datetime) -> int:
        """Hide a junk upload from the report and its exit code (audited on its rows).
        Returns how many rows (one per content the name has held) were marked."""
        rows = self.upload_rows(name)
        for row in rows:
            self._tables("uploads").upsert_entity(
                {
                    "PartitionKey": row["PartitionKey"],
                    "RowKey": row["RowKey"],
                    "retired_by": by,
                    "retired_at": iso(now),
                    "retired_note": note,
                },
                mode=UpdateMode.MERGE,
            )
        return len(rows)

    def failed_uploads(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Uploads refused or unreadable between ``since`` and ``until``: one partition
        read per UTC day in the span (two for the timer's 24 hours)."""
        day, last = since.astimezone(UTC).date(), until.astimezone(UTC).date()
        rows: list[dict[str, Any]] = []
        while day <= last:
            rows.extend(
                dict(row)
                for row in self._tables("uploadfailures").query_entities(
                    "PartitionKey eq @day and processed_at ge @since and processed_at le @until",
                    parameters={"day": day.isoformat(), "since": iso(since), "until": iso(until)},
                )
            )
            day += timedelta(days=1)
        return sorted(rows, key=lambda row: str(row["name"]))


def _too_large_to_record(result: FileResult, exc: HttpResponseError) -> FileResult:
    reason = next((code for code in _SIZE_ERRORS if code in str(exc)), "a table limit")
    error = ReadError(
        ErrorCode.TOO_LARGE_TO_RECORD,
        f"a value of this upload does not fit a table row ({reason}); its certificates "
        "are in its result blob but not in the tables",
    )
    return result._replace(status=Status.REJECTED, error=error)
