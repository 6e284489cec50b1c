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
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from shared.alerts.model import DueAlert, RenderedMessage
from shared.alerts.registration_text import Checklist, TargetCheck, checklist
from shared.alerts.rules import milestone_when, time_left
from shared.alerts.states import RANK, State, most_urgent, state
from shared.alerts.templating import render_html

PRODUCT = "CA Rotation Watch"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
TEAMS_MAX_BYTES = 28_000

# A certificate subject can be as long as the upload limit allows; one huge value must
# not push every other item out of a 28 KB card.
MAX_FIELD_CHARS = 400

# Markdown metacharacters of the subset Adaptive Card TextBlocks and Facts render.
_MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()#+-.!|<>~")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    """One line of text: control characters (CR, LF, tabs, ...) become a space; invisible
    format characters (Unicode category Cf: the bidirectional overrides and isolates
    U+202A-U+202E and U+2066-U+2069, zero-width characters, ...) are removed, so that a
    value reads as it is stored; long values are cut with an ellipsis."""
    text = str(value)
    if not text.isascii():  # the common case costs nothing
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


# A URL (scheme and authority), a www. host, a mail address: what mail clients and Teams
# turn into links. Other dotted words ("document.title") are left as they are.
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30})://([^\s/?#\\]*)")
_WWW = re.compile(r"(?i)\bwww\.[^\s/?#\\]*")
_MAIL = re.compile(r"(?i)\b([\w.+-]+)@([a-z0-9-]+(?:\.[a-z0-9-]+)+)")


def _defang_url(match: re.Match[str]) -> str:
    scheme, authority = match.group(1), match.group(2).replace(".", "[.]")
    if scheme.lower() in ("http", "https"):
        return f"{scheme[0]}xx{scheme[3:]}://{authority}"  # the usual hxxp:// / hxxps://
    return f"{scheme}[://]{authority}"


def defang(value: str) -> str:
    """Make URLs and mail addresses in a value inert: ``hxxps://example[.]com/x``,
    ``www[.]example[.]com``, ``ops[@]example[.]com``. A subject is whatever the
    certificate's maker wrote; mail clients and Teams would link it otherwise."""
    value = _URL.sub(_defang_url, value)
    value = _WWW.sub(lambda m: m.group(0).replace(".", "[.]"), value)
    return _MAIL.sub(lambda m: f"{m.group(1)}[@]{m.group(2).replace('.', '[.]')}", value)


def cert_text(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    """A value taken from a certificate (subject, tenant id): cleaned, then defanged."""
    return clean(defang(clean(value, limit * 2)), limit)


def escape_markdown(value: str) -> str:
    """Escape Markdown metacharacters and break Adaptive Card template syntax ``${...}``."""
    # The zero-width space keeps "${" from ever reappearing, even if a client drops
    # the backslash in front of "{".
    value = value.replace("${", "$\u200b{")
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in value)


def teams_payload(card: dict[str, Any]) -> dict[str, Any]:
    """The body a Teams Workflows webhook expects: a message whose attachment is the card."""
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def encode_teams_payload(card: dict[str, Any]) -> bytes:
    """The exact bytes the Teams channel posts (and the size the 28 KB limit applies to)."""
    return json.dumps(teams_payload(card), ensure_ascii=False, separators=(",", ":")).encode()


def _utc(moment: datetime) -> datetime:
    # Naive datetimes are UTC throughout the app.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def urgency_key(item: DueAlert) -> tuple[Any, ...]:
    """Action deadlines before milestones, then the earliest due (the most overdue first);
    the rest only makes the order stable."""
    return (not item.action, _utc(item.due), item.deadline_id, item.certificate)


def sort_items(items: Sequence[DueAlert]) -> list[DueAlert]:
    """By tenant, then urgency: a message lists a prefix of this order (whole tenants)."""
    return sorted(items, key=lambda i: (i.tenant_id, *urgency_key(i)))


