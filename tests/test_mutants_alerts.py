"""Golden alert timeline: fixed tenant CAs and the default rules, one pass a day for 78 days;
what is due, each stage key, when each certificate is next looked at, and three rendered
messages (subject, text, HTML, card) must equal the committed JSON. One comparison pins the
planner's stage boundaries, overdue reminders, acknowledgement and replacement, the rules'
texts and the renderer's wording, so mutants of any of them are caught (issue 16).
How to regenerate: tests/golden_alerts.py.
"""

from __future__ import annotations

import json

from golden_alerts import EXPECTED, timeline


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
