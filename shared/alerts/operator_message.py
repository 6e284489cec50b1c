"""The operator (self-health) message: a title and a few lines, in every channel's form.
Pure; every value is escaped for the channel it goes into."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from shared.alerts.message import PRODUCT
from shared.alerts.model import RenderedMessage
from shared.alerts.teams_card import CARD_SCHEMA, CARD_VERSION
from shared.alerts.tenant_blocks import format_time
from shared.alerts.text_safety import clean, escape_markdown


def render_operator_message(
    title: str, lines: Sequence[str], now: datetime, *, kind: str = "operator alert"
) -> RenderedMessage:
    subject = clean(f"{PRODUCT}: {kind}: {title}", limit=250)
    text = "\n".join([subject, f"As of {format_time(now)}", "", *lines]) + "\n"
    page = [
        "<!DOCTYPE html>",
        f'<html><head><meta charset="utf-8"><title>{html.escape(subject)}</title></head><body>',
        f"<h2>{html.escape(subject)}</h2>",
        f"<p>As of {html.escape(format_time(now))}</p>",
        "<ul>",
        *(f"<li>{html.escape(line)}</li>" for line in lines),
        "</ul></body></html>",
    ]
    card = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": [
            {"type": "TextBlock", "text": escape_markdown(subject), "wrap": True},
            *({"type": "TextBlock", "text": escape_markdown(line), "wrap": True} for line in lines),
        ],
    }
    return RenderedMessage(subject, text, "\n".join(page) + "\n", card, item_count=1)
