"""Pipeline benchmarks (issues 3 and 13): cold import, warm per-blob latency against the
contract minimum (the same storage requests with bare SDK calls on pooled clients), the
storage requests per blob as the server counts them, and 1,000 uploaded blobs. Medians;
ratios against baselines measured in the same run."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMPORT_RUNS = 9
WARM_BLOBS = int(os.environ.get("BENCH_WARM_BLOBS", "60"))

_TIMED_IMPORT = "import time; t = time.perf_counter(); {imports}; print(time.perf_counter() - t)"
# What function_app itself imports at module level (its dependencies), without our code.
DEPENDENCY_IMPORTS = (
    "import azure.functions, azurefunctions.extensions.bindings.blob, "
    "opentelemetry.trace, opentelemetry.metrics"
)


def _import_seconds(imports: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _TIMED_IMPORT.format(imports=imports)],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def cold_start() -> dict[str, float]:
    _import_seconds("import function_app")  # warm the OS file cache and .pyc files
    app, deps = [], []
    for _ in range(IMPORT_RUNS):  # interleaved so machine noise hits both alike
        deps.append(_import_seconds(DEPENDENCY_IMPORTS))
        app.append(_import_seconds("import function_app"))
    app_ms, deps_ms = statistics.median(app) * 1e3, statistics.median(deps) * 1e3
    return {"import_function_app_ms": app_ms, "import_dependencies_ms": deps_ms,
            "cold_import_ratio": app_ms / deps_ms}  # fmt: skip


def warm_and_bulk() -> dict[str, float]:
    from azure.core.exceptions import ResourceExistsError

    from shared.app import handlers
    from shared.local import samples
    from shared.local.azurite import Azurite
    from shared.local.runner import blob_trigger_argument, process_pending, registered_function

    server = Azurite(Path(tempfile.mkdtemp(prefix="bench-azurite-"))).start()
    try:
        os.environ.update(server.environment())
        os.environ["CERT_CONTAINER"] = "benchcerts"
        handlers.reset_runtime()
        rt = handlers.runtime()
        handlers.ensure_containers(rt)
        container = rt.blobs.get_container_client("benchcerts")
        pca = samples.azure_sphere_pca()
        tenant = samples.tenant_ca(str(uuid.uuid4()), issuer=pca)
        names = []
        for i in range(WARM_BLOBS):
            name = f"warm/{i:03d}.pem"
            container.upload_blob(name, samples.device_certificate(tenant).pem, overwrite=True)
            names.append(name)
        analyze = registered_function("analyze_upload")
        floor_table = rt.store.service.get_table_client("benchfloor")
        with contextlib.suppress(ResourceExistsError):
            rt.store.service.create_table("benchfloor")
        minimum = _contract_minimum(rt)

        def ours(name: str) -> None:
            analyze(blob_trigger_argument("benchcerts", name))

        def floor(name: str) -> None:
            # The old floor (issue 3): a download plus one table upsert, bare SDK calls.
            data = container.get_blob_client(name).download_blob().readall()
            floor_table.upsert_entity({"PartitionKey": "p", "RowKey": name.replace("/", "_"),
                                       "size": len(data)})  # fmt: skip

        timings: dict[str, list[float]] = {"ours": [], "floor": [], "minimum": []}
        for name in names:  # interleaved, so that machine noise hits all three alike
            for label, step in (("ours", ours), ("floor", floor), ("minimum", minimum)):
                started = time.perf_counter()
                step(name)
                timings[label].append(time.perf_counter() - started)
        # Medians; the first few rounds warm the connection pools.
        warm_ms, floor_ms, minimum_ms = (
            statistics.median(timings[label][5:]) * 1e3 for label in ("ours", "floor", "minimum")
        )

        counted = _requests_per_blob(server, rt, tenant)
        for i in range(1000):
            container.upload_blob(f"bulk/{i:04d}.pem", samples.device_certificate(tenant).pem)
        start = time.perf_counter()
        delivered, failed = process_pending(rt, workers=8)  # the host's parallelism
        bulk_s = time.perf_counter() - start
        assert (delivered, failed) == (1000, 0), (delivered, failed)
        return {
            "warm_blob_ms": warm_ms,
            "sdk_floor_ms": floor_ms,
            "warm_latency_ratio": warm_ms / floor_ms,
            "contract_minimum_ms": minimum_ms,
            "contract_minimum_ratio": minimum_ms / floor_ms,
            "warm_vs_contract_minimum": warm_ms / minimum_ms,
            "process_1000_blobs_s": bulk_s,
            "blobs_per_second": 1000 / bulk_s,
            **counted,
        }
    finally:
        server.wipe()
        handlers.reset_runtime()


def _contract_minimum(rt: Any) -> Callable[[str], None]:
    """The storage requests issue 13 requires for one blob, made with bare SDK calls on the
    pooled clients and no code of ours between them: one ranged GET and the uploads-table
    read side by side, then the result blob, the certificate row and the upload row all at
    once (the fastest order; the function must write the upload row last)."""
    from azure.data.tables import UpdateMode

    from shared.analysis.scan import analyze_bytes, scan_document
    from shared.app.pipeline import result_blob_name
    from shared.storage.certificates import certificate_entity
    from shared.storage.keys import upload_partition
    from shared.storage.pool import run_all, submit
    from shared.storage.store import TableStore

    store = TableStore(rt.store.service, rt.rules, prefix="benchmin")
    store.tables.ensure(("certificates", "uploads"))
    certificates, uploads = store.table("certificates"), store.table("uploads")
    results = rt.blobs.get_container_client(rt.settings.results_container)
    # What is written: the same shapes as the function's, made once (our code, not requests).
    now = datetime.now(UTC)
    analysed = analyze_bytes("sample.pem", _sample_device_pem(), rt.rules, now)
    document = json.dumps(scan_document([analysed]), indent=2).encode("utf-8")
    cert_row = certificate_entity(analysed.certificates[0], ["sample.pem"], now, now)

    limit = rt.settings.max_upload_bytes

    def read_uploads(name: str) -> list[Any]:
        return list(
            uploads.query_entities("PartitionKey eq @pk", parameters={"pk": upload_partition(name)})
        )

    def required_requests(name: str) -> None:
        blob = rt.blobs.get_blob_client("benchcerts", name)
        rows = submit(read_uploads, name)
        blob.download_blob(offset=0, length=limit + 1).readall()
        rows.result()
        upload_row = {"PartitionKey": upload_partition(name), "RowKey": "etag", "name": name,
                      "status": str(analysed.status), "certificates": "[]"}  # fmt: skip
        run_all([
            partial(results.upload_blob, result_blob_name(name), document, overwrite=True),
            partial(certificates.upsert_entity, cert_row, mode=UpdateMode.REPLACE),
            partial(uploads.upsert_entity, upload_row, mode=UpdateMode.REPLACE),
        ])  # fmt: skip

    return required_requests


def _requests_per_blob(server: Any, rt: Any, tenant: Any) -> dict[str, int]:
    """Storage requests per blob as the server sees them: the runtime is pointed at a
    counting proxy in front of Azurite for three deliveries (an ordinary certificate, the
    same event again, a tenant CA)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from counting_proxy import counting_proxy

    from shared.app import handlers
    from shared.local import samples
    from shared.local.runner import blob_trigger_argument, registered_function
    from shared.storage.connections import azurite_connection_string

    setting = "CertStorage"  # the Functions connection name (mixed case by design)
    saved = os.environ[setting]
    container = rt.blobs.get_container_client("benchcerts")
    container.upload_blob("count/device.pem", samples.device_certificate(tenant).pem)
    container.upload_blob("count/tenant.cer", samples.tenant_ca(str(uuid.uuid4())).der)
    analyze = registered_function("analyze_upload")
    counts: dict[str, int] = {}
    with counting_proxy(server.blob_port) as blob, counting_proxy(server.table_port) as table:
        os.environ[setting] = azurite_connection_string(
            "127.0.0.1", blob.port, server.queue_port, table.port
        )
        handlers.reset_runtime()
        handlers.runtime()  # built once per worker (its table checks are not per blob)
        try:
            for label, name in (("requests_ordinary", "count/device.pem"),
                                ("requests_duplicate", "count/device.pem"),
                                ("requests_tenant_ca", "count/tenant.cer")):  # fmt: skip
                blob.reset()
                table.reset()
                analyze(blob_trigger_argument("benchcerts", name))
                counts[label] = len(blob.seen()) + len(table.seen())
        finally:
            os.environ[setting] = saved
            handlers.reset_runtime()
    return counts


