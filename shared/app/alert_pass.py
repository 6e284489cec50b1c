"""One alert pass (the timer's work): store -> planner -> ledger claim -> channel -> mark.

``run_alerts`` reads the open tenant CAs (O(open), through the store's alert index), asks
the planner what is due, reads the ledger rows of those items (one query per stage), and
per channel claims, renders, sends and marks. It returns the ``ca-watch/alerts/v1``
document (DESIGN §3). A channel that fails never stops the others; every outcome is in
the ledger, so a failed send is retried by a later run and never sent twice.

Self-health: when uploads failed analysis in the last 24 hours, or a channel has failed
the same message ``FAILING_ATTEMPTS`` times, the operators get one alert per problem and
day (deduplicated through the same ledger) on the other channels.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.alerts.message import (
    CARD_SCHEMA,
    CARD_VERSION,
    PRODUCT,
    TEAMS_MAX_BYTES,
    clean,
    escape_markdown,
    format_time,
    render_message,
    sort_items,
)
from shared.alerts.model import (
    DueAlert,
    LedgerKey,
    LedgerStatus,
    RenderedMessage,
    TenantCertificate,
)
from shared.alerts.planner import AlertPlanner, Decision, decide
from shared.alerts.rules import Rules
from shared.channels import Channel, ChannelError, build_channels
from shared.settings import Settings
from shared.storage.keys import iso
from shared.storage.ledger import Ledger
from shared.storage.store import TableStore

log = logging.getLogger("ca_watch.alerts")

SCHEMA = "ca-watch/alerts/v1"
EMAIL_CHANNELS = frozenset({"smtp", "acs-email"})
SELF_HEALTH = "self-health"
OPERATOR_ROW = "operator"  # RowKey of self-health ledger rows: they have no certificate
FAILING_ATTEMPTS = 3
UPLOAD_WINDOW = timedelta(hours=24)
MAX_LISTED_UPLOADS = 20
# The size at which a message ends with "and N more". 28 KB is Teams' limit (DESIGN §4);
# mail relays and ACS accept megabytes, and cutting an email at 28 KB would leave a large
# backlog trickling out a dozen items per run.
CHANNEL_MAX_BYTES = {"teams": TEAMS_MAX_BYTES}
MAIL_MAX_BYTES = 1_000_000

# Item outcomes on one channel (the alerts/v1 vocabulary).
SENT, FAILED, PLANNED, ALREADY_SENT = "sent", "failed", "planned", "already-sent"


@dataclass
class _Pass:
    """What one run carries from channel to channel."""

    ledger: Ledger
    settings: Settings
    now: datetime
    run_id: str
    max_messages: int | None
    outcomes: dict[LedgerKey, str]
    messages: list[dict[str, Any]]
    errors: list[dict[str, str]]


def run_alerts(
    *,
    store: TableStore,
    settings: Settings,
    rules: Rules,
    now: datetime,
    channels: Mapping[str, Channel] | None = None,
    dry_run: bool = False,
    run_id: str | None = None,
    max_messages: int | None = 1,
) -> dict[str, Any]:
    """One alert pass at ``now``; returns the ``ca-watch/alerts/v1`` document.

    ``dry_run`` (``alerts plan``) reports what would be sent and claims nothing.
    ``max_messages``: messages per channel and recipient group in one run (None: as many
    as it takes). Items cut from the last one by the size limit (28 KB on Teams) are
    released to the next run; with the default 1, a channel gets one message per run.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    planner = AlertPlanner(rules)
    gate = None
    if not dry_run:
        store.index.align_schedule()  # a no-op unless the rules changed since the last pass
        gate = store.gate.next_look()
    if gate is not None and now < gate[0]:
        certificates: list[TenantCertificate] = []  # nothing in the index is due yet
    else:
        # A plan shows every open deadline (sent ones too); a run reads only what is due.
        certificates = store.index.open_tenant_certificates(now, all_open=dry_run)
    due = planner.due_alerts(now, certificates)
    if channels is None and not dry_run:
        channels = build_channels(settings, clock=lambda: now)
    names = tuple(channels) if channels is not None else tuple(settings.alert_channels)
    ledger = Ledger(store.table("ledger"), planner.claim_timeout)
    entries = ledger.read_entries(a.ledger_key(c) for a in due for c in names)

    state = _Pass(ledger, settings, now, run_id or uuid.uuid4().hex, max_messages, {}, [], [])
    plan = planner.decide_all(now, due, entries, names)
    for item in plan.items:
        for name, decision in item.decisions.items():
            key = item.ledger_key(name)
            if decision is Decision.ALREADY_SENT:
                entry = entries.get(key)
                backing_off = entry is not None and entry.status is LedgerStatus.FAILED
                state.outcomes[key] = FAILED if backing_off else ALREADY_SENT
            else:
                state.outcomes[key] = PLANNED  # planned or retry: both mean "send now"

    if not dry_run:
        assert channels is not None
        for name, channel in channels.items():
            if to_send := [item.alert for item in plan.to_send(name)]:
                _run_channel(state, name, channel, to_send)
    health = _self_health(state, store, names, channels, dry_run)
    if not dry_run and (gate is None or now >= gate[0]):
        _reschedule(state, store, planner, certificates, due, names, gate)

    items = [
        {
            "tenant_id": a.tenant_id,
            "certificate": a.certificate,
            "deadline": a.deadline_id,
            "due": iso(a.due),
            "stage": a.stage,
            "stage_key": a.stage_key,
            "days_left": a.days_left,
            "channels": {c: state.outcomes[a.ledger_key(c)] for c in names},
        }
        for a in due
    ]
    counts: dict[str, int] = {}
    for item in items:
        for outcome in item["channels"].values():
            counts[outcome] = counts.get(outcome, 0) + 1
    document = {
        "schema": SCHEMA,
        "now": iso(now),
        "dry_run": dry_run,
        "run_id": state.run_id,
        "channels": list(names),
        "items": items,
        "messages": state.messages,
        "self_health": health,
        "errors": state.errors,
        "summary": {
            "due": len(items),
            **counts,
            "failed_sends": sum(1 for m in state.messages if m["error"]),
        },
    }
    log.info(
        "alert pass at %s: %d due, %d message(s), %d failed",
        iso(now),
        len(items),
        len(state.messages),
        document["summary"]["failed_sends"],
    )
    return document


