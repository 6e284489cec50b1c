"""Kill tests for `make mutation` on the `ca-watch` commands (shared/local/*_cmd.py, issue
24), run in this process (mutmut sees no test in a subprocess): each command's `--help`
against its committed text, and what the behaviour tests leave unpinned.

The help texts are tests/data/cli-help/*.txt. After changing a help text on purpose,
rewrite them and review the diff like code:
    CA_WATCH_WRITE_HELP=1 .venv/bin/python -m pytest -q tests/test_mutants_cli.py -k help
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.local.cli import main

HELP = Path(__file__).parent / "data" / "cli-help"
COMMANDS = [
    (),
    ("scan",),
    ("report",),
    ("alerts",),
    ("alerts", "run"),
    ("alerts", "plan"),
    ("azurite",),
    ("azurite", "start"),
    ("azurite", "stop"),
    ("azurite", "status"),
    ("azurite", "reset"),
    ("registrations",),
    ("registrations", "pull"),
    ("ack",),
    ("unack",),
    ("retire",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c) or "ca-watch")
def test_each_commands_help_is_its_committed_text(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    golden = HELP / f"{'-'.join(command) or 'ca-watch'}.txt"
    if os.environ.get("CA_WATCH_WRITE_HELP"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(out, encoding="utf-8")
    assert out == golden.read_text(encoding="utf-8")
