"""Render the due alerts of one run into one message: subject, text, HTML and Adaptive Card.
A summary table first (tenant, what to do, by when), then one block per tenant: each tenant
CA once, its action deadlines with the time left and its milestones as information, a
checklist per registration target, and the closing step that makes the alerts stop.

Pure: no I/O. Every value that may come from a certificate (tenant id, thumbprint,
subject, and the rule texts, which may quote them) is escaped for the form it goes into:
HTML escaping for the HTML part (a Jinja2 template, autoescaped), Markdown escaping plus
Adaptive Card template neutralising for the card, control characters removed everywhere
(DESIGN §4).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.alerts.model import DueAlert, RenderedMessage
from shared.alerts.teams_card import adaptive_card, encode_teams_payload, text_block
from shared.alerts.templating import render_html
from shared.alerts.tenant_blocks import (
    TenantBlock,
    as_utc,
    format_time,
    most_urgent_item,
    plural,
    sort_items,
    summary_order,
    target_line,
    tenant_blocks,
    when_label,
)
from shared.alerts.text_safety import clean, code_runs, escape_markdown

PRODUCT = "CA Rotation Watch"
TEAMS_MAX_BYTES = 28_000


def render_subject(items: Sequence[DueAlert], now: datetime | None = None) -> str:
    """E.g. "CA Rotation Watch: 3 deadlines for 2 tenants; next action: Register the renewed
    tenant CA before it activates by 2020-08-18 (13 days left)"."""
    if not items:
        return f"{PRODUCT}: no deadlines due"
    moment = now or datetime.now(UTC)
    tenants = len({i.tenant_id for i in items})
    top = most_urgent_item(items)
    head = f"{PRODUCT}: {plural(len(items), 'deadline')} for {plural(tenants, 'tenant')}"
    if top.action:
        what = clean(top.todo or top.deadline_title, 80)
        tail = f"next action: {what} by {as_utc(top.due):%Y-%m-%d} ({when_label(top, moment)})"
    else:
        tail = f"for information: {clean(top.deadline_title, 80)} {when_label(top, moment)}"
    return clean(f"{head}; {tail}", limit=250)


def _more_text(tenants: int, items: int) -> str:
    return (
        f"and {plural(tenants, 'more tenant')} ({plural(items, 'alert')}) folded: the message "
        "size limit was reached; they follow in the next message"
    )


# --- text and HTML ---------------------------------------------------------------------


def _text(subject: str, now: datetime, blocks: list[TenantBlock], tail: str) -> str:
    lines = [subject, f"As of {format_time(now)}", ""]
    if blocks:
        lines.append("Summary: tenant | what to do | by when")
        lines.extend(f"  {b.tenant} | {b.todo} | {b.by_when}" for b in summary_order(blocks))
        lines.append("")
    for block in blocks:
        lines.append(f"Tenant {block.tenant}")
        lines.append("=" * min(len(lines[-1]), 72))
        lines.append(f"State: {block.state.symbol} {block.state.label}: {block.state.meaning}")
        for cert in block.certificates:
            lines.extend(f"    {label}: {value}" for label, value in cert.facts)
            for kind, line in cert.deadlines:
                lines.append(f"{'*' if kind != 'info' else '-'} {line}")
            lines.extend(f"    {note}" for note in cert.notes if note.strip())
            lines.extend(f"    {n}. {action}" for n, action in enumerate(cert.actions, 1))
            check = cert.checklist
            if check.summary:
                lines.append(f"    {check.summary}")
            lines.extend(f"    {note}" for note in check.notes)
            for target in check.targets:
                lines.append(f"    {target_line(target)}")
                lines.extend(f"        {c}" for c in target.commands)
                if target.closing:
                    lines.append(f"      {target.closing}")
        lines.append(f"Closing step: {block.closing}")
        lines.append("")
    if tail:
        lines.append(tail)
    return "\n".join(lines).rstrip("\n") + "\n"


def _html(subject: str, now: datetime, blocks: list[TenantBlock], tail: str) -> str:
    """The e-mail's HTML part from ``templates/alert_email.html.j2`` (autoescaped)."""
    return render_html(
        "alert_email.html.j2",
        subject=subject,
        as_of=format_time(now),
        summary=summary_order(blocks),
        blocks=blocks,
        runs=code_runs,
        target_line=target_line,
        more=tail,
    )


def render_message(
    items: Sequence[DueAlert],
    now: datetime,
    *,
    max_card_bytes: int = TEAMS_MAX_BYTES,
) -> RenderedMessage:
    """One message for one channel and run: a summary table (tenant, what to do, by when),
    then one block per tenant (each certificate once, its deadlines, a checklist per
    target, the closing step).

    When the Teams payload (``encode_teams_payload(card)``) would reach ``max_card_bytes``,
    trailing tenants are folded whole and the message says how many; the text and HTML
    forms list exactly the same tenants as the card, and ``item_count`` leading items of
    ``sort_items(items)`` are the ones listed.
    """
    ordered = sort_items(items)
    subject = render_subject(ordered, now)
    blocks = tenant_blocks(ordered, now)

    def build(count: int) -> tuple[dict[str, Any], str]:
        folded = blocks[count:]
        tail = _more_text(len(folded), sum(b.item_count for b in folded)) if folded else ""
        return adaptive_card(subject, now, blocks[:count], tail), tail

    def fits(count: int) -> bool:
        return len(encode_teams_payload(build(count)[0])) < max_card_bytes

    count = len(blocks)
    if not fits(count):
        # The card grows with each tenant added: the largest count that fits, by bisection.
        low, high = 0, count  # fits(low) is assumed; fits(high) is false
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        count = low
    card, tail = build(count)
    shown = blocks[:count]
    listed = sum(b.item_count for b in shown)
    return RenderedMessage(
        subject=subject,
        text=_text(subject, now, shown, tail),
        html=_html(subject, now, shown, tail),
        adaptive_card=card,
        item_count=listed,
        omitted_count=len(ordered) - listed,
    )


# What the note adds to a Teams payload, with room to spare (renderers leave this free).
REPEAT_NOTE_BYTES = 400
POSSIBLE_REPEAT = (
    "Possible repeat: an earlier send of this message got no answer, so it may have "
    "arrived already."
)
_POSSIBLE_REPEAT_HTML = f'<p style="color:#8a6d00">{html.escape(POSSIBLE_REPEAT)}</p>'


def mark_possible_repeat(message: RenderedMessage) -> RenderedMessage:
    """The same message, saying in every form that it may repeat one already delivered
    (the ledger recorded an unknown outcome for it)."""
    card = dict(message.adaptive_card)
    note = text_block(escape_markdown(POSSIBLE_REPEAT), color="Warning", isSubtle=True)
    card["body"] = [note, *card.get("body", [])]
    head, marker, rest = message.html.partition("<h2>")
    return dataclasses.replace(
        message,
        subject=clean(f"[possible repeat] {message.subject}", limit=250),
        text=f"{POSSIBLE_REPEAT}\n\n{message.text}",
        html=(
            f"{head}{_POSSIBLE_REPEAT_HTML}\n{marker}{rest}"
            if marker
            else _POSSIBLE_REPEAT_HTML + message.html
        ),
        adaptive_card=card,
    )
