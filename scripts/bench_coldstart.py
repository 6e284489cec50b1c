"""Cold start of a worker (issue 23): the storage requests and the wall time from building the
runtime to the end of its first blob, and of its first timer run, in a fresh interpreter each,
against Azurite behind a counting proxy (the server side counts the requests).

"before" is main's cold start, reproduced in the same run: the runtime, then the table
creations (one per table of TABLES) it made on every worker start (each a 409 on an account
whose tables exist).
"after" is today's: the tables come from the deployment, so the worker creates none; a missing
table (an account without tables: Azurite, a local run) is created on its first TableNotFound.
Medians of interleaved samples; ratios after / before."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

SAMPLES = int(os.environ.get("BENCH_COLDSTART_SAMPLES", "5"))

# One worker's cold start, timed from the runtime's construction (imports are the same
# before and after, and bench_pipeline measures them).
_WORKER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
mode, kind, container, name = sys.argv[2:]
from shared.app import handlers
from shared.local.runner import blob_trigger_argument, registered_function
analyze = registered_function("analyze_upload")
start = time.perf_counter()
rt = handlers.runtime()
if mode == "before":
    rt.store.ensure_tables()  # what runtime() did on every worker start until issue 23
if kind == "blob":
    analyze(blob_trigger_argument(container, name))
else:
    handlers.send_alerts()
print(json.dumps({"wall_ms": (time.perf_counter() - start) * 1e3}))
"""


def _worker(env: dict[str, str], mode: str, kind: str, container: str, name: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, str(ROOT), mode, kind, container, name],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"cold-start worker failed: {done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["wall_ms"])


def run(samples: int = SAMPLES) -> dict[str, Any]:
    from counting_proxy import counting_proxy

    from shared.local import samples as certs
    from shared.local.azurite import Azurite
    from shared.storage.connections import azurite_connection_string, blob_service, table_service
    from shared.storage.tables import Tables

    server = Azurite(Path(tempfile.mkdtemp(prefix="bench-coldstart-"))).start()
    outbox = tempfile.mkdtemp(prefix="bench-coldstart-outbox-")
    try:
        env_direct = {"CertStorage": server.connection_string}
        blobs = blob_service(env_direct)
        tables = Tables(table_service(env_direct))
        tables.ensure()  # what the deployment does (infra/app/storage.bicep)
        container = "benchcoldcerts"
        for name in (container, "benchcoldresults", "benchcoldreports"):
            with contextlib.suppress(Exception):
                blobs.create_container(name)
        tenant = certs.tenant_ca(str(uuid.uuid4()))
        uploads = blobs.get_container_client(container)

        figures: dict[str, Any] = {"samples": samples}
        with counting_proxy(server.blob_port) as blob, counting_proxy(server.table_port) as table:
            env = {
                **os.environ,
                "CertStorage": azurite_connection_string(
                    "127.0.0.1", blob.port, server.queue_port, table.port
                ),
                "CERT_CONTAINER": container,
                "RESULTS_CONTAINER": "benchcoldresults",
                "REPORT_CONTAINER": "benchcoldreports",
                "ALERT_OUTBOX_DIR": outbox,
                "ALERT_CHANNELS": "outbox",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
            env.pop("RULES_FILE", None)
            env.pop("REGISTRATION_TARGETS", None)

            def one(mode: str, kind: str) -> tuple[int, float]:
                name = f"cold/{uuid.uuid4().hex}.pem"  # a new blob: never a duplicate event
                if kind == "blob":
                    uploads.upload_blob(name, certs.device_certificate(tenant).pem)
                blob.reset()
                table.reset()
                wall = _worker(env, mode, kind, container, name)
                return len(blob.seen()) + len(table.seen()), wall

            # Not counted: the very first timer run also writes the day's fleet report, and the
            # first blob of a tenant its bookkeeping; every sample then does the same work.
            one("after", "blob")
            one("after", "timer")
            seen: dict[tuple[str, str], list[tuple[int, float]]] = {}
            for _ in range(samples):  # interleaved so machine noise hits both alike
                for kind in ("blob", "timer"):
                    for mode in ("before", "after"):
                        seen.setdefault((kind, mode), []).append(one(mode, kind))
            for kind in ("blob", "timer"):
                row: dict[str, float] = {}
                for mode in ("before", "after"):
                    row[f"{mode}_requests"] = statistics.median(r for r, _ in seen[(kind, mode)])
                    row[f"{mode}_wall_ms"] = statistics.median(w for _, w in seen[(kind, mode)])
                row["requests_ratio"] = row["after_requests"] / row["before_requests"]
                row["wall_ratio"] = row["after_wall_ms"] / row["before_wall_ms"]
                figures[f"first_{kind}"] = row

            # An account nobody provisioned (Azurite, a local run): the tables appear on use.
            tables.drop()
            figures["first_blob_without_tables_requests"] = one("after", "blob")[0]
        return figures
    finally:
        server.wipe()


def print_summary(figures: dict[str, Any]) -> None:
    for kind, label in (("blob", "first blob"), ("timer", "first timer run")):
        row = figures[f"first_{kind}"]
        print(f"cold start, {label}: {row['before_requests']:.0f} -> {row['after_requests']:.0f} "
              f"storage requests (ratio {row['requests_ratio']:.2f}), "
              f"{row['before_wall_ms']:.0f} -> {row['after_wall_ms']:.0f} ms "
              f"(ratio {row['wall_ratio']:.2f}); before = one table creation per table at worker "
              f"start, medians of {figures['samples']}")  # fmt: skip
    print(f"first blob on an account without tables (local Azurite): "
          f"{figures['first_blob_without_tables_requests']} requests (each table it touches: a "
          f"404, its creation, the retry)")  # fmt: skip
