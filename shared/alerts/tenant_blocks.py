"""One block per tenant: the view every form of an alert message renders (text, HTML,
Adaptive Card). The due alerts are ordered by urgency, grouped by tenant, each tenant CA
shown once with its deadlines (actions with the time left, milestones as information), its
checklist per target and the closing step. Pure; every value is cleaned here, and escaped
for its form by the renderer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from shared.alerts.model import DueAlert
from shared.alerts.registration_text import Checklist, TargetCheck, checklist
from shared.alerts.rules import milestone_when, time_left
from shared.alerts.states import RANK, State, most_urgent, state
from shared.alerts.text_safety import cert_text, clean


def as_utc(moment: datetime) -> datetime:
    # Naive datetimes are UTC throughout the app.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def urgency_key(item: DueAlert) -> tuple[Any, ...]:
    """Action deadlines before milestones, then the earliest due (the most overdue first);
    the rest only makes the order stable."""
    return (not item.action, as_utc(item.due), item.deadline_id, item.certificate)


def sort_items(items: Sequence[DueAlert]) -> list[DueAlert]:
    """By tenant, then urgency: a message lists a prefix of this order (whole tenants)."""
    return sorted(items, key=lambda i: (i.tenant_id, *urgency_key(i)))


def format_time(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def is_late(item: DueAlert, now: datetime) -> bool:
    """An action deadline that has passed: the only thing shown as overdue, in red."""
    return item.action and as_utc(now) > as_utc(item.due)


def when_label(item: DueAlert, now: datetime) -> str:
    """ "13 days left", "15 hours left", "overdue since 2020-08-18" for an action deadline;
    "from 2020-08-05" / "since 2020-08-05" for a milestone (information)."""
    if item.action:
        return time_left(as_utc(item.due), as_utc(now))
    return milestone_when(as_utc(item.due), as_utc(now))


def deadline_line(item: DueAlert, now: datetime) -> str:
    """One deadline as a person reads it: what to do by when, or what happens when."""
    if item.action:
        what = clean(item.todo or item.deadline_title)
        return f"{what}: by {format_time(item.due)}, {when_label(item, now)}"
    return f"{clean(item.deadline_title)} {when_label(item, now)} (information)"


def most_urgent_item(items: Sequence[DueAlert]) -> DueAlert:
    return min(items, key=urgency_key)


def _facts(item: DueAlert) -> list[tuple[str, str]]:
    """A certificate's facts, as (label, unescaped one-line value): shown once per tenant
    CA, however many of its deadlines are due."""
    return [
        ("Thumbprint (SHA-1)", clean(item.sha1_thumbprint.upper())),
        ("Subject", cert_text(item.subject)),
        ("Start date", format_time(item.not_before)),
        ("Expires", format_time(item.not_after)),
    ]


def tenant_state_id(items: Sequence[DueAlert]) -> str:
    """The tenant's state in the one vocabulary (states.py): the planner's when it sets
    one (issue 21), else what the alert shows: no renewal on record for an incident's
    tenant CA is ``affected``, anything else still due is ``pending``."""
    ids = []
    for item in items:
        given = getattr(item, "state", None)
        if isinstance(given, str) and given in RANK:
            ids.append(given)
        elif item.deadline_id.startswith("rotation/") or (
            item.registration is not None and item.registration.renewed is not None
        ):
            ids.append("pending")
        else:
            ids.append("affected")
    return most_urgent(ids)


@dataclass
class CertBlock:
    facts: list[tuple[str, str]]
    deadlines: list[tuple[str, str]]  # (kind: "late" | "action" | "info", line)
    notes: list[str]  # the deadlines' rule texts, each once
    actions: list[str]  # the rules' steps, each once
    checklist: Checklist


@dataclass
class TenantBlock:
    tenant: str  # cleaned, defanged
    state: State
    certificates: list[CertBlock]
    todo: str  # summary table: what to do
    by_when: str  # summary table: by when
    urgent: bool  # an action deadline has passed
    closing: str  # the last line of the block: what makes this tenant's alerts stop
    item_count: int


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _cert_block(items: list[DueAlert], now: datetime) -> CertBlock:
    registration = next((i.registration for i in items if i.registration is not None), None)
    return CertBlock(
        facts=_facts(items[0]),
        deadlines=[
            (
                "late" if is_late(i, now) else "action" if i.action else "info",
                deadline_line(i, now),
            )
            for i in items
        ],
        notes=_unique([clean(i.message, 2000) for i in items]),
        actions=_unique([clean(a, 1000) for i in items for a in i.actions]),
        checklist=_clean_checklist(checklist(registration)),
    )


def _clean_checklist(check: Checklist) -> Checklist:
    """Target names come from uploaded listings: cleaned and defanged like certificate values."""
    return Checklist(
        summary=check.summary,
        notes=tuple(cert_text(n, 1000) for n in check.notes),
        targets=tuple(
            dataclasses.replace(
                t,
                label=cert_text(t.label, 1000),
                evidence=cert_text(t.evidence, 200),
                commands=tuple(cert_text(c, 1000) for c in t.commands),
                closing=cert_text(t.closing, 1000),
            )
            for t in check.targets
        ),
        closing=check.closing,
    )


def _tenant_block(tenant_id: str, items: list[DueAlert], now: datetime) -> TenantBlock:
    by_cert: dict[str, list[DueAlert]] = {}
    for item in items:
        by_cert.setdefault(item.certificate, []).append(item)
    certificates = [_cert_block(group, now) for group in by_cert.values()]
    # The rules' texts and steps once per tenant: a second tenant CA shows only what is new.
    shown: set[str] = set()
    for cert in certificates:
        cert.notes = [n for n in cert.notes if n not in shown]
        cert.actions = [a for a in cert.actions if a not in shown]
        shown.update(cert.notes, cert.actions)
        if len(certificates) > 1 and cert.checklist.summary:
            summary = f"Tenant CA {cert.facts[0][1][:8]}: {cert.checklist.summary}"
            cert.checklist = dataclasses.replace(cert.checklist, summary=summary)
    top = most_urgent_item(items)
    if top.action:
        todo = clean(top.todo or top.deadline_title)
        by_when = f"{format_time(top.due)} ({when_label(top, now)})"
    else:
        todo = f"Nothing yet: {clean(top.deadline_title)} {when_label(top, now)}"
        by_when = "-"
    whose: dict[str, list[str]] = {}
    for cert in certificates:
        whose.setdefault(cert.checklist.closing, []).append(cert.facts[0][1][:8])
    closings = list(whose)
    if len(closings) > 1:  # tenant CAs at different steps: say which step is whose
        closings = [f"SHA-1 {', '.join(shas)}: {closing}" for closing, shas in whose.items()]
    return TenantBlock(
        tenant=cert_text(tenant_id),
        state=state(tenant_state_id(items)),
        certificates=certificates,
        todo=todo,
        by_when=by_when,
        urgent=any(is_late(i, now) for i in items),
        closing=" ".join(closings),
        item_count=len(items),
    )


def tenant_blocks(ordered: list[DueAlert], now: datetime) -> list[TenantBlock]:
    return [
        _tenant_block(tenant, list(group), now)
        for tenant, group in groupby(ordered, key=lambda i: i.tenant_id)
    ]


def summary_order(blocks: list[TenantBlock]) -> list[TenantBlock]:
    """The summary table reads most urgent first (the blocks stay in delivery order)."""
    return sorted(blocks, key=lambda b: (not b.urgent, b.by_when == "-", b.by_when))


def target_line(target: TargetCheck) -> str:
    evidence = f" ({target.evidence})" if target.evidence else ""
    return f"{target.mark}: {target.label}: {target.status}{evidence}"
