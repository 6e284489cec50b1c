"""Delivering one rendered message on one channel, and the ledger bookkeeping around it:
what every part of an alert pass (deadline alerts and self-health alerts) shares.

Time: each send gets the channel's own deadline (30 s by default), cut to what is left of
the pass budget, so one slow peer holds its channel for a bounded time and the pass ends
within its budget. Outcomes: sent; failed (nothing arrived for sure: retried on the
ledger's backoff); unknown (it may have arrived: never resent in the same run, tried once
more by a later run as a marked possible repeat).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.alerts.message import mark_possible_repeat
from shared.alerts.model import LedgerKey, RenderedMessage
from shared.channels import Channel, ChannelError
from shared.channels.deadline import DEFAULT_SEND_DEADLINE
from shared.settings import Settings
from shared.storage.ledger import Ledger

log = logging.getLogger("ca_watch.alerts")

EMAIL_CHANNELS = frozenset({"smtp", "acs-email"})
# Channels whose messages name recipients: e-mail, and the outbox that stands in for it.
ADDRESSED_CHANNELS = EMAIL_CHANNELS | {"outbox"}
# Item outcomes on one channel (the alerts/v1 vocabulary). An unknown send shows as
# failed there (not confirmed); its message entry says "unknown".
SENT, FAILED, PLANNED, ALREADY_SENT = "sent", "failed", "planned", "already-sent"
UNKNOWN = "unknown"
# The whole pass: well inside the ledger's 10 minute claim timeout, so a slow pass never
# looks dead to the next one.
DEFAULT_PASS_BUDGET = 240.0
# Below this, a send is not started: it could not finish.
MIN_SEND_SECONDS = 1.0


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
    send_deadline: float = DEFAULT_SEND_DEADLINE
    pass_budget: float = DEFAULT_PASS_BUDGET
    started: float = field(default_factory=time.monotonic)

    def time_left(self) -> float:
        """Seconds left of the pass budget."""
        return self.pass_budget - (time.monotonic() - self.started)

    def next_send_deadline(self) -> float:
        return min(self.send_deadline, self.time_left())

    def out_of_time(self) -> bool:
        return self.next_send_deadline() < min(MIN_SEND_SECONDS, self.send_deadline)


def possible_repeat(ledger: Ledger, keys: Sequence[LedgerKey]) -> bool:
    """Whether an earlier send of any of ``keys`` may have arrived unconfirmed."""
    return any(entry.possible_repeat for key in keys if (entry := ledger.entry(key)))


def deliver(
    state: PassState,
    name: str,
    channel: Channel,
    message: RenderedMessage,
    recipients: tuple[str, ...],
    keys: Sequence[LedgerKey],
) -> tuple[str, str | None, str | None]:
    """Send one message and record it in the ledger: (outcome, provider id, error)."""
    if possible_repeat(state.ledger, keys):
        message = mark_possible_repeat(message)
    try:
        if name in EMAIL_CHANNELS and not recipients:
            raise ChannelError(f"{name}: no recipients (set ALERT_EMAIL_TO)", retryable=False)
        provider_id = channel.send(message, recipients, deadline=state.next_send_deadline())
    except ChannelError as exc:
        if exc.unclear:
            state.ledger.mark_unknown(keys, state.now, exc.detail)
            return UNKNOWN, None, exc.detail
        # Retryable or not, it is recorded as failed; a non-retryable one waits a day.
        wait = timedelta(seconds=exc.retry_after) if exc.retry_after else None
        state.ledger.mark_failed(
            keys, state.now, exc.detail, retryable=exc.retryable, retry_after=wait
        )
        return FAILED, None, exc.detail
    except Exception as exc:  # an unexpected library error must not lose the message
        detail = f"{name}: {type(exc).__name__}: {exc}"
        log.exception("channel %s raised", name)
        state.ledger.mark_failed(keys, state.now, detail, retryable=True)
        return FAILED, None, detail
    state.ledger.mark_sent(keys, state.now, provider_id)
    return SENT, provider_id, None