def format_time(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def is_late(item: DueAlert, now: datetime) -> bool:
    """An action deadline that has passed: the only thing shown as overdue, in red."""
    return item.action and _utc(now) > _utc(item.due)


def when_label(item: DueAlert, now: datetime) -> str:
    """ "13 days left", "15 hours left", "overdue since 2020-08-18" for an action deadline;
    "from 2020-08-05" / "since 2020-08-05" for a milestone (information)."""
    if item.action:
        return time_left(_utc(item.due), _utc(now))
    return milestone_when(_utc(item.due), _utc(now))


def deadline_line(item: DueAlert, now: datetime) -> str:
    """One deadline as a person reads it: what to do by when, or what happens when."""
    if item.action:
        what = clean(item.todo or item.deadline_title)
        return f"{what}: by {format_time(item.due)}, {when_label(item, now)}"
    return f"{clean(item.deadline_title)} {when_label(item, now)} (information)"


def _most_urgent(items: Sequence[DueAlert]) -> DueAlert:
    return min(items, key=urgency_key)


def render_subject(items: Sequence[DueAlert], now: datetime | None = None) -> str:
    """E.g. "CA Rotation Watch: 3 deadlines for 2 tenants; next action: Register the renewed
    tenant CA before it activates by 2020-08-18 (13 days left)"."""
    if not items:
        return f"{PRODUCT}: no deadlines due"
    moment = now or datetime.now(UTC)
    tenants = len({i.tenant_id for i in items})
    top = _most_urgent(items)
    head = f"{PRODUCT}: {_plural(len(items), 'deadline')} for {_plural(tenants, 'tenant')}"
    if top.action:
        what = clean(top.todo or top.deadline_title, 80)
        tail = f"next action: {what} by {_utc(top.due):%Y-%m-%d} ({when_label(top, moment)})"
    else:
        tail = f"for information: {clean(top.deadline_title, 80)} {when_label(top, moment)}"
    return clean(f"{head}; {tail}", limit=250)


def _facts(item: DueAlert) -> list[tuple[str, str]]:
    """A certificate's facts, as (label, unescaped one-line value): shown once per tenant
    CA, however many of its deadlines are due."""
    return [
        ("Thumbprint (SHA-1)", clean(item.sha1_thumbprint.upper())),
        ("Subject", cert_text(item.subject)),
        ("Start date", format_time(item.not_before)),
        ("Expires", format_time(item.not_after)),
    ]


def _more_text(tenants: int, items: int) -> str:
    return (
        f"and {_plural(tenants, 'more tenant')} ({_plural(items, 'alert')}) folded: the message "
        "size limit was reached; they follow in the next message"
    )


def code_runs(value: str) -> list[tuple[bool, str]]:
    """A text split at its `code` spans: (is_code, text) pairs, backticks removed. An odd
    number of backticks is not code markup: the text stays one plain run."""
    parts = value.split("`")
    if len(parts) % 2 == 0:
        return [(False, value)]
    return [(i % 2 == 1, part) for i, part in enumerate(parts) if part]


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


# --- one block per tenant: the view every form renders ----------------------------------


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
    top = _most_urgent(items)
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


def _blocks(ordered: list[DueAlert], now: datetime) -> list[TenantBlock]:
    return [
        _tenant_block(tenant, list(group), now)
        for tenant, group in groupby(ordered, key=lambda i: i.tenant_id)
    ]


def _summary_order(blocks: list[TenantBlock]) -> list[TenantBlock]:
    """The summary table reads most urgent first (the blocks stay in delivery order)."""
    return sorted(blocks, key=lambda b: (not b.urgent, b.by_when == "-", b.by_when))


# --- Adaptive Card -------------------------------------------------------------------


def _text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def _card_rich(value: str, **extra: Any) -> list[dict[str, Any]]:
    """A sentence for the card: its `code` spans lose their backticks (a TextBlock renders
    Markdown, and a backtick would show as one), and a span that is a whole command (four
    words or more) follows as its own monospace block, ready to copy."""
    runs = code_runs(value)
    blocks = [_text_block(escape_markdown("".join(part for _, part in runs)), **extra)]
    blocks += [_card_command(part) for is_code, part in runs if is_code and len(part.split()) >= 4]
    return blocks


def _card_command(command: str) -> dict[str, Any]:
    return _text_block(
        escape_markdown(command),
        spacing="None",
        fontType="Monospace",
        size="Small",
    )


def _card_summary(blocks: list[TenantBlock]) -> list[dict[str, Any]]:
    def row(cells: tuple[str, str, str], **extra: Any) -> dict[str, Any]:
        return {
            "type": "ColumnSet",
            "spacing": "None",
            "columns": [
                {
                    "type": "Column",
                    "width": width,
                    "items": [_text_block(escape_markdown(cell), size="Small", **extra)],
                }
                for cell, width in zip(cells, ("stretch", "stretch", "auto"), strict=True)
            ],
        }

    return [
        row(("Tenant", "What to do", "By when"), weight="Bolder"),
        *(row((b.tenant, b.todo, b.by_when)) for b in _summary_order(blocks)),
    ]


def _card_tenant(block: TenantBlock) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        _text_block(
            f"Tenant {escape_markdown(block.tenant)}",
            weight="Bolder",
            size="Medium",
        ),
        _text_block(
            escape_markdown(f"{block.state.symbol} {block.state.label}: {block.state.meaning}"),
            spacing="None",
            isSubtle=True,
        ),
    ]
    for cert in block.certificates:
        items.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": escape_markdown(label), "value": escape_markdown(value)}
                    for label, value in cert.facts
                ],
            }
        )
        for kind, line in cert.deadlines:
            color = {"late": "Attention", "action": "Warning"}.get(kind, "Default")
            items.append(
                _text_block(
                    escape_markdown(line),
                    weight="Bolder" if kind != "info" else "Default",
                    color=color,
                    spacing="Small",
                )
            )
        for note in cert.notes:
            items += _card_rich(note, spacing="Small") if note.strip() else []
        for number, action in enumerate(cert.actions, 1):
            # "1\." once escaped, so the number is not read as a Markdown list marker.
            items += _card_rich(f"{number}. {action}", spacing="Small")
        check = cert.checklist
        if check.summary:
            items.append(_text_block(escape_markdown(check.summary), weight="Bolder"))
        for note in check.notes:
            items += _card_rich(note, spacing="Small")
        for target in check.targets:
            items.append(_text_block(escape_markdown(_target_line(target)), spacing="Small"))
            items.extend(_card_command(command) for command in target.commands)
            if target.closing:
                items += _card_rich(target.closing, spacing="None")
    items += _card_rich(f"Closing step: {block.closing}", weight="Bolder", spacing="Medium")
    return {"type": "Container", "separator": True, "spacing": "Large", "items": items}


