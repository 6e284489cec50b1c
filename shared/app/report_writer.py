"""The fleet report (DESIGN §3): read the tables, build the view, write ``fleet.html`` and
``fleet.json`` (``ca-watch/report/v1``) to ``REPORT_CONTAINER``.

The timer calls ``refresh_after_pass`` after each alert pass: it writes when the pass sent
or failed a message, when a tenant may have opened or closed since the last write (a tenant
CA recorded or resolved by an upload, an acknowledgement given or withdrawn), and otherwise
at least once a day. The last write time lives in the ``fleet.json`` blob's metadata; a
quiet pass costs one HEAD request and one single-row query per table in ``OPENS_OR_CLOSES``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from shared.report.fleet import build_fleet
from shared.report.fleet_model import SentStage
from shared.report.fleet_page import render_fleet_html
from shared.storage.keys import iso, parse_iso

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

    from shared.alerts.rules import Rules
    from shared.settings import Settings
    from shared.storage.store import TableStore


class Runtime(Protocol):
    """What the writer needs of ``handlers.Runtime`` (named here: handlers imports us)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def rules(self) -> Rules: ...
    @property
    def store(self) -> TableStore: ...
    @property
    def blobs(self) -> BlobServiceClient: ...


log = logging.getLogger("ca_watch.report")

HTML_BLOB = "fleet.html"
JSON_BLOB = "fleet.json"
WRITTEN_AT = "written_at"  # blob metadata: when this report was generated (ISO, UTC)
REFRESH_EVERY = timedelta(days=1)
# The tables whose writes open or close a tenant: tenant CAs recorded and resolved, acks.
OPENS_OR_CLOSES = ("tenantcas", "acks")


def sent_stages(store: TableStore) -> list[SentStage]:
    """Every stage the ledger records as sent (one query over the ledger table)."""
    rows = store.table("ledger").query_entities(
        "status eq 'sent'",
        select=["tenant_id", "certificate", "deadline_id", "stage_key", "channel", "sent_at"],
    )
    out = []
    for row in rows:
        if not row.get("tenant_id") or not row.get("certificate"):
            continue  # self-health rows: about the service, not a tenant
        sent_at = row.get("sent_at")
        out.append(
            SentStage(
                tenant_id=row["tenant_id"],
                certificate=row["certificate"],
                deadline_id=row.get("deadline_id") or "",
                stage_key=row.get("stage_key") or "",
                channel=row.get("channel") or "",
                sent_at=parse_iso(sent_at) if sent_at else None,
            )
        )
    return out


def fleet_report(rt: Runtime, now: datetime) -> tuple[dict[str, Any], str]:
    """(the report/v1 document, the HTML page) as the tables hold them at ``now``."""
    report = rt.store.report()
    fleet = build_fleet(report, rt.rules, now, sent_stages(rt.store))
    return report, render_fleet_html(fleet)


def write_fleet_report(rt: Runtime, now: datetime) -> None:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
    from azure.storage.blob import ContentSettings

    report, page = fleet_report(rt, now)
    container = rt.blobs.get_container_client(rt.settings.report_container)
    blobs = (
        (HTML_BLOB, page.encode("utf-8"), "text/html; charset=utf-8"),
        (JSON_BLOB, json.dumps(report, indent=1).encode("utf-8"), "application/json"),
    )
    # The JSON last: its metadata says when a complete report was written.
    for name, data, content_type in blobs:
        upload = {
            "name": name,
            "data": data,
            "overwrite": True,
            "content_settings": ContentSettings(content_type=content_type),
            "metadata": {WRITTEN_AT: iso(now)},
        }
        try:
            container.upload_blob(**upload)
        except ResourceNotFoundError:  # the container is missing (infra creates it)
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            container.upload_blob(**upload)


def _last_write(rt: Runtime) -> tuple[datetime | None, datetime | None]:
    """(the ``now`` the last report was written for, the storage service's time of that
    write), or Nones when there is no report."""
    from azure.core.exceptions import ResourceNotFoundError

    client = rt.blobs.get_blob_client(rt.settings.report_container, JSON_BLOB)
    try:
        properties = client.get_blob_properties()
    except ResourceNotFoundError:
        return None, None
    try:
        written = parse_iso((properties.metadata or {})[WRITTEN_AT])
    except (KeyError, ValueError):
        written = None
    return written, properties.last_modified


def last_written(rt: Runtime) -> datetime | None:
    return _last_write(rt)[0]


def tenants_changed_since(rt: Runtime, moment: datetime) -> bool:
    """Whether a row that opens or closes a tenant was written after ``moment``. Both
    sides are the storage service's clock (a row's Timestamp, the blob's Last-Modified),
    never the pass's own ``now``, which a test or a replay may set anywhere. Last-Modified
    has whole seconds, and the pass may itself write such a row just before the report:
    rows of the report's own second count as seen (one written in that second after the
    report shows at the next change, or at the daily write)."""
    stamp = (moment + timedelta(seconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in OPENS_OR_CLOSES:
        rows = rt.store.table(name).query_entities(
            f"Timestamp gt datetime'{stamp}'", select=["PartitionKey"], results_per_page=1
        )
        if next(iter(rows), None) is not None:  # the first page only: at most one row read
            return True
    return False


def pass_changed_anything(document: Mapping[str, Any]) -> bool:
    """Whether an alert pass sent, or tried to send, any message."""
    return bool(document.get("messages"))


def refresh_after_pass(rt: Runtime, document: Mapping[str, Any], now: datetime) -> bool:
    """Write the report after a pass that sent anything or after a tenant opened or
    closed, else once a day. Returns whether it wrote."""
    if not pass_changed_anything(document):
        last, stored_at = _last_write(rt)
        fresh = last is not None and last <= now < last + REFRESH_EVERY
        if fresh and stored_at is not None and not tenants_changed_since(rt, stored_at):
            return False
    write_fleet_report(rt, now)
    log.info("fleet report written to %s/%s", rt.settings.report_container, HTML_BLOB)
    return True
