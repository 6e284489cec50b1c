"""Render the due alerts of one run into one message: subject, text, HTML and Adaptive Card.

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
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from shared.alerts.model import DueAlert, RenderedMessage
from shared.alerts.registration_text import registration_lines
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


def urgency_key(item: DueAlert) -> tuple[Any, ...]:
    """Overdue first, then fewest days left; the rest only makes the order stable."""
    return (item.stage != "overdue", item.days_left, item.due, item.deadline_id, item.certificate)


def sort_items(items: Sequence[DueAlert]) -> list[DueAlert]:
    return sorted(items, key=lambda i: (i.tenant_id, *urgency_key(i)))


def format_time(moment: datetime) -> str:
    # Naive datetimes are UTC throughout the app: shown as they are, never as local time.
    utc = moment if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def days_left_label(item: DueAlert) -> str:
    if item.days_left < 0:
        return f"overdue by {_plural(-item.days_left, 'day')}"
    if item.stage == "overdue":
        return "overdue"
    if item.days_left == 0:
        return "due today"
    return f"{_plural(item.days_left, 'day')} left"


def render_subject(items: Sequence[DueAlert]) -> str:
    """E.g. "CA Rotation Watch: 3 deadlines for 2 tenants (most urgent: ... overdue by 2 days)"."""
    if not items:
        return f"{PRODUCT}: no deadlines due"
    tenants = len({i.tenant_id for i in items})
    top = min(items, key=urgency_key)
    return clean(
        f"{PRODUCT}: {_plural(len(items), 'deadline')} for {_plural(tenants, 'tenant')} "
        f"(most urgent: {clean(top.deadline_title, 80)}, {days_left_label(top)})",
        limit=250,
    )


def _facts(item: DueAlert) -> list[tuple[str, str]]:
    """The fields every form shows, as (label, unescaped one-line value). The tenant and
    the deadline title head the item in every form, so they are not repeated here."""
    return [
        ("Thumbprint (SHA-1)", clean(item.sha1_thumbprint.upper())),
        ("Subject", cert_text(item.subject)),
        ("Start date", format_time(item.not_before)),
        ("Expires", format_time(item.not_after)),
        ("Due", format_time(item.due)),
        ("Stage", clean(item.stage)),
        ("Days left", str(item.days_left)),
    ]


def _more_text(count: int) -> str:
    return f"and {count} more (not listed: the message size limit was reached)"


# --- Adaptive Card -------------------------------------------------------------------


def _text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def _card_tenant_header(tenant_id: str) -> dict[str, Any]:
    return _text_block(
        f"Tenant {escape_markdown(cert_text(tenant_id))}",
        weight="Bolder",
        size="Medium",
        separator=True,
        spacing="Large",
    )


def _card_item(item: DueAlert) -> dict[str, Any]:
    urgent = item.stage == "overdue" or item.days_left <= 0
    items: list[dict[str, Any]] = [
        _text_block(
            f"{escape_markdown(clean(item.deadline_title))}: "
            f"{escape_markdown(days_left_label(item))}",
            weight="Bolder",
            color="Attention" if urgent else "Warning",
        ),
        {
            "type": "FactSet",
            "facts": [
                {"title": escape_markdown(label), "value": escape_markdown(value)}
                for label, value in _facts(item)
            ],
        },
    ]
    if item.message.strip():
        items.append(_text_block(escape_markdown(clean(item.message, 2000))))
    for number, action in enumerate(item.actions, 1):
        # "1\." so the number is not read as a Markdown list marker of its own.
        items.append(
            _text_block(f"{number}\\. {escape_markdown(clean(action, 1000))}", spacing="Small")
        )
    for line in registration_lines(item.registration):
        code = line.kind == "command"
        items.append(
            _text_block(
                escape_markdown(cert_text(line.text, 1000)),
                spacing="None" if code else "Small",
                **({"fontType": "Monospace", "size": "Small"} if code else {}),
                **({"weight": "Bolder"} if line.kind == "summary" else {}),
            )
        )
    return {"type": "Container", "spacing": "Medium", "items": items}


def _card_tail(omitted: int) -> dict[str, Any]:
    return _text_block(_more_text(omitted), weight="Bolder", separator=True)


def _card(
    subject: str,
    now: datetime,
    groups: list[tuple[str, list[DueAlert]]],
    omitted: int,
) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        _text_block(escape_markdown(subject), weight="Bolder", size="Large"),
        _text_block(f"As of {escape_markdown(format_time(now))}", isSubtle=True, spacing="None"),
    ]
    for tenant_id, tenant_items in groups:
        body.append(_card_tenant_header(tenant_id))
        body.extend(_card_item(item) for item in tenant_items)
    if omitted:
        body.append(_card_tail(omitted))
    return {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }


def _json_len(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _fit_count(subject: str, now: datetime, ordered: list[DueAlert], max_bytes: int) -> int:
    """How many leading items fit in the Teams payload alongside their "and N more" tail."""
    # The payload with no item and no tail; each body element then adds its own JSON plus
    # one comma. The tail's own size depends on how many items it counts ("and 9 more" is
    # a byte shorter than "and 10 more"), so it is measured for each candidate count.
    size = len(encode_teams_payload(_card(subject, now, [], 0)))
    count, tenant = 0, None
    for item in ordered:
        size += _json_len(_card_item(item)) + 1
        if item.tenant_id != tenant:
            size += _json_len(_card_tenant_header(item.tenant_id)) + 1
        left = len(ordered) - count - 1
        if size + (_json_len(_card_tail(left)) + 1 if left else 0) >= max_bytes:
            break
        count += 1
        tenant = item.tenant_id
    return count


def _group(items: Sequence[DueAlert]) -> list[tuple[str, list[DueAlert]]]:
    return [(tenant, list(group)) for tenant, group in groupby(items, key=lambda i: i.tenant_id)]


# --- text and HTML ---------------------------------------------------------------------


def _text(
    subject: str, now: datetime, groups: list[tuple[str, list[DueAlert]]], omitted: int
) -> str:
    lines = [subject, f"As of {format_time(now)}", ""]
    for tenant_id, tenant_items in groups:
        lines.append(f"Tenant {cert_text(tenant_id)}")
        lines.append("=" * min(len(lines[-1]), 72))
        for item in tenant_items:
            lines.append(f"* {clean(item.deadline_title)}: {days_left_label(item)}")
            lines.extend(f"    {label}: {value}" for label, value in _facts(item))
            if item.message.strip():
                lines.append(f"    {clean(item.message, 2000)}")
            lines.extend(
                f"    {n}. {clean(action, 1000)}" for n, action in enumerate(item.actions, 1)
            )
            for line in registration_lines(item.registration):
                indent = "        " if line.kind == "command" else "    "
                lines.append(f"{indent}{cert_text(line.text, 1000)}")
            lines.append("")
    if omitted:
        lines.append(_more_text(omitted))
    return "\n".join(lines).rstrip("\n") + "\n"


def _html(
    subject: str, now: datetime, groups: list[tuple[str, list[DueAlert]]], omitted: int
) -> str:
    """The e-mail's HTML part from ``templates/alert_email.html.j2`` (autoescaped)."""
    tenants = [
        {
            "tenant_id": cert_text(tenant_id),
            "alerts": [
                {
                    "urgent": item.stage == "overdue" or item.days_left <= 0,
                    "title": clean(item.deadline_title),
                    "days_left": days_left_label(item),
                    "facts": _facts(item),
                    "message": clean(item.message, 2000),  # blank: no paragraph
                    "actions": [clean(a, 1000) for a in item.actions],
                    "registration": _html_registration(item),
                }
                for item in tenant_items
            ],
        }
        for tenant_id, tenant_items in groups
    ]
    return render_html(
        "alert_email.html.j2",
        subject=subject,
        as_of=format_time(now),
        tenants=tenants,
        more=_more_text(omitted) if omitted else "",
    )


