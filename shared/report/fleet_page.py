"""The fleet report as one self-contained HTML page (DESIGN §3): inline CSS and SVG, no
script, no remote load (its Content-Security-Policy forbids both). Pure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.alerts.templating import render_html_in
from shared.report import fleet_timeline as tl
from shared.report.fleet import FleetView, text

TEMPLATES_DIR = Path(__file__).with_name("templates")


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def summary_line(fleet: FleetView) -> str:
    c = fleet.counts
    parts = [
        f"{_plural(c['certificates'], 'certificate')} "
        f"({_plural(c['tenant_cas'], 'tenant CA')} of {_plural(c['tenants'], 'tenant')})",
        f"{_plural(c['affected'], 'affected tenant CA')}: {c['affected_resolved']} resolved, "
        f"{c['affected_pending']} pending, {c['affected_acknowledged']} acknowledged",
    ]
    if fleet.next_deadline:
        view, hits = fleet.next_deadline
        parts.append(
            f"next deadline: {view.title} on {view.due:%Y-%m-%d} "
            f"({_plural(view.days_left, 'day')} left) for {_plural(hits, 'tenant')}"
        )
    else:
        parts.append("no deadline ahead")
    if fleet.overdue_tenants:
        parts.append(f"{_plural(fleet.overdue_tenants, 'tenant')} overdue")
    parts.append(
        f"{_plural(len(fleet.failed_uploads), 'unreadable or refused upload')} of {fleet.uploads}"
    )
    return "; ".join(parts) + "."


def _failed(upload: dict[str, Any]) -> dict[str, str]:
    error = upload.get("error") if isinstance(upload.get("error"), dict) else {}
    return {
        "name": text(upload.get("name")),
        "status": text(upload.get("status"), 40),
        "code": text(error.get("code") or "-", 80),
        "message": text(error.get("message") or ""),
    }


def render_fleet_html(fleet: FleetView, max_rows: int = tl.MAX_ROWS) -> str:
    timeline = tl.build_timeline(fleet, max_rows)
    return render_html_in(
        TEMPLATES_DIR,
        "fleet.html.j2",
        now=f"{fleet.now:%Y-%m-%d %H:%M} UTC",
        rules_source=text(fleet.rules.source),
        summary=summary_line(fleet),
        timeline=timeline,
        tenants=fleet.tenants,
        failed=[_failed(dict(u)) for u in fleet.failed_uploads],
        width=tl.WIDTH,
        row_h=tl.ROW_H,
        plot_x0=tl.PLOT_X0,
        plot_x1=tl.PLOT_X1,
        label_x=tl.LABEL_X,
        stage_x=tl.STAGE_X,
        footer="Written by CA Rotation Watch from the certificates, uploads and alert ledger "
        "tables. The same data as JSON: ca-watch/report/v1 (fleet.json).",
    )
