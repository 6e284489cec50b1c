"""Reading a rules TOML text with errors that name their line: tomllib returns plain dicts
without positions, so the checks here look each key's line up in the text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any

_ID_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")  # fullmatch: no "/", no trailing newline


class RulesError(ValueError):
    """A rules file that cannot be used. ``str()`` is ``"<file>:<line>: <problem>"``."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}")


# --- where in the text is a key -------------------------------------------------------
# tomllib returns plain dicts without positions, and reports lines only for syntax errors.
# To name the line of a semantic error (a missing key, a wrong type, a bad window) we scan
# the text once for table headers and ``key =`` lines and map each TOML path to its line.
# The scan is approximate (it skips multi-line strings, and inline tables map to the line
# of their key) but every error falls back to the nearest enclosing table that it found.

_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*(\]\]?)\s*(#.*)?$")
_KEY_RE = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)

Path_ = tuple[str | int, ...]


def _split_key(raw: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", raw)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _key_lines(text: str) -> dict[Path_, int]:
    lines: dict[Path_, int] = {}
    counts: dict[Path_, int] = {}  # array-of-tables path -> items seen so far
    table: Path_ = ()
    in_multiline: str | None = None  # the delimiter of the multi-line string being skipped
    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER_RE.match(line)
        if header:
            names = _split_key(header.group(2))
            resolved: list[str | int] = []
            for name in names[:-1]:
                resolved.append(name)
                seen = counts.get(tuple(resolved))
                if seen:  # a parent that is an array of tables: its latest item
                    resolved.append(seen - 1)
            resolved.append(names[-1])
            if header.group(1) == "[[":
                key = tuple(resolved)
                counts[key] = counts.get(key, 0) + 1
                lines.setdefault(key, lineno)  # for "[[rotation]]", which is not an array
                resolved.append(counts[key] - 1)
            table = tuple(resolved)
            lines.setdefault(table, lineno)
            continue
        key = _KEY_RE.match(line)
        if key:
            lines.setdefault((*table, *_split_key(key.group(1))), lineno)
            rest = line[key.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
    return lines


def show_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class TomlChecker:
    """Reads the parsed TOML, refusing anything unexpected with the line it is on."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self._lines = _key_lines(text)

    def line_of(self, path: Path_) -> int | None:
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None

    def fail(self, path: Path_, problem: str) -> RulesError:
        return RulesError(self.source, self.line_of(path), problem)

    def table(
        self, data: Mapping[str, Any], path: Path_, required: set[str], optional: set[str]
    ) -> None:
        for key in data:
            if key not in required and key not in optional:
                allowed = ", ".join(sorted(required | optional))
                raise self.fail(
                    (*path, key), f"unknown key {show_path((*path, key))!r} (allowed: {allowed})"
                )
        for key in sorted(required):
            if key not in data:
                where = show_path(path)
                raise self.fail(path, f"missing key {key!r} in {where}")

    def string(self, data: Mapping[str, Any], path: Path_, key: str) -> str:
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail((*path, key), f"{show_path((*path, key))} must be a non-empty string")
        return value

    def ident(self, data: Mapping[str, Any], path: Path_, key: str) -> str:
        value = self.string(data, path, key)
        if not _ID_RE.fullmatch(value):
            raise self.fail(
                (*path, key),
                f"{show_path((*path, key))} = {value!r}: "
                "use lower-case letters, digits, '.', '-', '_'",
            )
        return value

    def strings(self, data: Mapping[str, Any], path: Path_, key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail((*path, key), f"{show_path((*path, key))} must be a list of strings")
        return tuple(value)

    def integer(
        self, data: Mapping[str, Any], path: Path_, key: str, minimum: int, default: int
    ) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail((*path, key), f"{show_path((*path, key))} must be a whole number")
        if value < minimum:
            raise self.fail(
                (*path, key), f"{show_path((*path, key))} must be >= {minimum}, got {value}"
            )
        return value

    def boolean(self, data: Mapping[str, Any], path: Path_, key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail((*path, key), f"{show_path((*path, key))} must be true or false")
        return value

    def instant(self, data: Mapping[str, Any], path: Path_, key: str) -> datetime:
        value = data[key]
        where = show_path((*path, key))
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise self.fail(
                    (*path, key),
                    f"{where} = {value.isoformat()} has no time zone; write e.g. "
                    f"{value.strftime('%Y-%m-%dT%H:%M:%S')}Z for UTC",
                )
            return value.astimezone(UTC)
        if isinstance(value, date | time):
            raise self.fail(
                (*path, key),
                f"{where} must be a date-time with a time zone, e.g. 2020-08-18T00:00:00Z",
            )
        raise self.fail(
            (*path, key), f"{where} must be a TOML date-time, e.g. 2020-08-18T00:00:00Z"
        )

    def array_of_tables(self, data: Mapping[str, Any], path: Path_, key: str) -> list[dict]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            header = ".".join(part for part in (*path, key) if isinstance(part, str))
            raise self.fail(
                (*path, key), f"{show_path((*path, key))} must be written as [[{header}]] tables"
            )
        return value
