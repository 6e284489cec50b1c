"""Benchmark: the fleet report (``report --html``) for 1,000 and 10,000 tenant CAs, straight
from the tables on a fresh Azurite, in milliseconds, with the ratio to ``report --json``
(the report/v1 document serialised) on the same data. Medians of a few runs.

The tables are written directly (transactions of 100 per partition): certificates, tenant
CAs, uploads (1% unreadable) and the ledger's sent stages, shaped like a fleet after the
2020 incident (10% affected, a fifth of those renewed).
Run: ``.venv/bin/python scripts/bench_report.py [--sizes 50,200]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZES = (1_000, 10_000)
REPEATS = 3
NOW = datetime(2020, 9, 1, 9, tzinfo=UTC)
ISO = "%Y-%m-%dT%H:%M:%SZ"
ACTIVATION = "azure-sphere-2020-07/activation"


def _cert(
    tenant: str, sha: str, not_before: datetime, verdict: str, subject: str | None = None
) -> dict[str, Any]:
    return {
        "sha256_fingerprint": sha,
        "sha1_thumbprint": sha[:40].upper(),
        "subject": subject or f"C=US, O=Microsoft Corporation, CN=Microsoft Azure Sphere {tenant}",
        "issuer": "CN=Microsoft Azure Sphere PCA01, O=Microsoft Corporation",
        "serial_number": sha[:16],
        "not_before": not_before.strftime(ISO),
        "not_after": (not_before + timedelta(days=730)).strftime(ISO),
        "is_ca": True,
        "signature_algorithm": {
            "outer": {
                "oid": "1.2.840.10045.4.3.2",
                "name": "ecdsa-with-SHA256",
                "parameters": None,
            },
            "inner": {
                "oid": "1.2.840.10045.4.3.2",
                "name": "ecdsa-with-SHA256",
                "parameters": None,
            },
            "mismatch": "oid" if verdict == "affected" else "none",
        },
        "azure_sphere": {"role": "tenant-ca", "tenant_id": tenant},
        "verdict": verdict,
        "reasons": [],
        "actions": [],
    }


def synthetic_fleet(tenant_cas: int, *, hostile: str | None = None) -> dict[str, Any]:
    """A report/v1 document with ``tenant_cas`` tenant CAs: every 10th tenant affected by
    the 2020 incident, every 50th renewed (two CAs, the old one resolved), 1% of the
    uploads unreadable; ``hostile`` goes into every subject and blob name."""
    certificates, uploads = [], []
    index = 0
    while len(certificates) < tenant_cas:
        tenant = str(uuid.UUID(int=index + 1))
        affected = index % 10 == 0
        start = (
            datetime(2020, 7, 1, tzinfo=UTC) + timedelta(minutes=index)
            if affected
            else datetime(2019, 1, 1, tzinfo=UTC) + timedelta(hours=17 * index)
        )
        sha = f"{index:064x}"
        subject = f"C=US, L={hostile}, O=Microsoft Corporation, CN=Microsoft Azure Sphere {tenant}"
        cert = _cert(tenant, sha, start, "affected" if affected else "ok", hostile and subject)
        name = f"tenant-{tenant}/{hostile or ''}CAcertificate.cer"
        cert.update(sources=[name], resolved_by=None, acknowledged=None)
        certificates.append(cert)
        uploads.append(_upload(name, [sha]))
        if index % 50 == 0 and len(certificates) < tenant_cas:
            renewed = _cert(
                tenant, f"{index:032x}{'f' * 32}", datetime(2020, 8, 20, tzinfo=UTC), "ok"
            )
            renewed.update(sources=[name + ".renewed"], resolved_by=None, acknowledged=None)
            cert["resolved_by"] = renewed["sha256_fingerprint"]
            certificates.append(renewed)
        if index % 100 == 7:
            uploads.append(_upload(f"junk/{hostile or ''}{index}.txt", [], "not-a-certificate"))
        index += 1
    return {"schema": "ca-watch/report/v1", "certificates": certificates, "uploads": uploads}


def _upload(name: str, shas: list[str], error: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "etag": "0x1",
        "status": "unreadable" if error else "analyzed",
        "format": None if error else "der",
        "error": {"code": error, "message": "no certificate in this file"} if error else None,
        "certificates": shas,
        "processed_at": NOW.strftime(ISO),
    }


def _rows(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, entity) for every row the store would hold for ``document``."""
    from shared.storage.keys import table_key, upload_partition

    seen = NOW.strftime(ISO)
    for cert in document["certificates"]:
        body = {
            k: v for k, v in cert.items() if k not in ("sources", "resolved_by", "acknowledged")
        }
        sha, tenant = cert["sha256_fingerprint"], cert["azure_sphere"]["tenant_id"]
        yield "certificates", {
            "PartitionKey": sha[:2], "RowKey": sha, "document": json.dumps(body),
            "verdict": cert["verdict"], "role": "tenant-ca", "tenant_id": tenant,
            "not_before": cert["not_before"], "not_after": cert["not_after"],
            "sources": json.dumps(cert["sources"]), "first_seen": seen, "last_seen": seen,
        }  # fmt: skip
        yield "tenantcas", {
            "PartitionKey": tenant, "RowKey": sha, "sha1_thumbprint": cert["sha1_thumbprint"],
            "subject": cert["subject"], "not_before": cert["not_before"],
            "not_after": cert["not_after"], "verdict": cert["verdict"],
            "resolved_by": cert["resolved_by"],
        }  # fmt: skip
        if cert["verdict"] == "affected" and not cert["resolved_by"]:
            yield "ledger", {
                "PartitionKey": table_key(f"outbox|{ACTIVATION}|overdue@2020-08-26"),
                "RowKey": sha, "tenant_id": tenant, "certificate": sha,
                "deadline_id": ACTIVATION, "stage_key": "overdue@2020-08-26",
                "channel": "outbox", "status": "sent", "sent_at": "2020-08-26T09:00:00Z",
            }  # fmt: skip
    for upload in document["uploads"]:
        error = upload["error"] or {}
        yield "uploads", {
            "PartitionKey": upload_partition(upload["name"]), "RowKey": upload["etag"],
            "name": upload["name"], "etag": upload["etag"], "status": upload["status"],
            "error_code": error.get("code"), "error_message": error.get("message"),
            "format": upload["format"], "certificates": json.dumps(upload["certificates"]),
            "processed_at": upload["processed_at"],
        }  # fmt: skip