def _sample_device_pem() -> bytes:
    from shared.local import samples

    return samples.device_certificate(samples.tenant_ca(str(uuid.uuid4()))).pem


def run() -> dict[str, float]:
    figures = cold_start()
    figures.update(warm_and_bulk())
    print(f"cold start: import function_app {figures['import_function_app_ms']:.0f} ms vs its "
          f"dependencies alone {figures['import_dependencies_ms']:.0f} ms -> ratio "
          f"{figures['cold_import_ratio']:.2f} (target <= 1.25)")  # fmt: skip
    print(f"warm per-blob latency: {figures['warm_blob_ms']:.1f} ms through the blob function vs "
          f"{figures['contract_minimum_ms']:.1f} ms contract minimum (ranged GET + uploads read, "
          f"then result blob, certificate row and upload row at once, bare SDK on pooled "
          f"clients) -> ratio {figures['warm_vs_contract_minimum']:.2f} "
          "(target <= 1.2)")  # fmt: skip
    print(f"  (issue 3's old floor, a download + one upsert: {figures['sdk_floor_ms']:.1f} ms; the "
          f"function is {figures['warm_latency_ratio']:.2f}x it)")  # fmt: skip
    print(f"storage requests per blob, counted by a proxy in front of Azurite: ordinary "
          f"certificate {figures['requests_ordinary']} (target 5), duplicate delivery "
          f"{figures['requests_duplicate']} (target 2), tenant CA "
          f"{figures['requests_tenant_ca']}")  # fmt: skip
    print(f"1,000 uploaded blobs processed 8 at once in {figures['process_1000_blobs_s']:.1f} s "
          f"= {figures['blobs_per_second']:.0f} blobs/s")  # fmt: skip
    return figures


if __name__ == "__main__":
    run()
