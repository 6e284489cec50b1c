"""Golden alert timeline: fixed tenant CAs and the default rules, one pass a day for 78 days;
what is due, each stage key, when each certificate is next looked at, and three rendered
messages (subject, text, HTML, card) must equal the committed JSON. One comparison pins the
planner's stage boundaries, overdue reminders, acknowledgement and replacement, the rules'
texts and the renderer's wording, so mutants of any of them are caught (issue 16).
How to regenerate: tests/golden_alerts.py.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from golden_alerts import EXPECTED, FIRST_DAY, certificates, timeline

from shared.alerts.model import LedgerEntry, LedgerKey, LedgerStatus
from shared.alerts.planner import AlertPlanner, Decision, decide
from shared.alerts.rules import DEFAULT_RULES_PATH, load_rules


def test_the_golden_alert_timeline_matches_the_committed_json() -> None:
    expected = json.loads(EXPECTED.read_text())["days"]
    actual = json.loads(json.dumps(timeline()))["days"]
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got == want, got["now"]


def test_the_golden_timeline_meets_every_stage_and_a_rendered_overdue_message() -> None:
    """The timeline stays broad enough to mean something if it is ever regenerated."""
    days = json.loads(EXPECTED.read_text())["days"]
    stages = {alert["stage"] for day in days for alert in day["due"]}
    assert stages == {"14d", "7d", "3d", "1d", "0d", "overdue"}
    rendered = [day["message"] for day in days if "message" in day]
    assert len(rendered) == 3
    assert any("overdue" in message["text"].lower() for message in rendered)


# --- planner: survivors of the golden timeline, killed one by one ----------------------

_NOW = datetime(2020, 8, 4, 9, tzinfo=UTC)
_KEY = LedgerKey("t", "c", "d", "14d", "teams")


@pytest.mark.parametrize(
    ("status", "unclear", "expected"),
    [
        # A stale claim counts as one more unclear send: the second one ends the retries.
        (LedgerStatus.CLAIMED, 0, Decision.RETRY),
        (LedgerStatus.CLAIMED, 1, Decision.ALREADY_SENT),
        # An unclear send is retried once; after two, never again. A failure is retried.
        (LedgerStatus.UNKNOWN, 1, Decision.RETRY),
        (LedgerStatus.UNKNOWN, 2, Decision.ALREADY_SENT),
        (LedgerStatus.FAILED, 2, Decision.RETRY),
    ],
)
def test_decide_retries_at_most_up_to_two_unclear_sends(
    status: LedgerStatus, unclear: int, expected: Decision
) -> None:
    entry = LedgerEntry(
        _KEY, status, attempts=1, claimed_at=_NOW - timedelta(hours=1), unclear_sends=unclear
    )
    assert decide(entry, _NOW) is expected


def test_a_channel_the_plan_was_not_made_for_has_nothing_to_send() -> None:
    days = json.loads(EXPECTED.read_text())["days"]
    assert days[0]["due"], "the first golden day has due items"
    planner = AlertPlanner(load_rules(DEFAULT_RULES_PATH))
    plan = planner.plan(FIRST_DAY, certificates(), {}, ["teams"])
    assert plan.to_send("teams") and plan.to_send("email") == []


def test_overdue_stage_keys_are_utc_dates_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planner = AlertPlanner(load_rules(DEFAULT_RULES_PATH))
    due = datetime(2020, 8, 18, tzinfo=UTC)
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        stage = planner.current_stage(due, due + timedelta(days=1, hours=1), True, timedelta(7))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert stage == ("overdue", "overdue@2020-08-19")
