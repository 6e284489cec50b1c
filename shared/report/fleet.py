"""Building the fleet report's view (fleet_model.py, DESIGN §3): from a
``ca-watch/report/v1`` document, the rules, the stages the ledger has sent and ``now``,
everything the HTML page shows, per tenant. Pure: no Azure import, no I/O; the caller reads
the tables.

States come from the one vocabulary, ``shared/alerts/states.py`` (a tenant takes its most
urgent CA's state). A certificate's ``state`` field in the document wins when it names one
of them (the store computes it, issue 21); without it the view derives one: ``retired``,
``resolved``, ``acknowledged``, ``affected`` (inside an incident window, no newer CA on
record), ``pending`` (a newer CA waits for registration, or an alert stage of an action
deadline has been reached), else ``ok``.

Deadlines are of two kinds (rules.Deadline.action): the operator's action deadlines, the
only ones "next", "overdue" or red, and milestones, shown as information.

Documents may be hand-made or hostile: a missing field or a bad time never raises; the
value shows as unknown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.alerts.planner import AlertPlanner
from shared.alerts.rules import Rules, milestone_when, time_left
from shared.alerts.states import BY_ID, RANK, most_urgent
from shared.report.fleet_model import (
    CaView,
    DeadlineView,
    FleetView,
    SentStage,
    TargetRow,
    TenantView,
    parse_time,
    text,
)

ONE_DAY = timedelta(days=1)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _ca(cert: Mapping[str, Any]) -> CaView:
    ack = cert.get("acknowledged")
    given = cert.get("state")
    retired = cert.get("retired")
    return CaView(
        sha256=text(cert.get("sha256_fingerprint"), 64).lower(),
        sha1=text(cert.get("sha1_thumbprint"), 40).upper(),
        subject=text(cert.get("subject")),
        not_before=parse_time(cert.get("not_before")),
        not_after=parse_time(cert.get("not_after")),
        verdict=text(cert.get("verdict"), 40),
        mismatch=text(_dict(cert.get("signature_algorithm")).get("mismatch") or "none", 40),
        resolved_by=text(cert["resolved_by"], 64) if cert.get("resolved_by") else None,
        acknowledged=ack if isinstance(ack, Mapping) else ({"by": "?"} if ack else None),
        sources=[text(s) for s in _list(cert.get("sources"))],
        registrations=[r for r in _list(cert.get("registrations")) if isinstance(r, Mapping)],
        given_state=given if isinstance(given, str) and given in RANK else None,
        retired=retired if isinstance(retired, Mapping) else ({"by": "?"} if retired else None),
    )


class _Deadlines:
    """The deadlines of the active rules for one tenant CA, with the stage current now."""

    def __init__(self, rules: Rules, now: datetime) -> None:
        self.planner = AlertPlanner(rules)
        self.rules = rules
        self.now = now

    def of(self, ca: CaView) -> list[DeadlineView]:
        groups = [(i.deadlines, i.applies_to) for i in self.rules.incidents]
        if self.rules.rotation is not None:
            groups.append((self.rules.rotation.deadlines, None))
        out = []
        for deadlines, applies_to in groups:
            if applies_to is not None and ca.verdict not in applies_to:
                continue
            for d in deadlines:
                if d.at is None and ca.not_after is None:
                    continue
                due = d.due_for(ca.not_after or self.now)
                every = timedelta(days=d.overdue_every_days)
                stage = self.planner.current_stage(due, self.now, d.overdue, every)
                days_left = (due - self.now) // ONE_DAY
                out.append(
                    DeadlineView(
                        d.id,
                        text(d.what_to_do or d.title),
                        due,
                        days_left,
                        stage and stage[0],
                        d.at is not None,
                        action=d.action,
                        when=(time_left if d.action else milestone_when)(due, self.now),
                        late=d.action and self.now > due,
                    )
                )
        return sorted(out, key=lambda d: d.due)


def _state(ca: CaView, newer_exists: bool) -> str:
    due = any(d.stage for d in ca.deadlines if d.action)
    if ca.given_state == "pending" and not newer_exists and not due:
        return "ok"  # open, but nothing to do yet: only the view knows the time
    if ca.given_state:
        return ca.given_state
    if ca.retired:
        return "retired"
    if ca.resolved_by:
        return "resolved"
    if ca.acknowledged:
        return "acknowledged"
    if ca.verdict == "affected" and not newer_exists:
        return "affected"
    if newer_exists or due:
        return "pending"
    return "ok"


def document_state(cert: Mapping[str, Any]) -> str:
    """A certificate's state from its report/v1 object alone (no rules, no clock): its own
    ``state`` when it names one of the vocabulary, else what its fields say."""
    given = cert.get("state")
    if isinstance(given, str) and given in RANK:
        return given
    if cert.get("retired"):
        return "retired"
    if cert.get("resolved_by"):
        return "resolved"
    if cert.get("acknowledged"):
        return "acknowledged"
    if cert.get("renewal_pending"):
        return "pending"
    return "affected" if cert.get("verdict") == "affected" else "ok"


def _registration_state(ca: CaView | None, target: str) -> str:
    if ca is None:
        return "absent"
    for reg in ca.registrations:
        if reg.get("target") == target:
            return "verified" if reg.get("verified") is True else "unverified"
    return "absent"


def _targets(
    current: CaView | None, renewal: CaView | None, known: Mapping[str, Mapping[str, Any]]
) -> list[TargetRow]:
    ids: dict[str, Mapping[str, Any]] = {}
    for ca in (current, renewal):
        for reg in ca.registrations if ca else ():
            ids.setdefault(text(reg.get("target")), reg)
    rows = []
    for target, reg in ids.items():
        info = known.get(target, {})
        error = _dict(info.get("error"))
        source = text(reg.get("source") or info.get("source") or "", 200)
        rows.append(
            TargetRow(
                target=target,
                # A registration's "name" is the certificate's name in the target: no title.
                display_name=text(info.get("display_name") or reg.get("display_name") or target),
                kind=text(info.get("kind") or reg.get("kind") or "other", 40),
                current=_registration_state(current, target),
                renewed=_registration_state(renewal, target) if renewal else None,
                seen_at=text(info.get("seen_at") or reg.get("seen_at") or "", 40),
                error=text(f"{error.get('code')}: {error.get('message')}") if error else None,
                source="live read" if source == "live" else source,
            )
        )
    return sorted(rows, key=lambda r: (r.display_name, r.target))


def _sent_lines(stages: list[SentStage], rules: Rules) -> list[tuple[str, str]]:
    latest: dict[str, SentStage] = {}
    for s in stages:
        seen = latest.get(s.channel)
        order = (s.sent_at or datetime.min.replace(tzinfo=UTC), s.stage_key)
        if seen is None or order > (
            seen.sent_at or datetime.min.replace(tzinfo=UTC),
            seen.stage_key,
        ):
            latest[s.channel] = s
    out = []
    for channel, s in sorted(latest.items()):
        deadline = rules.deadline(s.deadline_id)
        title = deadline.title if deadline else s.deadline_id
        stage = s.stage_key.split("@")[0]
        when = f" on {s.sent_at:%Y-%m-%d}" if s.sent_at else ""
        out.append((text(channel, 40), text(f"{stage} of {title}{when}")))
    return out


def _tenant(
    tenant_id: str,
    cas: list[CaView],
    sent: list[SentStage],
    uploads: Mapping[str, Mapping[str, Any]],
    known_targets: Mapping[str, Mapping[str, Any]],
    rules: Rules,
) -> TenantView:
    far = datetime.max.replace(tzinfo=UTC)
    cas.sort(key=lambda c: (c.not_before or far, c.sha256))
    current = next((c for c in cas if not c.resolved_by), cas[-1] if cas else None)
    renewal = None
    if current is not None and current.not_before is not None:
        assert current.not_before is not None
        newer = [c for c in cas if c.not_before and c.not_before > current.not_before]
        renewal = newer[-1] if newer else None
    for ca in cas:
        newer_exists = any(
            o.not_before and ca.not_before and o.not_before > ca.not_before for o in cas
        )
        ca.state = _state(ca, newer_exists)
    tenant_state = most_urgent([c.state for c in cas])
    deadlines = [d for c in cas if (d := c.next_deadline) is not None]
    names = sorted({s for c in cas for s in c.sources})
    return TenantView(
        tenant_id=tenant_id,
        cas=cas,
        current=current,
        renewal=renewal,
        state=tenant_state,
        next_deadline=min(deadlines, key=DeadlineView.urgency, default=None),
        sent=_sent_lines(sent, rules),
        targets=_targets(current, renewal, known_targets),
        uploads=[uploads.get(n) or {"name": n, "status": "unknown"} for n in names],
    )


def build_fleet(
    report: Mapping[str, Any],
    rules: Rules,
    now: datetime,
    sent: Iterable[SentStage] = (),
) -> FleetView:
    """The view of one report/v1 document at ``now``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    deadlines = _Deadlines(rules, now)
    by_tenant: dict[str, list[CaView]] = {}
    others = 0
    for cert in _list(report.get("certificates")):
        cert = _dict(cert)
        sphere = _dict(cert.get("azure_sphere"))
        if sphere.get("role") != "tenant-ca":
            others += 1
            continue
        ca = _ca(cert)
        ca.deadlines = deadlines.of(ca)
        by_tenant.setdefault(text(sphere.get("tenant_id") or "unknown", 80), []).append(ca)
    uploads = [_dict(u) for u in _list(report.get("uploads"))]
    uploads_by_name = {text(u.get("name")): u for u in uploads}
    known_targets = {text(t.get("target")): t for t in map(_dict, _list(report.get("targets")))}
    sent_by_tenant: dict[str, list[SentStage]] = {}
    for s in sent:
        sent_by_tenant.setdefault(s.tenant_id, []).append(s)
    tenants = [
        _tenant(tid, cas, sent_by_tenant.get(tid, []), uploads_by_name, known_targets, rules)
        for tid, cas in by_tenant.items()
    ]
    tenants.sort(key=TenantView.urgency)
    all_cas = [c for t in tenants for c in t.cas]
    affected = [c for c in all_cas if c.verdict == "affected"]
    # The summary counts what the rows say: each tenant once, by the state its row shows.
    counts = {
        "certificates": len(all_cas) + others,
        "tenants": len(tenants),
        "tenant_cas": len(all_cas),
        "affected": len(affected),
        "affected_resolved": sum(1 for c in affected if c.resolved_by),
        "affected_acknowledged": sum(1 for c in affected if c.acknowledged and not c.resolved_by),
        "affected_pending": sum(1 for c in affected if c.open),
        **{f"state_{s}": n for s, n in Counter(t.state for t in tenants).items()},
    }
    ahead = [
        (d.due, d.id, t.tenant_id, d)
        for t in tenants
        for c in t.cas
        if c.open
        for d in c.deadlines
        if d.action and d.due >= now
    ]
    next_deadline = None
    if ahead:
        due, deadline_id, _, view = min(ahead, key=lambda a: (a[0], a[1]))
        hit = {tid for d, i, tid, _ in ahead if d == due and i == deadline_id}
        next_deadline = (view, len(hit))
    return FleetView(
        now=now,
        rules=rules,
        tenants=tenants,
        other_certificates=others,
        failed_uploads=_newest_first(
            [u for u in uploads if u.get("status") != "analyzed" and not u.get("retired")]
            + ignored_listings(uploads)
        ),
        uploads=len(uploads),
        counts=counts,
        next_deadline=next_deadline,
        overdue_tenants=sum(1 for t in tenants if t.next_deadline and t.next_deadline.late),
        retired_uploads=sum(1 for u in uploads if u.get("retired")),
    )


def ignored_listings(uploads: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Uploaded listings that changed nothing (``live-target``, ``stale-listing``), as rows
    of the refused-uploads table: an operator sees that the evidence was not taken, and why."""
    rows = []
    for upload in uploads:
        if upload.get("retired"):
            continue
        for item in upload.get("listing_outcomes") or ():
            outcome = item.get("outcome") if isinstance(item, Mapping) else None
            if outcome in BY_ID and outcome != "recorded":
                meaning = BY_ID[outcome].meaning
                rows.append(
                    {
                        **upload,
                        "status": "ignored",
                        "error": {"code": outcome, "message": f"{meaning} ({item.get('target')})"},
                    }
                )
    return rows


def upload_time(upload: Mapping[str, Any]) -> datetime | None:
    """When an upload arrived, where the document says (later report versions may)."""
    for key in ("uploaded_at", "last_modified", "seen_at", "analyzed_at"):
        if moment := parse_time(upload.get(key)):
            return moment
    return None


def _newest_first(uploads: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(uploads, key=lambda u: upload_time(u) or oldest, reverse=True)
