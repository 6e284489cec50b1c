"""The fleet report's timeline picture: where each shown tenant stands against its
deadlines, laid out as SVG coordinates (the template only draws them). Pure.

The time axis adapts to the data: the moments that matter (today, notBefore dates, the
deadlines of open tenant CAs, the incident windows that caught one) are grouped into at
most ``MAX_SEGMENTS`` clusters; each cluster gets its own linear stretch of the axis and
the empty years between clusters collapse into a marked break. So the 2020 incident,
rotations years apart, or both at once stay readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.alerts.rules import Incident
from shared.report.fleet_model import CaView, FleetView, TenantView

MAX_ROWS = 50
MAX_SEGMENTS = 4
MAX_BARS = 4  # tenant CAs drawn per row (the newest); the table lists them all
WIDTH = 1120
LABEL_X = 8
# Room on the left for a tenant id (36 characters) and its state's longest label.
PLOT_X0, PLOT_X1 = 440.0, 1010.0
STAGE_X = 1018
LINE_H = 15  # one header line per labelled line (today, each window, each deadline)
ROW_H = 24
BREAK_W = 18.0
MIN_TICK_PX = 72
CHAR_W = 7.0  # the widest advance of an 11 px monospace font here (DejaVu Sans Mono: 6.6)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    x0: float
    x1: float

    def x(self, moment: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        return self.x0 + (self.x1 - self.x0) * (moment - self.start).total_seconds() / span


@dataclass(frozen=True)
class Axis:
    segments: tuple[Segment, ...]

    @property
    def start(self) -> datetime:
        return self.segments[0].start

    @property
    def end(self) -> datetime:
        return self.segments[-1].end

    def x(self, moment: datetime) -> float:
        """Position of ``moment``; in a break, the middle of the break; outside, an edge."""
        previous = None
        for seg in self.segments:
            if moment < seg.start:
                return PLOT_X0 if previous is None else (previous.x1 + seg.x0) / 2
            if moment <= seg.end:
                return seg.x(moment)
            previous = seg
        return PLOT_X1

    def breaks(self) -> list[tuple[float, str]]:
        return [
            ((a.x1 + b.x0) / 2, f"axis broken: no date of interest from {a.end:%Y-%m-%d} "
             f"to {b.start:%Y-%m-%d}")
            for a, b in zip(self.segments, self.segments[1:], strict=False)
        ]  # fmt: skip

    def ticks(self) -> list[tuple[float, str]]:
        out: list[tuple[float, str]] = []
        for seg in self.segments:
            px_per_day = (seg.x1 - seg.x0) / max((seg.end - seg.start) / _DAY, 1e-9)
            months, fmt = _tick_step(px_per_day)
            for moment in _tick_moments(seg.start, seg.end, months):
                x = seg.x(moment)
                if not out or x - out[-1][0] >= MIN_TICK_PX:
                    out.append((x, moment.strftime(fmt)))
        return out


_TICK_STEPS = ((0, "%Y-%m-%d"), (1, "%Y-%m"), (3, "%Y-%m"), (6, "%Y-%m"), (12, "%Y"),
               (24, "%Y"), (60, "%Y"), (120, "%Y"))  # fmt: skip


def _tick_step(px_per_day: float) -> tuple[int, str]:
    """The finest step (in months; 0 = a week) whose labels do not touch."""
    for months, fmt in _TICK_STEPS:
        if (7 if months == 0 else months * 30.4) * px_per_day >= MIN_TICK_PX:
            return months, fmt
    return _TICK_STEPS[-1]


def _tick_moments(start: datetime, end: datetime, months: int) -> list[datetime]:
    if months == 0:  # weekly, on Mondays
        first = (start + _DAY * ((7 - start.weekday()) % 7)).replace(hour=0, minute=0, second=0)
        return [first + 7 * _DAY * i for i in range(int((end - first) / _DAY) // 7 + 1)]
    year, month = start.year, start.month
    out = []
    while True:
        moment = datetime(year, month, 1, tzinfo=UTC)
        if moment > end:
            return out
        if (
            moment >= start
            and (month - 1) % min(months, 12) == 0
            and (months < 12 or year % (months // 12) == 0)
        ):
            out.append(moment)
        month += 1
        if month > 12:
            year, month = year + 1, 1


def build_axis(
    moments: list[datetime],
    focus: Sequence[datetime] = (),
    x0: float = PLOT_X0,
    x1: float = PLOT_X1,
) -> Axis:
    """An axis through ``moments``. Clusters holding a ``focus`` moment (an incident window,
    a date of the rules) are never merged into a neighbour and get three times the room,
    so two deadlines 13 days apart stay apart beside years of validity bars."""
    points = sorted(set(moments) | set(focus))
    # A gap wider than this starts a new cluster (and draws a break); past MAX_SEGMENTS
    # clusters, the closest ones that hold no focus moment merge again.
    threshold = timedelta(days=90)
    clusters = [[points[0], points[0]]]
    for moment in points[1:]:
        if moment - clusters[-1][1] > threshold:
            clusters.append([moment, moment])
        else:
            clusters[-1][1] = moment

    def focused(cluster: list[datetime]) -> bool:
        return any(cluster[0] <= f <= cluster[1] for f in focus)

    while len(clusters) > MAX_SEGMENTS:
        pairs = range(len(clusters) - 1)
        free = [i for i in pairs if not focused(clusters[i]) and not focused(clusters[i + 1])]
        i = min(free or pairs, key=lambda i: clusters[i + 1][0] - clusters[i][1])
        clusters[i : i + 2] = [[clusters[i][0], clusters[i + 1][1]]]
    padded, weights = [], []
    for start, end in clusters:
        pad = max((end - start) * 0.06, timedelta(days=6))
        padded.append((start - pad, end + pad))
        # Width grows with the square root of the time a segment covers.
        weight = max((end - start + 2 * pad) / _DAY, 20.0) ** 0.5
        weights.append(weight * (3 if focused([start, end]) else 1))
    usable = (x1 - x0) - BREAK_W * (len(padded) - 1)
    segments, x = [], x0
    for (start, end), weight in zip(padded, weights, strict=True):
        width = usable * weight / sum(weights)
        segments.append(Segment(start, end, x, x + width))
        x += width + BREAK_W
    return Axis(tuple(segments))


@dataclass(frozen=True)
class HeaderLine:
    """A labelled vertical line or band (today, an incident window, a fixed deadline)."""

    kind: str  # "today" | "window" | "deadline" (an action's) | "milestone"
    x0: float
    x1: float
    label_y: float
    label: str
    anchor: str  # "start" or "end", so the label stays inside the picture


@dataclass(frozen=True)
class Bar:
    x0: float
    x1: float
    role: str  # "current" | "renewal" | "resolved" | "other"
    affected: bool
    renewal: bool  # it renews an older tenant CA of the tenant (square marker)
    clipped_left: bool
    clipped_right: bool
    title: str
    marker_title: str


@dataclass(frozen=True)
class Row:
    y: float
    tenant: TenantView
    label: str
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # relative deadlines of the current CA: (x, title)
    stage: str


@dataclass
class Timeline:
    height: float
    rows_top: float
    rows: list[Row]
    lines: list[HeaderLine]
    ticks: list[tuple[float, str]]
    breaks: list[tuple[float, str]]
    axis_y: float
    lines_top: float  # where the vertical lines start: below every label, so none crosses one
    shown: int
    total: int
    description: str
    empty: bool = field(default=False)


def _moments(
    fleet: FleetView, tenants: list[TenantView]
) -> tuple[list[datetime], list[datetime], list[Incident]]:
    """(moments, focus moments, the incidents drawn)."""
    moments = [fleet.now]
    focus: list[datetime] = []
    incidents = []
    for incident in fleet.rules.incidents:
        if any(
            c.verdict == "affected" and c.not_before and incident.contains(c.not_before)
            for t in tenants
            for c in t.cas
        ):
            incidents.append(incident)
            focus += [incident.window_start, incident.window_end]
            focus += [d.at for d in incident.deadlines if d.at is not None]
    for tenant in tenants:
        for ca in tenant.cas[-MAX_BARS:]:
            if ca.not_before:
                moments.append(ca.not_before)
            if ca.open:
                moments += [d.due for d in ca.deadlines]
    return moments, focus, incidents


def _bar(axis: Axis, tenant: TenantView, ca: CaView) -> Bar | None:
    if ca.not_before is None:
        return None
    end = ca.not_after or ca.not_before
    renewal = ca is tenant.renewal or any(c.resolved_by == ca.sha256 for c in tenant.cas)
    role = (
        "current" if ca is tenant.current
        else "renewal" if ca is tenant.renewal
        else "resolved" if ca.resolved_by
        else "other"
    )  # fmt: skip
    x0, x1 = axis.x(ca.not_before), axis.x(end)
    validity = f"{ca.not_before:%Y-%m-%d} to {end:%Y-%m-%d}" if ca.not_after else "unknown end"
    marker = f"notBefore {ca.not_before:%Y-%m-%d %H:%M} UTC"
    if ca.verdict == "affected":
        marker += " (affected: issued inside the incident window)"
    if renewal:
        marker += " (a renewal)"
    return Bar(
        x0=x0,
        x1=max(x1, x0 + 2),
        role=role,
        affected=ca.verdict == "affected",
        renewal=renewal,
        clipped_left=ca.not_before < axis.start,
        clipped_right=end > axis.end,
        title=f"SHA-1 {ca.sha1[:8]}: {role} tenant CA, valid {validity}, {ca.state}",
        marker_title=marker,
    )


def build_timeline(fleet: FleetView, max_rows: int = MAX_ROWS) -> Timeline:
    tenants = fleet.tenants[:max_rows]
    moments, focus, incidents = _moments(fleet, tenants)
    axis = build_axis(moments, focus)
    lines: list[HeaderLine] = []

    def line(kind: str, start: datetime, end: datetime, label: str) -> None:
        x0, x1 = axis.x(start), max(axis.x(end), axis.x(start) + 3 if end > start else 0)
        anchor = "end" if x0 > (PLOT_X0 + PLOT_X1) / 2 else "start"
        # Each label has a line of its own; cut so that it stays inside the picture.
        room = (x0 if anchor == "end" else WIDTH - x0) - 4
        fit = max(int(room // CHAR_W) - 2, 8)  # the glyph and its space take two
        label = label if len(label) <= fit else label[: fit - 1] + "…"
        lines.append(HeaderLine(kind, x0, x1, 12 + LINE_H * len(lines), label, anchor))

    line("today", fleet.now, fleet.now, f"today {fleet.now:%Y-%m-%d}")
    for incident in incidents:
        window = f"{incident.window_start:%Y-%m-%d} to {incident.window_end:%Y-%m-%d}"
        line("window", incident.window_start, incident.window_end, f"incident window {window}")
        for d in incident.deadlines:
            if d.at is not None and d.action:
                line("deadline", d.at, d.at, f"{d.at:%Y-%m-%d} {d.what_to_do}")
            elif d.at is not None:
                line("milestone", d.at, d.at, f"{d.at:%Y-%m-%d} {d.title} (information)")
    axis_y = 12 + LINE_H * len(lines) + 4
    rows_top = axis_y + 18
    # Axis labels clear of the "stage" column heading.
    axis_ticks = [(x, t) for x, t in axis.ticks() if x + len(t) * CHAR_W / 2 < STAGE_X - 6]
    rows = []
    for i, tenant in enumerate(tenants):
        bars = [b for ca in tenant.cas[-MAX_BARS:] if (b := _bar(axis, tenant, ca))]
        current = tenant.current
        ticks = []
        if current is not None and current.open:
            ticks = [
                (axis.x(d.due), f"{d.due:%Y-%m-%d} {d.title}")
                for d in current.deadlines
                if not d.fixed and axis.start <= d.due <= axis.end
            ]
        stage = tenant.next_deadline.stage if tenant.next_deadline else None  # actions only
        rows.append(
            Row(
                y=rows_top + i * ROW_H,
                tenant=tenant,
                label=tenant.tenant_id[:36],
                bars=bars,
                ticks=ticks,
                stage=stage or "no stage",
            )
        )
    total = len(fleet.tenants)
    desc = (
        f"Time runs left to right from {axis.start:%Y-%m-%d} to {axis.end:%Y-%m-%d}; "
        f"today is {fleet.now:%Y-%m-%d}. One row per tenant ({len(rows)} of {total} shown, "
        "most urgent first): a bar for each tenant CA's validity starting at its notBefore "
        "(a diamond with ! marks one issued inside an incident window, a square a renewal), "
        "small ticks for its rotation deadlines, and the alert stage reached on the right."
    )
    return Timeline(
        height=rows_top + max(len(rows), 1) * ROW_H + 8,
        rows_top=rows_top,
        rows=rows,
        lines=lines,
        ticks=axis_ticks,
        breaks=axis.breaks(),
        axis_y=axis_y,
        lines_top=rows_top - 4,
        shown=len(rows),
        total=total,
        description=desc,
        empty=not rows,
    )
