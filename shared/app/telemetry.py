"""Telemetry through OpenTelemetry (adapter).

In Azure, ``host.json`` sets ``telemetryMode: OpenTelemetry`` and the app setting
``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` lets the Python worker configure Azure
Monitor. Elsewhere (``ca-watch`` with ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set) we call
``configure_azure_monitor()`` ourselves: one of the two, never both. With neither, the
OpenTelemetry API is a no-op: nothing to configure and nothing slow locally.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace

_tracer = trace.get_tracer("ca_rotation_watch")
_meter = metrics.get_meter("ca_rotation_watch")
certificates_counter = _meter.create_counter(
    "ca_watch.certificates", unit="{certificate}", description="Certificates analysed, by verdict"
)
uploads_counter = _meter.create_counter(
    "ca_watch.uploads", unit="{upload}", description="Uploads recorded, by status"
)
alerts_counter = _meter.create_counter(
    "ca_watch.alerts", unit="{message}", description="Alert messages, by channel and outcome"
)
_configured = False
# What azure-functions-python-worker's is_envvar_true() reads as true: the worker configures
# Azure Monitor for each of these, so the app must step back for each of them too.
_WORKER_TRUE = frozenset({"1", "true", "t", "yes", "y"})


def worker_manages_telemetry(env: dict[str, str] | None = None) -> bool:
    """True when the Functions worker configures Azure Monitor itself (the app setting
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY, read the way the worker reads it)."""
    env = dict(os.environ) if env is None else env
    value = env.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "")
    return value.strip().lower() in _WORKER_TRUE


def configure(env: dict[str, str] | None = None) -> bool:
    """Export to Application Insights when a connection string is set and the Functions
    worker is not already doing it. True when this call configured the exporter."""
    global _configured
    env = dict(os.environ) if env is None else env
    if _configured or worker_manages_telemetry(env):
        return False
    if not env.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return False
    from azure.monitor.opentelemetry import configure_azure_monitor  # slow import: only here

    configure_azure_monitor()
    _configured = True
    return True


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[Any]:
    with _tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current