def seed(store: Any, document: dict[str, Any], workers: int = 8) -> None:
    """Write ``document`` into the store's tables, 100 rows per transaction, a few
    transactions at once (a tenant is a partition: one transaction each)."""
    from concurrent.futures import ThreadPoolExecutor

    batches: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for table, entity in _rows(document):
        batches[(table, entity["PartitionKey"])].append(entity)
    jobs = [
        (table, entities[start : start + 100])
        for (table, _pk), entities in batches.items()
        for start in range(0, len(entities), 100)
    ]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda job: store.table(job[0]).submit_transaction(
            [("upsert", e) for e in job[1]]), jobs))  # fmt: skip


def _median_ms(work: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def run(sizes: tuple[int, ...] = SIZES, repeats: int = REPEATS) -> dict[str, Any]:
    from shared.alerts.rules import load_rules
    from shared.app.handlers import Runtime
    from shared.app.report_writer import fleet_report
    from shared.local.azurite import Azurite
    from shared.settings import Settings
    from shared.storage.connections import table_service
    from shared.storage.store import TableStore

    results: dict[str, Any] = {"sizes": {}}
    workdir = Path(tempfile.mkdtemp(prefix="bench-report-"))
    azurite = Azurite(workdir).start()
    try:
        import os

        os.environ.update(azurite.environment())
        rules = load_rules()
        for size in sizes:
            store = TableStore(table_service(), rules, prefix=f"r{size}")
            store.delete_all()
            store.ensure_tables()
            document = synthetic_fleet(size)
            seed(store, document)
            rt = Runtime(Settings(), rules, store, blobs=None)  # type: ignore[arg-type]
            json_ms = _median_ms(lambda s=store: json.dumps(s.report(), indent=2), repeats)
            html_ms = _median_ms(lambda rt=rt: fleet_report(rt, NOW), repeats)
            page = fleet_report(rt, NOW)[1]
            results["sizes"][size] = {
                "report_json_ms": round(json_ms, 1),
                "report_html_ms": round(html_ms, 1),
                "html_to_json_ratio": round(html_ms / json_ms, 2),
                "html_bytes": len(page.encode()),
            }
            print(
                f"{size:>6} tenant CAs: --json {json_ms:8.1f} ms   --html {html_ms:8.1f} ms   "
                f"ratio {html_ms / json_ms:5.2f}   page {len(page.encode()) / 1e6:.2f} MB"
            )
            store.delete_all()
    finally:
        azurite.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    run(tuple(int(s) for s in args.sizes.split(",")), args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