def _reschedule(
    state: _Pass,
    store: TableStore,
    planner: AlertPlanner,
    certificates: Sequence[TenantCertificate],
    due: Sequence[DueAlert],
    names: Sequence[str],
    gate: tuple[datetime, str] | None,
) -> None:
    """Put each certificate read by this pass back in the index at the moment it next
    needs a look: its next stage, or sooner when a send of this pass is still owed
    (failed: at its backoff; cut or not claimed: at once; another run's claim: when that
    claim goes stale). Steady passes then read only what has become due."""
    owed: dict[str, datetime] = {}
    for alert in due:
        for name in names:
            key = alert.ledger_key(name)
            outcome = state.outcomes[key]
            if outcome == SENT:
                continue
            entry = state.ledger.entry(key)
            if entry is None or outcome == PLANNED:
                at = state.now
            elif entry.status is LedgerStatus.FAILED:
                at = entry.next_attempt_at or state.now
            elif entry.status is LedgerStatus.CLAIMED:
                at = (entry.claimed_at or state.now) + planner.claim_timeout
            else:
                continue  # sent
            owed[alert.certificate] = min(at, owed.get(alert.certificate, at))
    moves = []
    for cert in certificates:
        check = planner.next_check(cert, state.now)
        if cert.sha256 in owed:
            check = owed[cert.sha256] if check is None else min(check, owed[cert.sha256])
        moves.append((cert, check))
    try:
        store.index.reschedule(moves)
        # The gate: the earliest next look, among the rows just moved and those not read.
        later = [check for _, check in moves if check is not None]
        unread = store.index.first_look_after(state.now)
        if unread is not None:
            later.append(unread)
        store.gate.raise_next_look(min(later, default=None), gate)
    except Exception:  # an optimisation only: unmoved rows are simply read again
        log.exception("rescheduling the alert index failed; rows stay where they were")
        store.gate.clear_next_look()


