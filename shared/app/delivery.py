"""Delivering one rendered message on one channel, and the ledger bookkeeping around it:
what every part of an alert pass (deadline alerts and self-health alerts) shares."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.alerts.model import LedgerKey, RenderedMessage
from shared.channels import Channel, ChannelError
from shared.settings import Settings
from shared.storage.ledger import Ledger

log = logging.getLogger("ca_watch.alerts")

EMAIL_CHANNELS = frozenset({"smtp", "acs-email"})
# Item outcomes on one channel (the alerts/v1 vocabulary).
SENT, FAILED, PLANNED, ALREADY_SENT = "sent", "failed", "planned", "already-sent"


@dataclass
class PassState:
    """What one run carries from channel to channel."""

    ledger: Ledger
    settings: Settings
    now: datetime
    run_id: str
    max_messages: int | None
    outcomes: dict[LedgerKey, str]
    messages: list[dict[str, Any]]
    errors: list[dict[str, str]]


def deliver(
    state: PassState,
    name: str,
    channel: Channel,
    message: RenderedMessage,
    recipients: tuple[str, ...],
    keys: Sequence[LedgerKey],
) -> tuple[str, str | None, str | None]:
    """Send one message and record it in the ledger: (outcome, provider id, error)."""
    try:
        if name in EMAIL_CHANNELS and not recipients:
            raise ChannelError(f"{name}: no recipients (set ALERT_EMAIL_TO)", retryable=False)
        provider_id = channel.send(message, recipients)
    except ChannelError as exc:
        # Retryable or not, it is recorded as failed; a non-retryable one waits a day.
        state.ledger.mark_failed(keys, state.now, exc.detail, retryable=exc.retryable)
        return FAILED, None, exc.detail
    except Exception as exc:  # an unexpected library error must not lose the message
        detail = f"{name}: {type(exc).__name__}: {exc}"
        log.exception("channel %s raised", name)
        state.ledger.mark_failed(keys, state.now, detail, retryable=True)
        return FAILED, None, detail
    state.ledger.mark_sent(keys, state.now, provider_id)
    return SENT, provider_id, None
