"""The README's console examples are real output: every `$ ca-watch ...` line of a
```console block is run (in bash, from the project root, `ca-watch` being this checkout's
CLI) and what it prints is compared with the lines under it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)


def console_examples(text: str) -> list[tuple[str, str]]:
    """(command, expected output) for each `$ ` line of each console block."""
    examples: list[tuple[str, str]] = []
    for block in BLOCK.findall(text):
        command: str | None = None
        output: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    examples.append((command, "\n".join(output)))
                command, output = line[2:], []
            else:
                output.append(line)
        if command is not None:
            examples.append((command, "\n".join(output)))
    return examples


def normalise(text: str) -> str:
    # Only trailing blanks vary (an editor strips them); everything else must match.
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


EXAMPLES = console_examples((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_has_console_examples_of_the_cli() -> None:
    assert len(EXAMPLES) >= 3
    assert all(command.startswith("ca-watch ") for command, _ in EXAMPLES)


def test_the_parser_reads_commands_and_outputs() -> None:
    text = "x\n```console\n$ ca-watch a\none\ntwo\n$ ca-watch b\n```\n"
    assert console_examples(text) == [("ca-watch a", "one\ntwo"), ("ca-watch b", "")]


@pytest.mark.parametrize(("command", "expected"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_console_example_is_real_output(command: str, expected: str, tmp_path: Path) -> None:
    shim = tmp_path / "ca-watch"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m shared.local.cli "$@"\n')
    shim.chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COLUMNS", "NO_COLOR", "RULES_FILE", "MAX_UPLOAD_BYTES")
    }
    env["PATH"] = f"{tmp_path}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert normalise(done.stdout) == normalise(expected)