def any_failed(document: Mapping[str, Any]) -> bool:
    """Whether a send of this run failed (``alerts run`` exits 1)."""
    return bool(document.get("errors")) or any(m.get("error") for m in document["messages"])


def _groups(
    name: str, alerts: Sequence[DueAlert], settings: Settings
) -> list[tuple[tuple[str, ...], list[DueAlert]]]:
    """One group per distinct recipient list on email channels (per-tenant routing);
    a single group elsewhere (the Teams Workflow and the outbox choose no recipients)."""
    if name not in EMAIL_CHANNELS:
        return [((), list(alerts))]
    groups: dict[tuple[str, ...], list[DueAlert]] = {}
    for alert in alerts:
        groups.setdefault(settings.recipients_for(alert.tenant_id), []).append(alert)
    return list(groups.items())


def _run_channel(state: _Pass, name: str, channel: Channel, alerts: list[DueAlert]) -> None:
    try:
        won = state.ledger.claim((a.ledger_key(name) for a in alerts), state.run_id, state.now)
    except Exception as exc:  # storage trouble: this channel waits for the next run
        log.exception("claiming ledger rows for %s failed", name)
        state.errors.append({"channel": name, "error": f"{type(exc).__name__}: {exc}"})
        for alert in alerts:
            state.outcomes[alert.ledger_key(name)] = FAILED
        return
    mine = []
    for alert in alerts:
        if alert.ledger_key(name) in won:
            mine.append(alert)
        else:
            state.outcomes[alert.ledger_key(name)] = ALREADY_SENT  # another run owns it
    for recipients, group in _groups(name, mine, state.settings):
        try:
            _send_group(state, name, channel, recipients, group)
        except Exception as exc:  # a ledger write failed: the claims go stale and retry
            log.exception("alert delivery on %s failed", name)
            state.errors.append({"channel": name, "error": f"{type(exc).__name__}: {exc}"})


def _send_group(
    state: _Pass,
    name: str,
    channel: Channel,
    recipients: tuple[str, ...],
    alerts: list[DueAlert],
) -> None:
    remaining = sort_items(alerts)
    sent_messages = 0
    while remaining and (state.max_messages is None or sent_messages < state.max_messages):
        limit = CHANNEL_MAX_BYTES.get(name, MAIL_MAX_BYTES)
        message = render_message(remaining, state.now, max_card_bytes=limit)
        listed, rest = remaining[: message.item_count], remaining[message.item_count :]
        if not listed:
            break  # cannot happen (values are clipped); never loop forever on it
        sent_messages += 1
        keys = [a.ledger_key(name) for a in listed]
        outcome, provider_id, error = _deliver(state, name, channel, message, recipients, keys)
        for key in keys:
            state.outcomes[key] = outcome
        state.messages.append(
            {
                "channel": name,
                "recipients": list(recipients),
                "subject": message.subject,
                "items": message.item_count,
                "omitted": message.omitted_count,
                "provider_id": provider_id,
                "error": error,
            }
        )
        remaining = rest
    if remaining:
        # The "and N more" items: never marked sent. Their claims are deleted (under our
        # ETag), so the next run finds no ledger row and sends them then.
        keys = [a.ledger_key(name) for a in remaining]
        state.ledger.release(keys)
        for key in keys:
            state.outcomes[key] = PLANNED


