"""The fleet report as one self-contained HTML page (DESIGN §3): inline CSS and SVG, no
script, no remote load (its Content-Security-Policy forbids both). Pure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.alerts.templating import render_html_in
from shared.alerts.text_safety import code_runs
from shared.report import fleet_timeline as tl
from shared.report.fleet import upload_time
from shared.report.fleet_model import FAILED_ROWS, FleetView, text

TEMPLATES_DIR = Path(__file__).with_name("templates")


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def summary_line(fleet: FleetView) -> str:
    """One sentence over the fleet; the state counts are those of the tenant rows below."""
    c = fleet.counts
    by_state = [
        f"{c[f'state_{s.id}']} {s.symbol} {s.label}" for s in fleet.states if c.get(f"state_{s.id}")
    ]
    parts = [
        f"{_plural(c['certificates'], 'certificate')} "
        f"({_plural(c['tenant_cas'], 'tenant CA')} of {_plural(c['tenants'], 'tenant')})",
        "tenants by state: " + (", ".join(by_state) or "none"),
    ]
    if fleet.next_deadline:
        view, hits = fleet.next_deadline
        parts.append(
            f"next action deadline: {view.title} on {view.due:%Y-%m-%d} ({view.when}) "
            f"for {_plural(hits, 'tenant')}"
        )
    else:
        parts.append("no action deadline ahead")
    if fleet.overdue_tenants:
        parts.append(f"{_plural(fleet.overdue_tenants, 'tenant')} overdue")
    parts.append(
        f"{_plural(len(fleet.failed_uploads), 'unreadable or refused upload')} of {fleet.uploads}"
    )
    return "; ".join(parts) + "."


def _failed(upload: dict[str, Any]) -> dict[str, str]:
    error = upload.get("error") if isinstance(upload.get("error"), dict) else {}
    moment = upload_time(upload)
    return {
        "name": text(upload.get("name")),
        "status": text(upload.get("status"), 40),
        "code": text(error.get("code") or "-", 80),
        "message": text(error.get("message") or ""),
        "at": f"{moment:%Y-%m-%d}" if moment else "",
    }


def folded_line(folded: list[dict[str, str]]) -> str:
    """ "N refused uploads (oldest …)": the ones past the table, in one line."""
    if not folded:
        return ""
    oldest = folded[-1]
    when = f", {oldest['at']}" if oldest["at"] else ""
    return (
        f"{_plural(len(folded), 'older unreadable or refused upload')} "
        f"(oldest: {oldest['name']}{when})"
    )


def render_fleet_html(fleet: FleetView, max_rows: int = tl.MAX_ROWS) -> str:
    timeline = tl.build_timeline(fleet, max_rows)
    failed = [_failed(dict(u)) for u in fleet.failed_uploads]
    return render_html_in(
        TEMPLATES_DIR,
        "fleet.html.j2",
        now=f"{fleet.now:%Y-%m-%d %H:%M} UTC",
        rules_source=fleet.rules_name,
        summary=summary_line(fleet),
        timeline=timeline,
        tenants=fleet.tenants,
        states=fleet.states,
        runs=code_runs,
        failed=failed[:FAILED_ROWS],
        folded=folded_line(failed[FAILED_ROWS:]),
        folded_rows=failed[FAILED_ROWS:],
        retired_uploads=fleet.retired_uploads,
        width=tl.WIDTH,
        row_h=tl.ROW_H,
        plot_x0=tl.PLOT_X0,
        plot_x1=tl.PLOT_X1,
        label_x=tl.LABEL_X,
        stage_x=tl.STAGE_X,
        stages=fleet.rules.stages,
        every=fleet.rules.overdue_every_days,
        footer="Written by CA Rotation Watch from the certificates, uploads and alert ledger "
        "tables. The same data as JSON: ca-watch/report/v1 (fleet.json).",
    )
