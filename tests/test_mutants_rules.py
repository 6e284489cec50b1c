"""Golden rules errors: each broken edit of the default rules file, and each small broken
file, is refused with exactly the committed message (file, line, key path and problem): what
an operator sees when their rules.toml is wrong. Keys left out take their documented
defaults, and a file that cannot be read is named. Kills the families of rules and
rules_toml mutants that drop the key path from an error, misplace its line or change a
default (issue 16). Review the JSON diff, then regenerate on purpose only:
    .venv/bin/python tests/test_mutants_rules.py
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for test_rules when run as a script
from test_rules import BAD_FILES, DEFAULT_TEXT

from shared.alerts.rules import RulesError, load_rules, milestone_when, parse_rules, time_left

EXPECTED = Path(__file__).parent / "data" / "golden" / "expected-rules-errors.json"

MORE_EDITS: dict[str, tuple[str, str]] = {
    "deadline-title-type": ('title = "Renewed tenant CA activates"', "title = 3"),
    # "= 3 #" turns the rest of the line into a comment: the value is the only change.
    "deadline-message-type": ('message = "The tenant CA', 'message = 3 # "The tenant CA'),
    "deadline-overdue-type": ("overdue = false", 'overdue = "no"'),
    "deadline-id-missing": ('id = "renewal-available"\n', ""),
    "deadline-id-slash": ('id = "expiry"', 'id = "expiry/final"'),
    "deadline-id-newline": ('id = "expiry"', 'id = "expiry\\n"'),
    "deadline-every-zero": (
        "overdue_every_days = 7\n\n# --- Routine",
        "overdue_every_days = 0\n\n#",
    ),
    "deadline-every-one": (
        "overdue_every_days = 7\n\n# --- Routine",
        "overdue_every_days = 1\n\n#",
    ),
    "offset-negative": ("days_before_not_after = 45", "days_before_not_after = -1"),
    "incident-title-type": ('title = "Azure Sphere', 'title = 3 # "Azure Sphere'),
    "incident-id-type": ('id = "azure-sphere-2020-07"', "id = 2020"),
    "incident-id-spaces": ('id = "azure-sphere-2020-07"', 'id = "Azure Sphere 2020"'),
    "incident-reasons-type": ("reasons = [", "reasons = [3,"),
    "incident-reasons-blank": ("reasons = [", 'reasons = ["  ",'),
    "incident-actions-type": ('actions = [\n  "Between', 'actions = [3,\n  "Between'),
    "applies-to-type": ('applies_to = ["affected"]', "applies_to = 3"),
    "incident-id-missing": ('id = "azure-sphere-2020-07"\n', ""),
    "window-equal": ("window_start = 2020-06-16T21:00:00Z", "window_start = 2020-07-28T00:15:00Z"),
    "window-start-string": (
        "window_start = 2020-06-16T21:00:00Z",
        'window_start = "2020-06-16T21:00:00Z"',
    ),
    "rotation-title-type": ('title = "Routine tenant CA rotation"', "title = 3"),
    "rotation-actions-type": ('actions = [\n  "Run', 'actions = [3,\n  "Run'),
    "rotation-unknown-key": ("[rotation]\n", '[rotation]\nowner = "ops"\n'),
    # Quoted keys are keys too: the error names their line, not their table's.
    "quoted-key": ("overdue = false\n", '"overdue" = "no"\n'),
    "single-quoted-key": ('title = "Renewed tenant CA activates"', "'title' = 3"),
    "unknown-key-capital": ("overdue = false\n", "overdue = false\nXmas = 3\n"),
    "syntax-at-end": ("overdue = true\n", "overdue = true\nbroken = ["),
}

_INCIDENT = """
[[incident]]
id = "next"
title = "Next incident"
window_start = 2021-01-01T00:00:00Z
window_end = 2021-01-31T00:00:00Z
reasons = ["Issued in the window."]
actions = ["Replace it."]
"""
_INLINE_DEADLINE = '{ id = "expiry", title = "T", message = "M", days_before_not_after = 0'

# Whole small files, for what an edit of the default file cannot show.
TEXTS: dict[str, str] = {
    # Syntax errors at the end of the file name its last line.
    "syntax-end-one-line": "stages = [",
    "syntax-end-newline": "stages = [7,\n",
    "syntax-end-second-line": "stages = [7,\n3,",
    "syntax-end-string": 'stages = [7]\n[rotation]\ntitle = """\nabc',
    "stages-empty": "stages = []\n",
    "stages-not-a-list": "stages = 7\n",
    "stages-string-item": 'stages = [7, "3"]\n',
    "incident-not-tables": "stages = [7]\nincident = 3\n",
    "incident-deadline-not-tables": _INCIDENT + "deadline = 3\n",
    "duplicate-incident": _INCIDENT + _INCIDENT,
    "rotation-not-a-table": "stages = [7]\nrotation = 3\n",
    "rotation-array": '[[rotation]]\ntitle = "R"\n',
    "rotation-missing-title": "[rotation]\n\n[[rotation.deadline]]\n" + 'id = "x"\n',
    "rotation-deadline-single-brackets": (
        '[rotation]\ntitle = "R"\n\n[rotation.deadline]\nid = "expiry"\n'
    ),
    # Deadlines written as inline tables: errors name the line of the array.
    "inline-deadline-both": (
        '[rotation]\ntitle = "R"\ndeadline = [\n'
        f"  {_INLINE_DEADLINE}, at = 2021-01-01T00:00:00Z }},\n]\n"
    ),
    "inline-deadline-title-type": (
        f'[rotation]\ntitle = "R"\ndeadline = [{_INLINE_DEADLINE}, title = 3 }}]\n'.replace(
            'title = "T", ', ""
        )
    ),
    # A multi-line string holding "key = value" lines: they are text, not keys.
    "multiline-basic-string": (
        '[rotation]\ntitle = "R"\n\n[[rotation.deadline]]\nid = "x"\n'
        'message = """\nIt expires.\ntitle = see the runbook\n"""\n'
        "days_before_not_after = 0\ntitle = 3\n"
    ),
    "multiline-literal-string": (
        '[rotation]\ntitle = "R"\n\n[[rotation.deadline]]\nid = "x"\n'
        "message = '''\nIt expires.\ntitle = see the runbook\n'''\n"
        "days_before_not_after = 0\ntitle = 3\n"
    ),
}


