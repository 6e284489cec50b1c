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

# Re-exported: the subcommands write their JSON through this module.
from shared.analysis.json_text import json_bytes as json_bytes

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

    def __init__(
        self, total: int, what: str, stream: TextIO | None = None, *, quiet: bool = False
    ) -> None:
        self.total, self.what, self.stream = total, what, stream or sys.stderr
        self.enabled = total >= PROGRESS_THRESHOLD and not quiet
        self.tty = self.stream.isatty()
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


# --- output -------------------------------------------------------------------------
def printable(text: str) -> str:
    """``text`` with control, format and undecodable characters escaped (``\\x1b``,
    ``\\udcff``): a file name never drives the terminal, and always encodes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def describe_error(code: str, message: str) -> str:
    """``code: message`` saying the code once: a message that already starts with it, or
    quotes a lower-level error starting with it (``the DER is damaged: truncated: ...``),
    does not repeat it."""
    prefix = f"{code}: "
    message = message.removeprefix(prefix).replace(f": {prefix}", ": ")
    return prefix + message


def write_stdout(data: bytes, stream: TextIO | None = None) -> None:
    """Write a whole output at once: one ``write`` on the binary layer (a loop only for
    a partial write), whatever PYTHONUNBUFFERED says. A stream without a binary layer
    (a test's StringIO) gets the text."""
    out = stream or sys.stdout
    binary = getattr(out, "buffer", None)
    if binary is None:
        out.write(data.decode("utf-8"))
        return
    out.flush()
    view = memoryview(data)
    while view:
        written = binary.write(view)
        view = view[written if written is not None else len(view) :]
    binary.flush()


def terminal_width(stream: TextIO) -> int | None:
    """The width tables must fit on a terminal (COLUMNS overrides its size); None (no
    limit) when the output goes to a file or a pipe, where a cut line would lose data."""
    import shutil

    if not stream.isatty():
        return None
    return max(shutil.get_terminal_size().columns, 40)