def _deliver(
    state: _Pass,
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


# --- self-health -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    id: str  # "uploads-failing" or "channel-failing/<channel>"
    title: str
    lines: tuple[str, ...]
    skip_channel: str | None = None  # a failing channel is not asked to report itself


def _failed_uploads(store: TableStore, now: datetime) -> list[dict[str, Any]]:
    return store.uploads.failed_uploads(now - UPLOAD_WINDOW, now)


def _problems(state: _Pass, store: TableStore, names: Iterable[str]) -> list[_Problem]:
    problems = []
    uploads = _failed_uploads(store, state.now)
    if uploads:
        lines = [
            f"{clean(u.get('name'), 200)}: {clean(u.get('status'))} "
            f"({clean(u.get('error_code') or 'no code')})"
            for u in uploads[:MAX_LISTED_UPLOADS]
        ]
        if len(uploads) > MAX_LISTED_UPLOADS:
            lines.append(f"and {len(uploads) - MAX_LISTED_UPLOADS} more")
        problems.append(
            _Problem(
                "uploads-failing",
                f"{len(uploads)} upload(s) failed analysis in the last 24 hours",
                tuple(lines),
            )
        )
    failing: dict[str, list[str]] = {}
    for key in state.outcomes:
        entry = state.ledger.entry(key)
        if (
            entry is not None
            and entry.status is LedgerStatus.FAILED
            and entry.attempts >= FAILING_ATTEMPTS
        ):
            failing.setdefault(key.channel, []).append(clean(entry.error or "no error text"))
    for name in names:
        if name in failing:
            errors = failing[name]
            problems.append(
                _Problem(
                    f"channel-failing/{name}",
                    f"channel {name} has failed {len(errors)} alert(s) "
                    f"{FAILING_ATTEMPTS} or more times",
                    (f"last error: {errors[-1]}",),
                    skip_channel=name,
                )
            )
    return problems


def _operator_message(problem: _Problem, now: datetime) -> RenderedMessage:
    subject = clean(f"{PRODUCT}: operator alert: {problem.title}", limit=250)
    text = "\n".join([subject, f"As of {format_time(now)}", "", *problem.lines]) + "\n"
    page = [
        "<!DOCTYPE html>",
        f'<html><head><meta charset="utf-8"><title>{html.escape(subject)}</title></head><body>',
        f"<h2>{html.escape(subject)}</h2>",
        f"<p>As of {html.escape(format_time(now))}</p>",
        "<ul>",
        *(f"<li>{html.escape(line)}</li>" for line in problem.lines),
        "</ul></body></html>",
    ]
    card = {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": [
            {"type": "TextBlock", "text": escape_markdown(subject), "wrap": True},
            *(
                {"type": "TextBlock", "text": escape_markdown(line), "wrap": True}
                for line in problem.lines
            ),
        ],
    }
    return RenderedMessage(subject, text, "\n".join(page) + "\n", card, item_count=1)


def _self_health(
    state: _Pass,
    store: TableStore,
    names: Sequence[str],
    channels: Mapping[str, Channel] | None,
    dry_run: bool,
) -> list[dict[str, Any]]:
    """One operator alert per problem, day and channel, claimed like any other alert."""
    out = []
    day = state.now.date().isoformat()
    for problem in _problems(state, store, names):
        targets = [c for c in names if c != problem.skip_channel]
        keys = {
            c: LedgerKey("", OPERATOR_ROW, f"{SELF_HEALTH}/{problem.id}", day, c) for c in targets
        }
        entries = state.ledger.read_entries(keys.values())
        statuses: dict[str, str] = {}
        pending = []
        for c, key in keys.items():
            if decide(entries.get(key), state.now, state.ledger.claim_timeout) is Decision.RETRY:
                pending.append(c)
            elif key in entries:
                statuses[c] = ALREADY_SENT
            else:
                pending.append(c)
        if dry_run or channels is None:
            statuses.update(dict.fromkeys(pending, PLANNED))
        else:
            won = state.ledger.claim((keys[c] for c in pending), state.run_id, state.now)
            message = _operator_message(problem, state.now)
            for c in pending:
                if keys[c] not in won:
                    statuses[c] = ALREADY_SENT
                    continue
                recipients = state.settings.alert_email_to if c in EMAIL_CHANNELS else ()
                outcome, provider_id, error = _deliver(
                    state, c, channels[c], message, recipients, [keys[c]]
                )
                statuses[c] = outcome
                state.messages.append(
                    {
                        "channel": c,
                        "recipients": list(recipients),
                        "subject": message.subject,
                        "items": 0,
                        "omitted": 0,
                        "provider_id": provider_id,
                        "error": error,
                        "self_health": problem.id,
                    }
                )
        out.append({"problem": problem.id, "summary": problem.title, "channels": statuses})
    return out
