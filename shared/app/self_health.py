"""Self-health: one operator alert per problem, day and channel (uploads that failed
analysis, a channel that keeps failing), claimed in the ledger like any other alert.

Every value an uploader, a peer or ARM chose (upload and target names, error texts) goes
through ``cert_text``, the deadline alerts' helper: cleaned and defanged, so no channel
shows it as a live link or address (issue 23 §4)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.alerts.model import LedgerKey, LedgerStatus
from shared.alerts.operator_message import render_operator_message
from shared.alerts.planner import MAX_UNCLEAR_SENDS, Decision, decide
from shared.alerts.text_safety import cert_text, clean
from shared.app.delivery import (
    ADDRESSED_CHANNELS,
    ALREADY_SENT,
    EMAIL_CHANNELS,
    FAILED,
    PLANNED,
    UNKNOWN,
    PassState,
    deliver,
)
from shared.channels import Channel
from shared.readers.iot_central import token_expiry
from shared.storage.registrations import TARGET_FAILURE_KIND
from shared.storage.store import TableStore
from shared.storage.uploads import IGNORED_LISTING_KIND

if TYPE_CHECKING:
    from shared.settings import Settings

SELF_HEALTH = "self-health"
OPERATOR_ROW = "operator"  # RowKey of self-health ledger rows: they have no certificate
FAILING_ATTEMPTS = 3
UPLOAD_WINDOW = timedelta(hours=24)
MAX_LISTED_UPLOADS = 20


@dataclass(frozen=True)
class _Problem:
    id: str  # "uploads-failing" or "channel-failing/<channel>"
    title: str
    lines: tuple[str, ...]
    skip_channel: str | None = None  # a failing channel is not asked to report itself


def recipient_warnings(settings: Settings, names: Iterable[str]) -> dict[str, str]:
    """channel -> what is wrong, for each addressed channel that has no recipient for some
    tenant: the settings refuse an e-mail channel with no address at all, but with
    ALERT_EMAIL_ROUTES alone the tenants not routed have none; the outbox, standing in for
    e-mail, writes an empty To:."""
    if settings.alert_email_to:
        return {}
    routed = bool(settings.alert_email_routes)
    out = {}
    for name in names:
        if name in EMAIL_CHANNELS and routed:
            out[name] = (
                f"channel {name} has no recipient for tenants not in ALERT_EMAIL_ROUTES: "
                "their alerts fail until ALERT_EMAIL_TO names at least one address"
            )
        elif name in ADDRESSED_CHANNELS and name not in EMAIL_CHANNELS:
            out[name] = (
                f"channel {name} has no recipient: messages are written with an empty To: "
                "(set ALERT_EMAIL_TO)"
            )
    return out


def _failed_uploads(store: TableStore, now: datetime) -> list[dict[str, Any]]:
    return store.uploads.failed_uploads(now - UPLOAD_WINDOW, now)


def _problems(
    state: PassState,
    store: TableStore,
    names: Iterable[str],
    channels: Mapping[str, Channel] | None,
) -> list[_Problem]:
    problems = []
    failures = _failed_uploads(store, state.now)
    problems.extend(_expiring_tokens(state))
    ignored = [row for row in failures if row.get("kind") == IGNORED_LISTING_KIND]
    uploads = [
        row
        for row in failures
        if row.get("kind") not in (TARGET_FAILURE_KIND, IGNORED_LISTING_KIND)
    ]
    if ignored:
        problems.append(
            _Problem(
                "listings-ignored",
                f"{len(ignored)} uploaded listing(s) changed nothing in the last 24 hours: "
                "live-target (the app reads that target live; uploads never override it) or "
                "stale-listing (older than the snapshot on record)",
                tuple(
                    f"{cert_text(row.get('name'), 200)}: {clean(row.get('error_code'))} "
                    f"({cert_text(row.get('target'), 300)})"
                    for row in ignored[:MAX_LISTED_UPLOADS]
                ),
            )
        )
    targets = {row.get("target"): row for row in failures if row.get("kind") == TARGET_FAILURE_KIND}
    if targets:
        problems.append(
            _Problem(
                "registration-targets-failing",
                f"{len(targets)} registration target(s) could not be read in the last 24 hours; "
                "their last good listing stays in force",
                tuple(
                    f"{cert_text(row.get('name'), 200)} ({cert_text(row.get('target'), 300)}): "
                    f"{clean(row.get('error_code'))} "
                    f"({cert_text(row.get('error_message') or '', 300)})"
                    for row in list(targets.values())[:MAX_LISTED_UPLOADS]
                ),
            )
        )
    if uploads:
        lines = [
            f"{cert_text(u.get('name'), 200)}: {clean(u.get('status'))} "
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
        if entry is not None and (
            (entry.status is LedgerStatus.FAILED and entry.attempts >= FAILING_ATTEMPTS)
            # Sent twice without an answer: not tried again, so someone should look.
            or (entry.status is LedgerStatus.UNKNOWN and entry.unclear_sends >= MAX_UNCLEAR_SENDS)
        ):
            failing.setdefault(key.channel, []).append(cert_text(entry.error or "no error text"))
    for name, channel in (channels or {}).items():
        if problem := getattr(channel, "configuration_problem", None):
            # Not a failed send: the alerts wait unclaimed until the setting is fixed.
            problems.append(
                _Problem(
                    f"channel-config/{name}",
                    f"channel {name} is not configured: its alerts wait",
                    (cert_text(problem, 500),),
                    skip_channel=name,
                )
            )
    for name, warning in recipient_warnings(state.settings, names).items():
        if name in EMAIL_CHANNELS:  # the outbox's empty To: is said by `alerts run` alone
            problems.append(
                _Problem(f"channel-recipients/{name}", warning, (warning,), skip_channel=name)
            )
    for name in names:
        if name in failing:
            errors = failing[name]
            problems.append(
                _Problem(
                    f"channel-failing/{name}",
                    f"channel {name} has failed {len(errors)} alert(s) "
                    f"{FAILING_ATTEMPTS} or more times or could not confirm them twice",
                    (f"last error: {errors[-1]}",),
                    skip_channel=name,
                )
            )
    return problems


TOKEN_NOTICE = timedelta(days=30)  # an IoT Central API token lives about a year


def _expiring_tokens(state: PassState) -> list[_Problem]:
    """IoT Central API tokens that end within TOKEN_NOTICE (or have ended): when one ends,
    the live read of that app fails and its evidence goes stale. Reminded daily, as a
    deadline is."""
    problems = []
    for app, token in sorted(state.settings.iot_central_api_tokens.items()):
        expiry = token_expiry(token)
        if expiry is None or expiry - state.now > TOKEN_NOTICE:
            continue
        left = expiry - state.now
        when = "has expired" if left.total_seconds() <= 0 else f"expires in {left.days} day(s)"
        problems.append(
            _Problem(
                f"iot-central-token/{app}",
                f"the IoT Central API token for {cert_text(app, 80)} {when} "
                f"({expiry:%Y-%m-%d %H:%M} UTC)",
                (
                    "Create a new one (az iot central api-token create --app-id "
                    f"{cert_text(app, 80)} --token-id ca-watch-<date> --role viewer) and put it "
                    "in IOT_CENTRAL_API_TOKENS (its Key Vault secret), or make the app's "
                    "identity an app user (docs/readers.md) and drop the token.",
                ),
            )
        )
    return problems


def report_self_health(
    state: PassState,
    store: TableStore,
    names: Sequence[str],
    channels: Mapping[str, Channel] | None,
    dry_run: bool,
) -> list[dict[str, Any]]:
    """One operator alert per problem, day and channel, claimed like any other alert."""
    out = []
    day = state.now.date().isoformat()
    for problem in _problems(state, store, names, channels):
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
            message = render_operator_message(problem.title, problem.lines, state.now)
            for c in pending:
                if keys[c] not in won:
                    statuses[c] = ALREADY_SENT
                    continue
                recipients = state.settings.alert_email_to if c in ADDRESSED_CHANNELS else ()
                outcome, provider_id, error = deliver(
                    state, c, channels[c], message, recipients, [keys[c]]
                )
                statuses[c] = FAILED if outcome == UNKNOWN else outcome
                state.messages.append(
                    {
                        "channel": c,
                        "recipients": list(recipients),
                        "subject": message.subject,
                        "items": 0,
                        "omitted": 0,
                        "provider_id": provider_id,
                        "error": error,
                        "outcome": outcome,
                        "self_health": problem.id,
                    }
                )
        out.append({"problem": problem.id, "summary": problem.title, "channels": statuses})
    return out
