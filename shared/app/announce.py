"""Announcing what closed or silenced a tenant CA (DESIGN §4 "Every resolution is
announced"): each pending notice once per channel, claimed in the ledger like any alert
(claim, send, mark), then let go once every channel has it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.alerts.model import LedgerKey, LedgerStatus
from shared.alerts.notice_message import Notice, render_notices
from shared.alerts.planner import Decision, decide
from shared.app.delivery import (
    ADDRESSED_CHANNELS,
    ALREADY_SENT,
    FAILED,
    PLANNED,
    SENT,
    UNKNOWN,
    PassState,
    deliver,
)
from shared.channels import Channel
from shared.storage.store import TableStore

NOTICE_DEADLINE = "notice"  # the deadline part of a notice's ledger key


def notice_ledger_key(notice: Notice, channel: str) -> LedgerKey:
    deadline = f"{NOTICE_DEADLINE}/{notice.kind}"
    return LedgerKey(notice.tenant_id, notice.certificate, deadline, notice.ref, channel)


def announce(
    state: PassState,
    store: TableStore,
    names: Sequence[str],
    channels: Mapping[str, Channel] | None,
    dry_run: bool,
) -> list[dict[str, Any]]:
    """Send the pending notices; one entry per notice with its outcome per channel."""
    notices = store.notices.pending()
    if not notices:
        return []
    keys = {(id(n), c): notice_ledger_key(n, c) for n in notices for c in names}
    entries = state.ledger.read_entries(keys.values())
    outcome: dict[tuple[int, str], str] = {}
    owed: dict[str, list[Notice]] = {}
    for notice in notices:
        for c in names:
            entry = entries.get(keys[(id(notice), c)])
            if entry is not None and entry.status is LedgerStatus.SENT:
                outcome[(id(notice), c)] = SENT
            elif entry is None or decide(entry, state.now, state.ledger.claim_timeout) is (
                Decision.RETRY
            ):
                owed.setdefault(c, []).append(notice)
                outcome[(id(notice), c)] = PLANNED
            else:
                outcome[(id(notice), c)] = ALREADY_SENT  # another run holds it, or backing off
    if not dry_run and channels is not None:
        for c, pending in owed.items():
            if getattr(channels[c], "configuration_problem", None):
                continue  # unclaimed: sent once the setting is fixed; self-health says why
            _send(state, c, channels[c], pending, keys, outcome)
    report = []
    for notice in notices:
        per_channel = {c: outcome[(id(notice), c)] for c in names}
        if not dry_run and all(o == SENT for o in per_channel.values()):
            store.notices.done(notice)
        report.append(
            {
                "tenant_id": notice.tenant_id,
                "certificate": notice.certificate,
                "kind": notice.kind,
                "renewed": notice.renewed,
                "basis": notice.basis,
                "evidence": list(notice.evidence),
                "by": notice.by,
                "channels": per_channel,
            }
        )
    return report


def _send(
    state: PassState,
    name: str,
    channel: Channel,
    notices: list[Notice],
    keys: Mapping[tuple[int, str], LedgerKey],
    outcome: dict[tuple[int, str], str],
) -> None:
    won = state.ledger.claim((keys[(id(n), name)] for n in notices), state.run_id, state.now)
    mine = [n for n in notices if keys[(id(n), name)] in won]
    for n in notices:
        if n not in mine:
            outcome[(id(n), name)] = ALREADY_SENT
    groups: dict[tuple[str, ...], list[Notice]] = {}
    for n in mine:
        addressed = name in ADDRESSED_CHANNELS
        recipients = state.settings.recipients_for(n.tenant_id) if addressed else ()
        groups.setdefault(recipients, []).append(n)
    for recipients, group in groups.items():
        if state.out_of_time():
            break  # claimed but not sent: the claims go stale and a later run sends
        message = render_notices(group, state.now)
        group_keys = [keys[(id(n), name)] for n in group]
        result, provider_id, error = deliver(state, name, channel, message, recipients, group_keys)
        for n in group:
            outcome[(id(n), name)] = FAILED if result == UNKNOWN else result
        state.messages.append(
            {
                "channel": name,
                "recipients": list(recipients),
                "subject": message.subject,
                "items": len(group),
                "omitted": 0,
                "provider_id": provider_id,
                "error": error,
                "outcome": result,
                "notices": len(group),
            }
        )
