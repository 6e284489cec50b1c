"""The files a ``ca-watch`` command is given: walked with ``os.scandir`` and read with one
``open`` + ``fstat`` + ``read``. What cannot be read (no permission, a symlink loop, a
dangling link) becomes a reason attached to that one input, so the rest still runs.

Accepted: files, directories (walked recursively, sorted, symlinked directories not
followed, so a loop cannot recurse), ``-`` for stdin, FIFOs and ``/dev/stdin``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from shared.analysis.reader import ErrorCode, ReadError
from shared.local.common import UsageError

STDIN = "-"
_CHUNK = 1 << 16


class Input(NamedTuple):
    source: str  # as reported: the path (normalised as pathlib does) or "-"
    path: str | None  # what to open; None for stdin
    problem: ReadError | None = None  # why it cannot be read, found while walking
    root: str = ""  # the argument it was found under


class TooLarge(NamedTuple):
    size: int  # bytes, from fstat: the file was not read


def problem_of(exc: OSError) -> ReadError:
    """A reason for an ``OSError`` met opening or reading one input."""
    if isinstance(exc, PermissionError):
        return ReadError(ErrorCode.PERMISSION_DENIED, "permission denied: this user cannot read it")
    if exc.errno == errno.ELOOP:
        return ReadError(
            ErrorCode.SYMLINK_LOOP, "a symbolic link loop (too many levels of symbolic links)"
        )
    if exc.errno == errno.ENOENT:
        return ReadError(ErrorCode.NOT_FOUND, "a symbolic link to a missing file, or it vanished")
    return ReadError(ErrorCode.READ_ERROR, f"cannot read it: {exc.strerror or exc}")


def walk_inputs(paths: Sequence[str]) -> tuple[list[Input], list[str]]:
    """Every input under ``paths``, in order, and the directories that held no file.
    A path that does not exist at all is a usage error (a typo), not a result."""
    inputs: list[Input] = []
    empty: list[str] = []
    for raw in paths:
        if raw == STDIN:
            inputs.append(Input(STDIN, None, root=STDIN))
            continue
        source = str(Path(raw))
        try:
            mode = os.stat(raw).st_mode
        except OSError as exc:
            if exc.errno == errno.ENOENT and not os.path.islink(raw):
                raise UsageError(f"{raw}: no such file or directory") from None
            inputs.append(Input(source, raw, problem_of(exc), source))
            continue
        if stat.S_ISDIR(mode):
            before = len(inputs)
            inputs.extend(_walk_directory(source, source))
            if len(inputs) == before:
                empty.append(source)
        else:  # a regular file, a FIFO, /dev/stdin, a character device: read it
            inputs.append(Input(source, raw, None, source))
    return inputs, empty


def _walk_directory(folder: str, root: str) -> Iterator[Input]:
    # Sorted by name per directory, depth first: the same order as sorted(rglob("*")).
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        yield Input(folder, None, problem_of(exc), root)
        return
    for entry in entries:
        path = entry.path
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _walk_directory(path, root)
            elif entry.is_file():  # follows a symlink to a file, as rglob did
                yield Input(path, path, None, root)
            elif entry.is_symlink():  # a loop, a dangling link or a linked directory
                os.stat(path)  # raises for a loop or a dangling link
            # FIFOs, sockets and devices met in a walk are skipped: reading one could block.
        except OSError as exc:
            yield Input(path, path, problem_of(exc), root)


def read_input(item: Input, max_bytes: int) -> bytes | TooLarge:
    """The bytes of one input (at most ``max_bytes + 1`` of a stream), or its size when a
    regular file is over ``max_bytes`` (not read). Raises ``OSError``."""
    if item.path is None:
        return _read_stream(0, max_bytes)
    fd = os.open(item.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _read_stream(fd, max_bytes)
        if info.st_size > max_bytes:
            return TooLarge(info.st_size)
        data = os.read(fd, info.st_size + 1)  # one read; +1 sees a file that grew
        if len(data) < info.st_size:  # a short read (network file systems): finish it
            data += _read_stream(fd, max_bytes - len(data))
        return data
    finally:
        os.close(fd)


def _read_stream(fd: int, max_bytes: int) -> bytes:
    """A pipe, FIFO or terminal, read to its end or to ``max_bytes + 1`` bytes (enough
    for the reader to call it too large)."""
    chunks: list[bytes] = []
    total = 0
    while total <= max_bytes:
        chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
