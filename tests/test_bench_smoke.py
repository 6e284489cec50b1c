"""`make bench` is not part of `make test`, so code it calls can drift away from the app's
(session 5 found it reading two store attributes removed a session earlier). These run
the benchmarks' own set-ups once, at a tiny size: what is checked is that they run, not
their figures."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from types import ModuleType

from azure.core.exceptions import ResourceExistsError

from shared.app.pipeline import result_blob_name
from shared.local import samples
from shared.storage.tables import TABLES

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}_smoke", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pipeline_benchs_contract_minimum_makes_its_requests(app_runtime) -> None:
    rt = app_runtime
    with contextlib.suppress(ResourceExistsError):
        rt.blobs.create_container("benchcerts")
    tenant = samples.tenant_ca("5707a9e0-1111-4222-8333-944445555666")
    rt.blobs.get_blob_client("benchcerts", "smoke.pem").upload_blob(
        samples.device_certificate(tenant).pem, overwrite=True
    )
    minimum = load("bench_pipeline")._contract_minimum(rt)
    minimum("smoke.pem")
    results = rt.blobs.get_container_client(rt.settings.results_container)
    assert results.get_blob_client(result_blob_name("smoke.pem")).exists()


def test_the_alert_bench_runs_at_a_small_size() -> None:
    figures = load("bench_alerts").run(sizes=(100,))
    assert list(figures["sizes"]) == ["100"]
    assert figures["sizes"]["100"]["with_registration_evidence"]["first_pass_s"] > 0


def test_the_cold_start_bench_runs_at_a_small_size() -> None:
    figures = load("bench_coldstart").run(samples=1)
    for kind in ("first_blob", "first_timer"):
        # main's cold start created every table on every worker start; now none.
        assert figures[kind]["before_requests"] - figures[kind]["after_requests"] == len(TABLES)
    assert figures["first_blob_without_tables_requests"] > figures["first_blob"]["after_requests"]


def test_the_pull_bench_runs_at_a_small_size() -> None:
    figures = load("bench_pull").run(rows=100, repeats=1)
    assert figures["requests_per_pull"] == 10 + 10 * 3 + 10 * 21  # hubs, DPS, apps
    assert figures["pull_s"] > 0 and figures["ratio_pass_after_pull_steady"] > 0
