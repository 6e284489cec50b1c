"""Telemetry: one exporter, never two (shared/app/telemetry.py).

In Azure the Python worker configures Azure Monitor itself when the app setting
PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY is true-like (infra sets it, paired with host.json's
telemetryMode OpenTelemetry; tests/test_infra.py checks the pairing). The app must then not call
configure_azure_monitor() a second time, or every log is exported twice. The worker's rule for
"true" is azure-functions-python-worker's is_envvar_true: '1', 'true', 't', 'yes', 'y', in
any case, blanks stripped.

The OpenTelemetry providers are process-global, so the configuring checks run in a fresh
interpreter each, with a connection string whose ingestion endpoint is a closed loopback port
and statsbeat off: the real exporter is set up, nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.app.telemetry import worker_manages_telemetry

ROOT = Path(__file__).resolve().parents[1]
SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"

_PROBE = """
import json
from opentelemetry import trace
from shared.app import telemetry
configured = telemetry.configure()
with telemetry.span("probe"):
    pass
print(json.dumps({"configured": configured,
                  "provider": type(trace.get_tracer_provider()).__name__}))
"""


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1", "t", "yes", "Y", " true "])
def test_the_worker_owns_telemetry_for_every_value_the_worker_reads_as_true(value: str) -> None:
    assert worker_manages_telemetry({SETTING: value})


@pytest.mark.parametrize("value", ["", "false", "0", "no", "off", "tru"])
def test_the_worker_leaves_telemetry_to_the_app_otherwise(value: str) -> None:
    assert not worker_manages_telemetry({SETTING: value})
    assert not worker_manages_telemetry({})


def _probe(tmp_path: Path, **extra: str) -> dict[str, object]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),  # the exporter's offline retry storage
        "APPLICATIONINSIGHTS_CONNECTION_STRING": (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=http://127.0.0.1:9/"
        ),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",  # no cloud metadata probes
        **extra,
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_app_configures_azure_monitor_when_the_worker_does_not(tmp_path: Path) -> None:
    """`ca-watch` with a connection string: the app is the one exporter (and the probe can
    tell a configured process from an unconfigured one)."""
    assert _probe(tmp_path) == {"configured": True, "provider": "TracerProvider"}


@pytest.mark.parametrize("value", ["true", "1"])
def test_the_app_never_configures_azure_monitor_when_the_worker_does(
    tmp_path: Path, value: str
) -> None:
    # The API's proxy provider stays in place: this process configured nothing (in Azure the
    # worker has already installed its own provider by then).
    assert _probe(tmp_path, **{SETTING: value}) == {
        "configured": False,
        "provider": "ProxyTracerProvider",
    }
