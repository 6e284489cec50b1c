"""What every ``ca-watch`` subcommand shares: exit codes, usage errors, ``--now`` parsing,
file walking, progress and colour. Subcommands import this module; the entry point
(``shared.local.cli``) imports the subcommands, never the other way round."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

EXIT_OK, EXIT_ACTION, EXIT_USAGE = 0, 1, 2
PROGRESS_THRESHOLD = 200  # files; below this a scan is quick enough to need no progress


class UsageError(Exception):
    """Wrong arguments or settings: printed without a traceback, exit 2."""


def parse_when(text: str) -> datetime:
    """ISO 8601 date or date-time; a time without a zone is UTC."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(
            f"--now {text!r} is not an ISO 8601 date-time (e.g. 2020-08-04T09:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iter_files(paths: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    return files


class Progress:
    """Progress on stderr for long work, at most a few lines a second; silent when short."""

    def __init__(self, total: int, what: str, stream: TextIO = sys.stderr) -> None:
        self.total, self.what, self.stream = total, what, stream
        self.enabled = total >= PROGRESS_THRESHOLD
        self.tty = stream.isatty()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.5 and done != self.total):
            return
        self.last = now
        end = "\r" if self.tty and done != self.total else "\n"
        self.stream.write(f"{self.what} {done}/{self.total}{end}")
        self.stream.flush()


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


_COLOURS = {
    "ok": "32",
    "affected": "31;1",
    "signature-mismatch": "31",
    "unreadable": "33",
    "rejected": "35",
}


def paint(text: str, key: str, enabled: bool) -> str:
    code = _COLOURS.get(key)
    return f"\033[{code}m{text}\033[0m" if enabled and code else text
