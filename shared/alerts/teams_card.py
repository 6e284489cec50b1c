"""The Adaptive Card form of an alert message, and the Teams Workflows payload that
carries it. Every value is Markdown-escaped (TextBlocks and Facts render Markdown) and
``${...}`` template syntax is broken. Pure."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.alerts.tenant_blocks import TenantBlock, format_time, summary_order, target_line
from shared.alerts.text_safety import code_runs, escape_markdown

CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"


def teams_payload(card: dict[str, Any]) -> dict[str, Any]:
    """The body a Teams Workflows webhook expects: a message whose attachment is the card."""
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def encode_teams_payload(card: dict[str, Any]) -> bytes:
    """The exact bytes the Teams channel posts (and the size the 28 KB limit applies to)."""
    return json.dumps(teams_payload(card), ensure_ascii=False, separators=(",", ":")).encode()


def text_block(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def _card_rich(value: str, **extra: Any) -> list[dict[str, Any]]:
    """A sentence for the card: its `code` spans lose their backticks (a TextBlock renders
    Markdown, and a backtick would show as one), and a span that is a whole command (four
    words or more) follows as its own monospace block, ready to copy."""
    runs = code_runs(value)
    blocks = [text_block(escape_markdown("".join(part for _, part in runs)), **extra)]
    blocks += [_card_command(part) for is_code, part in runs if is_code and len(part.split()) >= 4]
    return blocks


def _card_command(command: str) -> dict[str, Any]:
    return text_block(
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
                    "items": [text_block(escape_markdown(cell), size="Small", **extra)],
                }
                for cell, width in zip(cells, ("stretch", "stretch", "auto"), strict=True)
            ],
        }

    return [
        row(("Tenant", "What to do", "By when"), weight="Bolder"),
        *(row((b.tenant, b.todo, b.by_when)) for b in summary_order(blocks)),
    ]


def _card_tenant(block: TenantBlock) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        text_block(
            f"Tenant {escape_markdown(block.tenant)}",
            weight="Bolder",
            size="Medium",
        ),
        text_block(
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
                text_block(
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
            items.append(text_block(escape_markdown(check.summary), weight="Bolder"))
        for note in check.notes:
            items += _card_rich(note, spacing="Small")
        for target in check.targets:
            items.append(text_block(escape_markdown(target_line(target)), spacing="Small"))
            items.extend(_card_command(command) for command in target.commands)
            if target.closing:
                items += _card_rich(target.closing, spacing="None")
    items += _card_rich(f"Closing step: {block.closing}", weight="Bolder", spacing="Medium")
    return {"type": "Container", "separator": True, "spacing": "Large", "items": items}


def adaptive_card(
    subject: str, now: datetime, blocks: list[TenantBlock], tail: str
) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        text_block(escape_markdown(subject), weight="Bolder", size="Large"),
        text_block(f"As of {escape_markdown(format_time(now))}", isSubtle=True, spacing="None"),
    ]
    if blocks:
        body.extend(_card_summary(blocks))
    body.extend(_card_tenant(block) for block in blocks)
    if tail:
        body.append(text_block(escape_markdown(tail), weight="Bolder", separator=True))
    return {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": body,
    }
