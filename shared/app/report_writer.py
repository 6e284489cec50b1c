"""The fleet report (DESIGN §3): read the tables, build the view, write ``fleet.html`` and
``fleet.json`` (``ca-watch/report/v1``) to ``REPORT_CONTAINER``.

The timer calls ``refresh_after_pass`` after each alert pass: it writes when the pass sent
or failed a message (the fleet changed in a way an operator was told about) and otherwise
at least once a day. The last write time lives in the ``fleet.json`` blob's metadata, so a
quiet pass costs one HEAD request. Changes that sent nothing (an upload of a renewal that
silences a tenant) show at the next daily write, or at once with ``ca-watch report --html``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from shared.report.fleet import SentStage, build_fleet
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


def last_written(rt: Runtime) -> datetime | None:
    from azure.core.exceptions import ResourceNotFoundError

    client = rt.blobs.get_blob_client(rt.settings.report_container, JSON_BLOB)
    try:
        metadata = client.get_blob_properties().metadata or {}
    except ResourceNotFoundError:
        return None
    try:
        return parse_iso(metadata[WRITTEN_AT])
    except (KeyError, ValueError):
        return None


def pass_changed_anything(document: Mapping[str, Any]) -> bool:
    """Whether an alert pass sent, or tried to send, any message."""
    return bool(document.get("messages"))


def refresh_after_pass(rt: Runtime, document: Mapping[str, Any], now: datetime) -> bool:
    """Write the report after a pass that changed anything, else once a day. Returns
    whether it wrote."""
    if not pass_changed_anything(document):
        last = last_written(rt)
        if last is not None and last <= now < last + REFRESH_EVERY:
            return False
    write_fleet_report(rt, now)
    log.info("fleet report written to %s/%s", rt.settings.report_container, HTML_BLOB)
    return True
