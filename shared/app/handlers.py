"""What the registered functions do, wired to their adapters (settings, rules, storage).

``function_app.py`` only declares triggers and calls these. The runtime (settings, rules,
clients) is built once per worker process on first use, not at import, to keep cold start
small. The clock is injectable so ``ca-watch alerts run --now`` runs this same code.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from shared.app import telemetry
from shared.settings import Settings

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient, BlobServiceClient

    from shared.alerts.rules import Rules
    from shared.analysis.scan import FileResult
    from shared.storage.store import TableStore

log = logging.getLogger("ca_watch")


def _system_clock() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _system_clock


def use_clock(clock: Callable[[], datetime] | None) -> None:
    """Inject the time (the local runner's ``--now``); None restores the system clock."""
    global _clock
    _clock = clock or _system_clock


def now() -> datetime:
    return _clock()


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    rules: Rules
    store: TableStore
    blobs: BlobServiceClient


@cache
def runtime() -> Runtime:
    from shared.alerts.rules import load_rules
    from shared.storage.connections import blob_service, table_service
    from shared.storage.store import TableStore

    telemetry.configure()
    settings = Settings.from_env()
    rules = load_rules(settings.rules_file)
    # No table creation here: the deployment creates the tables, and a missing one (Azurite,
    # a local run) is created on its first TableNotFound (shared/storage/tables.py).
    store = TableStore(table_service(), rules)
    blobs = blob_service()
    return Runtime(settings, rules, store, blobs)


def reset_runtime() -> None:
    """Forget the cached runtime (settings changed: tests, the local runner)."""
    runtime.cache_clear()


def ensure_containers(rt: Runtime) -> None:
    from azure.core.exceptions import ResourceExistsError

    for name in (rt.settings.cert_container, rt.settings.results_container):
        with contextlib.suppress(ResourceExistsError):
            rt.blobs.create_container(name)


def analyze_upload(client: BlobClient) -> FileResult | None:
    """The binding's client gives only the blob's container and name: every request goes
    through the runtime's pooled clients, whose one credential (and token cache) serves the
    whole worker process, instead of a new session and credential per invocation."""
    from shared.app.pipeline import process_blob

    rt = runtime()
    blob = rt.blobs.get_blob_client(client.container_name, client.blob_name)
    return process_blob(
        blob, store=rt.store, results=rt.blobs, settings=rt.settings, rules=rt.rules, now=now()
    )


# The document of the last alert pass in this process: the registered timer function
# returns None (a timer has no output binding), so ``ca-watch alerts run`` reads it here.
last_alert_result: dict[str, Any] | None = None


def send_alerts(past_due: bool = False) -> dict[str, Any]:
    from shared.app.alert_pass import run_alerts

    if past_due:
        # A missed schedule (host down, scale to zero): one run now covers it, because the
        # planner sends the most urgent stage due at this moment.
        log.warning("alert timer is past due; running now")
    global last_alert_result
    rt = runtime()
    last_alert_result = None
    at = now()
    result = run_alerts(store=rt.store, settings=rt.settings, rules=rt.rules, now=at)
    last_alert_result = result
    settings = rt.settings
    if settings.registration_targets or settings.iot_central_apps or settings.sphere_catalogs:
        # After the pass, within REGISTRATION_PULL_BUDGET: a hung service never costs a
        # sent alert (issue 23); its evidence serves the next pass. No reader is imported
        # unless a live source is configured.
        from shared.app.registration_pull import pull_if_due

        pull_if_due(rt.store, settings, at)  # never raises; at most every refresh
    try:
        from shared.app.report_writer import refresh_after_pass

        refresh_after_pass(rt, result, at)
    except Exception:  # the report is a view: it never costs an alert pass
        log.exception("writing the fleet report failed; the next pass tries again")
    return result