def _edits() -> dict[str, tuple[str, str]]:
    return {**{name: case[0] for name, case in BAD_FILES.items()}, **MORE_EDITS}


def _outcome(old: str, new: str) -> str:
    assert old in DEFAULT_TEXT, old
    try:
        parse_rules(DEFAULT_TEXT.replace(old, new, 1), "rules.toml")
    except RulesError as error:
        return str(error)
    return "accepted"


def _text_outcome(text: str) -> str:
    try:
        parse_rules(text, "rules.toml")
    except RulesError as error:
        return str(error)
    return "accepted"


def outcomes() -> dict[str, str]:
    edits = {name: _outcome(old, new) for name, (old, new) in _edits().items()}
    texts = {f"text:{name}": _text_outcome(text) for name, text in TEXTS.items()}
    return dict(sorted({**edits, **texts}.items()))


@pytest.mark.parametrize("name", sorted(_edits()))
def test_each_broken_rules_file_gets_its_committed_message(name: str) -> None:
    old, new = _edits()[name]
    assert _outcome(old, new) == json.loads(EXPECTED.read_text())[name]


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_each_broken_small_rules_file_gets_its_committed_message(name: str) -> None:
    assert _text_outcome(TEXTS[name]) == json.loads(EXPECTED.read_text())[f"text:{name}"]


def test_left_out_keys_take_their_documented_defaults() -> None:
    text = (
        DEFAULT_TEXT.replace('applies_to = ["affected"]\n', "", 1)
        .replace("overdue = false\n", "", 1)
        .replace("overdue = true\noverdue_every_days = 7\n", "", 1)
        .replace("stages = [14, 7, 3, 1, 0]\n", "", 1)
        .replace("overdue_every_days = 7\n\n#", "#", 1)
    )
    rules = parse_rules(text, "rules.toml")
    assert rules.stages == (14, 7, 3, 1, 0)
    assert rules.overdue_every_days == 7
    incident = rules.incidents[0]
    assert incident.applies_to == ("affected",)
    available, activation = incident.deadlines
    assert available.overdue is False
    assert activation.overdue is False
    assert activation.overdue_every_days == 7
    assert rules.rotation is not None
    assert [d.overdue_every_days for d in rules.rotation.deadlines] == [7, 7, 7]


def test_a_deadline_keeps_its_own_reminder_cadence_and_others_inherit_the_file_s() -> None:
    text = DEFAULT_TEXT.replace("overdue_every_days = 7\n\n#", "overdue_every_days = 3\n\n#", 1)
    text = text.replace(
        "overdue = true\noverdue_every_days = 7", "overdue = true\noverdue_every_days = 1", 1
    )
    rules = parse_rules(text, "rules.toml")
    assert rules.overdue_every_days == 3
    assert rules.incidents[0].deadlines[1].overdue_every_days == 1
    assert rules.rotation is not None
    assert [d.overdue_every_days for d in rules.rotation.deadlines] == [3, 3, 3]


def test_what_the_default_rules_file_says_is_what_the_rules_hold() -> None:
    rules = parse_rules(DEFAULT_TEXT, "rules.toml")
    incident = rules.incidents[0]
    assert incident.title.startswith("Azure Sphere tenant CA certificates issued 2020-06-16")
    assert [d.offset_from_not_after for d in incident.deadlines] == [None, None]
    assert rules.rotation is not None and rules.rotation.id == "rotation"
    assert rules.rotation.title == "Routine tenant CA rotation"
    assert [d.at for d in rules.rotation.deadlines] == [None, None, None]


