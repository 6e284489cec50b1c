"""Rules as data: the packaged default, the incident window edges, refusals naming the line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.alerts.rules import (
    DEFAULT_RULES_PATH,
    RulesError,
    clear_rules_cache,
    load_rules,
    milestone_when,
    parse_rules,
    time_left,
)

DEFAULT_TEXT = DEFAULT_RULES_PATH.read_text(encoding="utf-8")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RULES_FILE", raising=False)
    clear_rules_cache()
    yield
    clear_rules_cache()


def test_default_rules_hold_the_2020_incident_and_rotation():
    rules = load_rules()
    assert rules.stages == (14, 7, 3, 1, 0)
    assert rules.overdue_every_days == 7
    incident, legacy, sphere = rules.incidents
    assert incident.id == "azure-sphere-2020-07"
    # The retirements: a deadline for every tenant CA, a window no certificate is issued in.
    assert [d.at for d in (*legacy.deadlines, *sphere.deadlines)] == [
        at("2027-09-27T00:00:00Z"),
        at("2031-07-31T00:00:00Z"),
    ]
    assert legacy.applies_to == sphere.applies_to == ("affected", "signature-mismatch", "ok")
    assert incident.window_start == at("2020-06-16T21:00:00Z")
    assert incident.window_end == at("2020-07-28T00:15:00Z")
    assert incident.window_start.tzinfo is UTC
    assert incident.applies_to == ("affected",)
    assert incident.reasons and all(isinstance(r, str) for r in incident.reasons)
    assert any("azsphere ca list" in a for a in incident.actions)
    assert any("proof of possession" in a for a in incident.actions)
    renewal, activation = incident.deadlines
    assert renewal.id == "azure-sphere-2020-07/renewal-available"
    assert renewal.at == at("2020-08-05T00:00:00Z") and renewal.overdue is False
    assert activation.id == "azure-sphere-2020-07/activation"
    assert activation.at == at("2020-08-18T00:00:00Z")
    assert activation.overdue is True and activation.overdue_every_days == 7
    assert all(d.title and d.message for d in incident.deadlines)

    rotation = rules.rotation
    assert rotation is not None
    offsets = {d.name: (d.offset_from_not_after, d.overdue) for d in rotation.deadlines}
    assert offsets == {
        "renewal-appears": (timedelta(days=-90), False),
        "register-before": (timedelta(days=-45), True),
        "expiry": (timedelta(0), True),
    }
    not_after = at("2021-04-27T10:42:26Z")
    assert rotation.deadlines[1].due_for(not_after) == at("2021-03-13T10:42:26Z")
    assert rules.deadline("rotation/expiry") is rotation.deadlines[2]


def test_default_rules_tell_action_deadlines_from_milestones():
    rules = load_rules()
    assert rules.rotation is not None
    kinds = {
        d.id: (d.action, d.what_to_do)
        for group in (*rules.incidents, rules.rotation)
        for d in group.deadlines
    }
    assert kinds == {
        # Microsoft's dates: information, nothing for the operator to do by then
        "azure-sphere-2020-07/renewal-available": (False, ""),
        "rotation/renewal-appears": (False, ""),
        # the retirements of Azure Sphere (Legacy) and Azure Sphere: information, as data
        "azure-sphere-legacy-retirement/legacy-retires": (False, ""),
        "azure-sphere-retirement/service-retires": (False, ""),
        # the operator's own deadlines, and what to do by each
        "azure-sphere-2020-07/activation": (
            True,
            "Register the renewed tenant CA before it activates",
        ),
        "rotation/register-before": (True, "Register the renewed tenant CA"),
        "rotation/expiry": (True, "Replace the tenant CA before it expires"),
    }
    # No step says alerts stop once the renewal is on record: they stop once every target
    # shows it verified.
    steps = [a for group in (*rules.incidents, rules.rotation) for a in group.actions]
    assert not any("once it is on record" in step for step in steps)
    assert sum("once every target shows it verified" in step for step in steps) == 2


@pytest.mark.parametrize(
    ("due", "now", "left"),
    [
        ("2020-08-18T00:00:00Z", "2020-08-04T09:00:00Z", "13 days left"),
        ("2020-08-05T00:00:00Z", "2020-08-04T09:00:00Z", "15 hours left"),
        ("2020-08-18T00:00:00Z", "2020-08-18T09:00:00Z", "overdue by 9 hours"),
        ("2020-08-18T00:00:00Z", "2020-08-21T00:00:00Z", "overdue by 3 days"),
        ("2020-08-18T00:00:00Z", "2022-06-11T00:00:00Z", "overdue since 2020-08-18"),
    ],
)
def test_time_left_is_never_rounded_up(due: str, now: str, left: str) -> None:
    assert time_left(at(due), at(now)) == left
    assert milestone_when(at(due), at(now)) == (
        f"{'since' if at(now) >= at(due) else 'from'} {due[:10]}"
    )


def test_a_todo_must_be_text():
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8").replace(
        'todo = "Replace the tenant CA before it expires"', "todo = 3"
    )
    with pytest.raises(RulesError, match="todo must be a non-empty string"):
        parse_rules(text, "rules.toml")


def test_default_rules_are_cached():
    assert load_rules() is load_rules()


@pytest.mark.parametrize(
    ("not_before", "inside"),
    [
        ("2020-06-16T20:59:59Z", False),
        ("2020-06-16T21:00:00Z", True),
        ("2020-07-01T00:00:00Z", True),
        ("2020-07-28T00:15:00Z", True),
        ("2020-07-28T00:15:01Z", False),
        ("2020-06-16T23:00:00+02:00", True),  # 21:00 UTC written in another zone
        ("2020-06-16T22:59:59+02:00", False),
    ],
)
def test_window_edges_are_inclusive_to_the_second(not_before: str, inside: bool):
    incident = load_rules().incidents[0]
    assert incident.contains(at(not_before)) is inside


def test_rules_file_setting_replaces_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    custom = tmp_path / "next-incident.toml"
    custom.write_text(
        DEFAULT_TEXT.replace('id = "azure-sphere-2020-07"', 'id = "next-incident"').replace(
            "stages = [14, 7, 3, 1, 0]", "stages = [30, 1]"
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("RULES_FILE", str(custom))
    clear_rules_cache()
    rules = load_rules()
    assert rules.stages == (30, 1)
    assert rules.incidents[0].id == "next-incident"
    assert rules.source == str(custom)
    assert load_rules(DEFAULT_RULES_PATH).incidents[0].id == "azure-sphere-2020-07"


def test_stages_are_sorted_most_distant_first():
    rules = parse_rules(DEFAULT_TEXT.replace("stages = [14, 7, 3, 1, 0]", "stages = [0, 3, 30]"))
    assert rules.stages == (30, 3, 0)


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the ``nth`` line containing ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(hits) >= nth, f"{needle!r} is not in the text {nth} times"
    return hits[nth - 1]


def _refused(text: str, tmp_path: Path) -> RulesError:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(path) in str(info.value)
    return info.value


# Each case: an edit of the default file, the text on the line the error must name, and a
# word the message must contain.
BAD_FILES: dict[str, tuple[tuple[str, str], tuple[str, int], str]] = {
    "toml-syntax": (
        ("at = 2020-08-05T00:00:00Z", "at = 2020-08-05T00:00:00Z ]"),
        ("at = 2020-08-05", 1),
        "Expected",
    ),
    # A missing key names the table that lacks it.
    "missing-key": (
        ('title = "Renewed tenant CA activates"\n', ""),
        ("[[incident.deadline]]", 2),
        "'title'",
    ),
    "wrong-type": (
        ("overdue_every_days = 7\n\n#", 'overdue_every_days = "weekly"\n\n#'),
        ("overdue_every_days", 1),
        "whole number",
    ),
    "window-reversed": (
        ("window_start = 2020-06-16T21:00:00Z", "window_start = 2020-07-29T00:00:00Z"),
        ("window_start", 1),
        "after",
    ),
    "negative-stage": (
        ("stages = [14, 7, 3, 1, 0]", "stages = [14, 7, -3]"),
        ("stages =", 1),
        "negative",
    ),
    "duplicate-stage": (("stages = [14, 7, 3, 1, 0]", "stages = [7, 7]"), ("stages =", 1), "twice"),
    "unknown-key": (
        (
            "overdue = false\n\n[[incident.deadline]]",
            "overdue = false\nreapeat = 3\n\n[[incident.deadline]]",
        ),
        ("reapeat", 1),
        "unknown key",
    ),
    "unknown-top-level": (
        ("stages = [", "stage_list = [1]\nstages = ["),
        ("stage_list", 1),
        "unknown key",
    ),
    "naive-datetime": (
        ("window_end = 2020-07-28T00:15:00Z", "window_end = 2020-07-28T00:15:00"),
        ("window_end", 1),
        "time zone",
    ),
    "date-only": (
        ("at = 2020-08-18T00:00:00Z", "at = 2020-08-18"),
        ("at = 2020-08-18", 1),
        "time zone",
    ),
    # The second use of an id is the error.
    "duplicate-deadline": (
        ('id = "register-before"', 'id = "renewal-appears"'),
        ('id = "renewal-appears"', 2),
        "duplicate",
    ),
    "both-at-and-offset": (
        ("days_before_not_after = 0", "days_before_not_after = 0\nat = 2021-01-01T00:00:00Z"),
        ("[[rotation.deadline]]", 3),
        "exactly one",
    ),
    "zero-overdue-every": (
        ("overdue_every_days = 7\n\n#", "overdue_every_days = 0\n\n#"),
        ("overdue_every_days = 0", 1),
        ">= 1",
    ),
    "unknown-verdict": (
        ('applies_to = ["affected"]', 'applies_to = ["afected"]'),
        ("applies_to", 1),
        "verdict",
    ),
    "reserved-incident-id": (
        ('id = "azure-sphere-2020-07"', 'id = "rotation"'),
        ('id = "rotation"', 1),
        "reserved",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_rules_file_is_refused_naming_the_line(case: str, tmp_path: Path):
    (old, new), (needle, nth), word = BAD_FILES[case]
    assert old in DEFAULT_TEXT, "the test's edit no longer applies to the default file"
    text = DEFAULT_TEXT.replace(old, new, 1)
    error = _refused(text, tmp_path)
    expected_line = _line_of(text, needle, nth)
    assert error.line == expected_line, str(error)
    assert f":{expected_line}:" in str(error)
    assert word in str(error)


def test_a_missing_rules_file_is_refused(tmp_path: Path):
    with pytest.raises(RulesError, match="not found"):
        load_rules(tmp_path / "nope.toml")


def test_syntax_error_at_end_of_file_names_a_line(tmp_path: Path):
    error = _refused(DEFAULT_TEXT + "\n[rotation\n", tmp_path)
    assert error.line is not None and error.line >= DEFAULT_TEXT.count("\n")
