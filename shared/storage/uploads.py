"""Upload rows. ``uploads``: PK = a key made from the blob name, RK = the blob's ETag:
status, error and the certificates it held; older ETags of the same name are superseded and
removed. ``uploadfailures``: PK = the UTC day, RK = the upload's keys: uploads not
analysed, so the timer's self-health check reads one or two days' failures, not the
uploads table.

Everything is idempotent: the upload row is written last, so a retried delivery redoes the
same writes. Transient storage errors propagate so that the Functions host retries."""

from __future__ import annotations

import json
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import UpdateMode

from shared.analysis.classify import Role
from shared.analysis.scan import AnalyzedCertificate, FileResult
from shared.storage.certificates import CertificateStore
from shared.storage.keys import iso, normalize_etag, table_key, upload_partition
from shared.storage.pool import run_all
from shared.storage.tables import Tables
from shared.storage.tenants import TenantStore


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
        run_all(
            lambda cert=cert: self._certificates.add_source(cert, name, now)
            for cert in unique.values()
        )
        tenants = {
            cert.classification.tenant_id
            for cert in unique.values()
            if cert.classification.role is Role.TENANT_CA and cert.classification.tenant_id
        }
        tenants |= self._supersede(name, etag, set(unique), previous)
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
                    tenant = self._certificates.remove_source(sha, name)
                    if tenant:
                        tenants.add(tenant)
            self._tables.delete_quietly("uploads", row["PartitionKey"], row["RowKey"])
        return tenants

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