def _html_registration(item: DueAlert) -> list[dict[str, Any]]:
    """Blocks of the registration section: runs of commands become one ``<pre>``, every
    other line a paragraph (the summary in bold)."""
    blocks: list[dict[str, Any]] = []
    for line in registration_lines(item.registration):
        text = cert_text(line.text, 1000)
        if line.kind == "command":
            if blocks and blocks[-1]["kind"] == "pre":
                blocks[-1]["lines"].append(text)
            else:
                blocks.append({"kind": "pre", "lines": [text]})
        else:
            blocks.append({"kind": "p", "strong": line.kind == "summary", "text": text})
    return blocks


def render_message(
    items: Sequence[DueAlert],
    now: datetime,
    *,
    max_card_bytes: int = TEAMS_MAX_BYTES,
) -> RenderedMessage:
    """One message for one channel and run: items grouped by tenant, most urgent first.

    When the Teams payload (``encode_teams_payload(card)``) would reach ``max_card_bytes``,
    trailing items are dropped and the message ends with "and N more"; the text and HTML
    forms list exactly the same items as the card.
    """
    ordered = sort_items(items)
    subject = render_subject(ordered)

    def build(count: int) -> tuple[dict[str, Any], list[tuple[str, list[DueAlert]]], int]:
        groups = _group(ordered[:count])
        omitted = len(ordered) - count
        return _card(subject, now, groups, omitted), groups, omitted

    count = len(ordered)
    card, groups, omitted = build(count)
    if len(encode_teams_payload(card)) >= max_card_bytes:
        count = _fit_count(subject, now, ordered, max_card_bytes)
        card, groups, omitted = build(count)
        # The estimate is exact (test_mutants_message); this loop only guards against drift.
        while count and len(encode_teams_payload(card)) >= max_card_bytes:
            count -= 1
            card, groups, omitted = build(count)
    return RenderedMessage(
        subject=subject,
        text=_text(subject, now, groups, omitted),
        html=_html(subject, now, groups, omitted),
        adaptive_card=card,
        item_count=count,
        omitted_count=omitted,
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