def test_optional_parts_may_be_left_out_or_written_short() -> None:
    text = DEFAULT_TEXT.replace('applies_to = ["affected"]', 'applies_to = ["ok", "affected"]')
    assert parse_rules(text).incidents[0].applies_to == ("ok", "affected")
    # [rotation] without actions, or with a single action written as a string.
    start, end = DEFAULT_TEXT.index('actions = [\n  "Run'), DEFAULT_TEXT.index("[[rotation.")
    rotation = parse_rules(DEFAULT_TEXT[:start] + DEFAULT_TEXT[end:]).rotation
    assert rotation is not None and rotation.actions == ()
    one = DEFAULT_TEXT[:start] + 'actions = "Register it."\n\n' + DEFAULT_TEXT[end:]
    rotation = parse_rules(one).rotation
    assert rotation is not None and rotation.actions == ("Register it.",)
    # No [rotation], no incidents.
    no_rotation = parse_rules(DEFAULT_TEXT[: DEFAULT_TEXT.index("[rotation]")])
    assert no_rotation.rotation is None and len(no_rotation.incidents) == 1
    rotation_text = DEFAULT_TEXT[DEFAULT_TEXT.index("[rotation]") :]
    only_rotation = parse_rules(rotation_text[: rotation_text.index("# --- Service retirements")])
    assert only_rotation.incidents == () and only_rotation.rotation is not None


def test_rules_parsed_without_a_file_name_say_so_in_errors() -> None:
    with pytest.raises(RulesError) as info:
        parse_rules("stages = []\n")
    assert str(info.value).startswith("<rules>:1: stages must be")


def test_a_rules_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"\xef\xbb\xbf" + DEFAULT_TEXT.encode())
    assert load_rules(path).incidents[0].id == "azure-sphere-2020-07"


def test_an_unreadable_rules_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(RulesError) as info:
        load_rules(missing)
    assert str(info.value) == f"{missing}: rules file not found"
    assert (info.value.source, info.value.line) == (str(missing), None)
    assert info.value.problem == "rules file not found"
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b"# r\xe8gles\nstages = [7]\n")
    with pytest.raises(RulesError) as info:
        load_rules(latin1)
    assert str(info.value) == (
        f"{latin1}: cannot read the rules file: 'utf-8' codec can't decode byte 0xe8 in "
        "position 3: invalid continuation byte"
    )


def test_a_window_holds_a_time_without_a_zone_read_as_utc() -> None:
    incident = parse_rules(DEFAULT_TEXT).incidents[0]
    assert incident.contains(datetime(2020, 6, 16, 21, 0, 0)) is True
    assert incident.contains(datetime(2020, 6, 16, 20, 59, 59)) is False


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    EXPECTED.write_text(json.dumps(outcomes(), indent=2) + "\n")


DUE = datetime(2020, 8, 18, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before_due", "said"),
    [
        (timedelta(0), "due within the hour"),  # due this minute: not yet overdue
        (timedelta(minutes=59), "due within the hour"),
        (timedelta(hours=1), "1 hour left"),
        (timedelta(hours=2), "2 hours left"),
        (timedelta(days=2) - timedelta(seconds=1), "47 hours left"),
        (timedelta(days=2), "2 days left"),
        (timedelta(days=1, hours=-1), "23 hours left"),
        (-timedelta(minutes=59), "overdue by less than an hour"),
        (-timedelta(hours=1), "overdue by 1 hour"),
        (-timedelta(days=2) + timedelta(seconds=1), "overdue by 47 hours"),
        (-timedelta(days=2), "overdue by 2 days"),
        (-timedelta(days=7), "overdue by 7 days"),
        (-timedelta(days=7, seconds=1), "overdue since 2020-08-18"),
    ],
)
def test_time_left_at_each_boundary(before_due: timedelta, said: str) -> None:
    """Each step of the wording at its exact edge: hours under two days, a date past a week,
    one hour in the singular, never rounded up."""
    assert time_left(DUE, DUE - before_due) == said


def test_a_milestone_reached_this_minute_reads_since() -> None:
    assert milestone_when(DUE, DUE) == "since 2020-08-18"
    assert milestone_when(DUE, DUE - timedelta(seconds=1)) == "from 2020-08-18"


def test_dates_are_utc_dates_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """02:00 UTC on Aug 18 is still Aug 17 in New York: the dates shown are UTC dates."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        late = time_left(DUE, DUE + timedelta(days=9))
        milestone = milestone_when(DUE, DUE - timedelta(days=1))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert (late, milestone) == ("overdue since 2020-08-18", "from 2020-08-18")
