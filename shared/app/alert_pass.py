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

import dataclasses
import logging
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from shared.alerts.message import REPEAT_NOTE_BYTES, TEAMS_MAX_BYTES, render_message
from shared.alerts.model import (
    DueAlert,
    LedgerStatus,
    TenantCertificate,
)
from shared.alerts.planner import MAX_UNCLEAR_SENDS, AlertPlanner, Decision
from shared.alerts.registration import Registration
from shared.alerts.rules import Rules
from shared.alerts.tenant_blocks import sort_items, tenant_state_id
from shared.app.announce import announce
from shared.app.delivery import (
    ADDRESSED_CHANNELS,
    ALREADY_SENT,
    DEFAULT_PASS_BUDGET,
    FAILED,
    PLANNED,
    SENT,
    UNKNOWN,
    PassState,
    deliver,
)
from shared.app.recheck import recheck_due
from shared.app.self_health import FAILING_ATTEMPTS, report_self_health
from shared.channels import Channel, build_channels
from shared.settings import Settings
from shared.storage.keys import iso
from shared.storage.ledger import Ledger
from shared.storage.store import TableStore

log = logging.getLogger("ca_watch.alerts")

SCHEMA = "ca-watch/alerts/v1"
# The size at which a message ends with "and N more". 28 KB is Teams' limit (DESIGN §4);
# mail relays and ACS accept megabytes, and cutting an email at 28 KB would leave a large
# backlog trickling out a dozen items per run.
# (Less room for the "possible repeat" note a retried message may get.)
CHANNEL_MAX_BYTES = {"teams": TEAMS_MAX_BYTES - REPEAT_NOTE_BYTES}
MAIL_MAX_BYTES = 1_000_000
NO_REGISTRATION = Registration(evidence=False, renewed=None, targets=())

__all__ = ["FAILING_ATTEMPTS", "any_failed", "run_alerts"]

_NOT_CONFIRMED = (LedgerStatus.FAILED, LedgerStatus.UNKNOWN)


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
    pass_budget: float = DEFAULT_PASS_BUDGET,
) -> dict[str, Any]:
    """One alert pass at ``now``; returns the ``ca-watch/alerts/v1`` document.

    ``dry_run`` (``alerts plan``) reports what would be sent and claims nothing.
    ``max_messages``: messages per channel and recipient group in one run (None: as many
    as it takes). Items cut from the last one by the size limit (28 KB on Teams) are
    released to the next run; with the default 1, a channel gets one message per run.
    ``pass_budget``: seconds for all sends; the channels run side by side, each send
    within its own deadline and what is left of the budget.
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
    # The index may lag the truth (a renewal recorded a moment ago): ask the truth.
    due, certificates = recheck_due(store, due, certificates, now)
    if channels is None and not dry_run:
        channels = build_channels(settings, clock=lambda: now)
    names = tuple(channels) if channels is not None else tuple(settings.alert_channels)
    ledger = Ledger(store.table("ledger"), planner.claim_timeout)
    entries = ledger.read_entries(a.ledger_key(c) for a in due for c in names)

    state = PassState(ledger, settings, now, run_id or uuid.uuid4().hex, max_messages, {}, [], [])
    state.pass_budget = pass_budget
    plan = planner.decide_all(now, due, entries, names)
    for item in plan.items:
        for name, decision in item.decisions.items():
            key = item.ledger_key(name)
            if decision is Decision.ALREADY_SENT:
                entry = entries.get(key)
                backing_off = entry is not None and entry.status in _NOT_CONFIRMED
                state.outcomes[key] = FAILED if backing_off else ALREADY_SENT
            else:
                state.outcomes[key] = PLANNED  # planned or retry: both mean "send now"

    if not dry_run:
        assert channels is not None
        _run_channels(state, channels, plan)
    notices = announce(state, store, names, channels, dry_run)
    health = report_self_health(state, store, names, channels, dry_run)
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
            "state": a.state or tenant_state_id([a]),
            "channels": {c: state.outcomes[a.ledger_key(c)] for c in names},
            "registration": (a.registration or NO_REGISTRATION).to_json(),
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
        "notices": notices,
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
    state: PassState,
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
            elif entry.status is LedgerStatus.UNKNOWN and entry.unclear_sends >= MAX_UNCLEAR_SENDS:
                continue  # unknown twice: never sent again
            elif entry.status in _NOT_CONFIRMED:
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
    a single group for Teams (the outbox, standing in for e-mail, is grouped as e-mail)."""
    if name not in ADDRESSED_CHANNELS:
        return [((), list(alerts))]
    groups: dict[tuple[str, ...], list[DueAlert]] = {}
    for alert in alerts:
        groups.setdefault(settings.recipients_for(alert.tenant_id), []).append(alert)
    return list(groups.items())


def _run_channels(state: PassState, channels: Mapping[str, Channel], plan: Any) -> None:
    """Every channel side by side, so one slow peer cannot starve the others. Each gets
    its own lists of messages and errors, joined in channel order afterwards."""
    work = []
    for name, channel in channels.items():
        if getattr(channel, "configuration_problem", None):
            continue  # unclaimed: sent once the setting is fixed; self-health says why
        if to_send := [item.alert for item in plan.to_send(name)]:
            work.append(
                (name, channel, to_send, dataclasses.replace(state, messages=[], errors=[]))
            )
    if len(work) == 1:
        _run_channel(*work[0])
    elif work:
        with ThreadPoolExecutor(len(work), thread_name_prefix="alert-channel") as pool:
            list(pool.map(lambda w: _run_channel(*w), work))
    for *_, own in work:
        state.messages.extend(own.messages)
        state.errors.extend(own.errors)


def _run_channel(name: str, channel: Channel, alerts: list[DueAlert], state: PassState) -> None:
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
    state: PassState,
    name: str,
    channel: Channel,
    recipients: tuple[str, ...],
    alerts: list[DueAlert],
) -> None:
    remaining = sort_items(alerts)
    sent_messages = 0
    while remaining and (state.max_messages is None or sent_messages < state.max_messages):
        if state.out_of_time():
            break  # the pass budget is spent: the rest is released to the next run
        limit = CHANNEL_MAX_BYTES.get(name, MAIL_MAX_BYTES)
        message = render_message(remaining, state.now, max_card_bytes=limit)
        listed, rest = remaining[: message.item_count], remaining[message.item_count :]
        if not listed:
            break  # cannot happen (values are clipped); never loop forever on it
        sent_messages += 1
        keys = [a.ledger_key(name) for a in listed]
        outcome, provider_id, error = deliver(state, name, channel, message, recipients, keys)
        for key in keys:
            state.outcomes[key] = FAILED if outcome == UNKNOWN else outcome
        state.messages.append(
            {
                "channel": name,
                "recipients": list(recipients),
                "subject": message.subject,
                "items": message.item_count,
                "omitted": message.omitted_count,
                "provider_id": provider_id,
                "error": error,
                "outcome": outcome,
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