def _target_line(target: TargetCheck) -> str:
    evidence = f" ({target.evidence})" if target.evidence else ""
    return f"{target.mark}: {target.label}: {target.status}{evidence}"


def _card(subject: str, now: datetime, blocks: list[TenantBlock], tail: str) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        _text_block(escape_markdown(subject), weight="Bolder", size="Large"),
        _text_block(f"As of {escape_markdown(format_time(now))}", isSubtle=True, spacing="None"),
    ]
    if blocks:
        body.extend(_card_summary(blocks))
    body.extend(_card_tenant(block) for block in blocks)
    if tail:
        body.append(_text_block(escape_markdown(tail), weight="Bolder", separator=True))
    return {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }


# --- text and HTML ---------------------------------------------------------------------


def _text(subject: str, now: datetime, blocks: list[TenantBlock], tail: str) -> str:
    lines = [subject, f"As of {format_time(now)}", ""]
    if blocks:
        lines.append("Summary: tenant | what to do | by when")
        lines.extend(f"  {b.tenant} | {b.todo} | {b.by_when}" for b in _summary_order(blocks))
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
                lines.append(f"    {_target_line(target)}")
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
        summary=_summary_order(blocks),
        blocks=blocks,
        runs=code_runs,
        target_line=_target_line,
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
    blocks = _blocks(ordered, now)

    def build(count: int) -> tuple[dict[str, Any], str]:
        folded = blocks[count:]
        tail = _more_text(len(folded), sum(b.item_count for b in folded)) if folded else ""
        return _card(subject, now, blocks[:count], tail), tail

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
    note = _text_block(escape_markdown(POSSIBLE_REPEAT), color="Warning", isSubtle=True)
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
