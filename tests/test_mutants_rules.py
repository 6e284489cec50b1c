"""Golden rules errors: each broken edit of the default rules file is refused with exactly
the committed message (file, line, key path and problem), and keys left out take their
documented defaults. Kills the families of rules mutants that drop the key path from an
error or change a default (issue 16). Regenerate on purpose only:
    .venv/bin/python tests/test_mutants_rules.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for test_rules when run as a script
from test_rules import BAD_FILES, DEFAULT_TEXT

from shared.alerts.rules import RulesError, parse_rules

EXPECTED = Path(__file__).parent / "data" / "golden" / "expected-rules-errors.json"

MORE_EDITS: dict[str, tuple[str, str]] = {
    "deadline-title-type": ('title = "Renewed tenant CA activates"', "title = 3"),
    "deadline-message-type": (
        'message = "The tenant CA certificate expires.',
        'message = 3\nx = "',
    ),
    "deadline-overdue-type": ("overdue = false", 'overdue = "no"'),
    "deadline-id-missing": ('id = "renewal-available"\n', ""),
    "offset-negative": ("days_before_not_after = 45", "days_before_not_after = -1"),
    "incident-title-type": ('title = "Azure Sphere tenant CA certificates', 'title = 3\nx = "'),
    "incident-reasons-type": ("reasons = [", "reasons = 3\nx = ["),
    "incident-actions-type": ('actions = [\n  "Between', 'actions = 3\nx = [\n  "Between'),
    "applies-to-type": ('applies_to = ["affected"]', "applies_to = 3"),
    "incident-id-missing": ('id = "azure-sphere-2020-07"\n', ""),
    "window-equal": ("window_start = 2020-06-16T21:00:00Z", "window_start = 2020-07-28T00:15:00Z"),
    "rotation-title-type": ('title = "Routine tenant CA rotation"', "title = 3"),
    "syntax-at-end": ("overdue = true\n", "overdue = true\nbroken = ["),
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


def outcomes() -> dict[str, str]:
    return {name: _outcome(old, new) for name, (old, new) in sorted(_edits().items())}


@pytest.mark.parametrize("name", sorted(_edits()))
def test_each_broken_rules_file_gets_its_committed_message(name: str) -> None:
    old, new = _edits()[name]
    assert _outcome(old, new) == json.loads(EXPECTED.read_text())[name]


def test_left_out_keys_take_their_documented_defaults() -> None:
    text = (
        DEFAULT_TEXT.replace('applies_to = ["affected"]\n', "", 1)
        .replace("overdue = false\n", "", 1)
        .replace("overdue = true\noverdue_every_days = 7\n", "", 1)
    )
    incident = parse_rules(text, "rules.toml").incidents[0]
    assert incident.applies_to == ("affected",)
    available, activation = incident.deadlines
    assert available.overdue is False
    assert activation.overdue is False
    assert activation.overdue_every_days == 7  # the file's top-level overdue_every_days


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    EXPECTED.write_text(json.dumps(outcomes(), indent=2) + "\n")
