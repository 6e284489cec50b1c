"""Alert and classification rules as data (DESIGN §4): incidents, routine rotation, stages.

The rules live in a TOML file: the packaged ``default_rules.toml``, or the file the
``RULES_FILE`` setting names. Pure apart from reading that one file; a file with any
error is refused with a ``RulesError`` naming the file and the line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.alerts.rules_toml import Path_, RulesError, TomlChecker, show_path

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.toml")
ROTATION_ID = "rotation"
VERDICTS = ("affected", "signature-mismatch", "ok")


@dataclass(frozen=True)
class Deadline:
    """One date to warn about: fixed (``at``) or relative to the certificate's notAfter."""

    id: str  # rule id used in the ledger and the alerts JSON: "<group>/<name>"
    name: str  # the id as written in the file, e.g. "activation"
    title: str
    message: str
    at: datetime | None = None
    offset_from_not_after: timedelta | None = None  # e.g. -90 days
    # An action deadline (the operator's own: "register the renewal before Aug 18") keeps
    # reminding after its date and is the only kind shown as "overdue" or in red; a
    # milestone (``overdue = false``: "renewal available from Aug 5") is information.
    overdue: bool = False
    overdue_every_days: int = 7
    todo: str = ""  # an action deadline's "what to do by then" (the title when blank;
    # ignored on a milestone, which asks nothing of the operator)

    @property
    def action(self) -> bool:
        return self.overdue

    @property
    def what_to_do(self) -> str:
        return (self.todo or self.title) if self.action else ""

    def due_for(self, not_after: datetime) -> datetime:
        if self.at is not None:
            return self.at
        assert self.offset_from_not_after is not None
        return not_after + self.offset_from_not_after


ONE_HOUR = timedelta(hours=1)
HOURS_UNTIL = timedelta(days=2)  # closer than this, time left is told in hours
DATE_AFTER = timedelta(days=7)  # later than this, lateness is told as a date


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def time_left(due: datetime, now: datetime) -> str:
    """How an action deadline stands at ``now``, never rounded up: "3 days left",
    "15 hours left", "overdue by 9 hours", "overdue by 3 days", "overdue since 2020-08-18"
    (past a week, a date says more than a count)."""
    left = due - now
    if left >= timedelta(0):
        if left < ONE_HOUR:
            return "due within the hour"
        if left < HOURS_UNTIL:
            return f"{_count(left // ONE_HOUR, 'hour')} left"
        return f"{_count(left // timedelta(days=1), 'day')} left"
    late = -left
    if late < ONE_HOUR:
        return "overdue by less than an hour"
    if late < HOURS_UNTIL:
        return f"overdue by {_count(late // ONE_HOUR, 'hour')}"
    if late <= DATE_AFTER:
        return f"overdue by {_count(late // timedelta(days=1), 'day')}"
    return f"overdue since {due.astimezone(UTC):%Y-%m-%d}"


def milestone_when(due: datetime, now: datetime) -> str:
    """A milestone in the right tense: "from 2020-08-05" ahead, "since 2020-08-05" after."""
    return f"{'since' if now >= due else 'from'} {due.astimezone(UTC):%Y-%m-%d}"


@dataclass(frozen=True)
class Incident:
    id: str
    title: str
    window_start: datetime  # aware UTC, inclusive
    window_end: datetime  # aware UTC, inclusive
    reasons: tuple[str, ...]
    actions: tuple[str, ...]
    deadlines: tuple[Deadline, ...]
    applies_to: tuple[str, ...] = ("affected",)  # verdicts whose certificates get the deadlines

    def contains(self, not_before: datetime) -> bool:
        """Is this issue date inside the window, both ends inclusive, to the second?"""
        if not_before.tzinfo is None:  # certificate times are UTC; be lenient with callers
            not_before = not_before.replace(tzinfo=UTC)
        return self.window_start <= not_before.replace(microsecond=0) <= self.window_end


@dataclass(frozen=True)
class Rotation:
    """Routine rotation: deadlines for every tenant CA, relative to its notAfter."""

    id: str
    title: str
    actions: tuple[str, ...]
    deadlines: tuple[Deadline, ...]


@dataclass(frozen=True)
class Rules:
    incidents: tuple[Incident, ...]
    rotation: Rotation | None
    stages: tuple[int, ...]  # lead times in days, most distant first, e.g. (14, 7, 3, 1, 0)
    overdue_every_days: int
    source: str = "<rules>"

    def deadline(self, deadline_id: str) -> Deadline | None:
        for group in (*self.incidents, self.rotation):
            if group is not None:
                for d in group.deadlines:
                    if d.id == deadline_id:
                        return d
        return None


def _deadlines(
    check: TomlChecker, group: Mapping[str, Any], path: Path_, group_id: str, every_default: int
) -> tuple[Deadline, ...]:
    out: list[Deadline] = []
    seen: set[str] = set()
    for i, raw in enumerate(check.array_of_tables(group, path, "deadline")):
        here = (*path, "deadline", i)
        check.table(
            raw,
            here,
            {"id", "title", "message"},
            {"at", "days_before_not_after", "overdue", "overdue_every_days", "todo"},
        )
        name = check.ident(raw, here, "id")
        if name in seen:
            raise check.fail((*here, "id"), f"duplicate deadline id {name!r} in {show_path(path)}")
        seen.add(name)
        if ("at" in raw) == ("days_before_not_after" in raw):
            raise check.fail(
                here, f"deadline {name!r} needs exactly one of 'at' or 'days_before_not_after'"
            )
        at = check.instant(raw, here, "at") if "at" in raw else None
        offset = None
        if "days_before_not_after" in raw:
            offset = -timedelta(days=check.integer(raw, here, "days_before_not_after", 0, 0))
        out.append(
            Deadline(
                id=f"{group_id}/{name}",
                name=name,
                title=check.string(raw, here, "title"),
                message=check.string(raw, here, "message"),
                at=at,
                offset_from_not_after=offset,
                overdue=check.boolean(raw, here, "overdue", False),
                overdue_every_days=check.integer(raw, here, "overdue_every_days", 1, every_default),
                todo=check.string(raw, here, "todo") if "todo" in raw else "",
            )
        )
    return tuple(out)


def _incident(check: TomlChecker, raw: Mapping[str, Any], i: int, every: int) -> Incident:
    here: Path_ = ("incident", i)
    check.table(
        raw,
        here,
        {"id", "title", "window_start", "window_end", "reasons", "actions"},
        {"applies_to", "deadline"},
    )
    incident_id = check.ident(raw, here, "id")
    if incident_id == ROTATION_ID:
        raise check.fail((*here, "id"), f"incident id {ROTATION_ID!r} is reserved for [rotation]")
    start = check.instant(raw, here, "window_start")
    end = check.instant(raw, here, "window_end")
    if start > end:
        raise check.fail(
            (*here, "window_start"),
            f"incident {incident_id!r}: window_start {start:%Y-%m-%dT%H:%M:%SZ} is after "
            f"window_end {end:%Y-%m-%dT%H:%M:%SZ}",
        )
    applies_to = check.strings(raw, here, "applies_to") if "applies_to" in raw else ("affected",)
    for verdict in applies_to:
        if verdict not in VERDICTS:
            raise check.fail(
                (*here, "applies_to"),
                f"applies_to: unknown verdict {verdict!r} (choose from {', '.join(VERDICTS)})",
            )
    return Incident(
        id=incident_id,
        title=check.string(raw, here, "title"),
        window_start=start,
        window_end=end,
        reasons=check.strings(raw, here, "reasons"),
        actions=check.strings(raw, here, "actions"),
        deadlines=_deadlines(check, raw, here, incident_id, every),
        applies_to=applies_to,
    )


_LINE_COLUMN_RE = re.compile(r"\(at line (\d+), column (\d+)\)")
_AT_END = "(at end of document)"


def parse_rules(text: str, source: str = "<rules>") -> Rules:
    """Rules from TOML text; ``source`` names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = _LINE_COLUMN_RE.search(message)
        problem = _LINE_COLUMN_RE.sub("", message).replace(_AT_END, "").strip()
        if where:
            raise RulesError(
                source, int(where.group(1)), f"{problem} (column {where.group(2)})"
            ) from None
        # An empty text parses, so a text that fails at its end has a last line.
        last_line = text.count("\n") + (0 if text.endswith("\n") else 1)
        raise RulesError(source, last_line, f"{problem} (at end of file)") from None

    check = TomlChecker(text, source)
    check.table(data, (), set(), {"stages", "overdue_every_days", "incident", "rotation"})

    stages_raw = data.get("stages", [14, 7, 3, 1, 0])
    if not isinstance(stages_raw, list) or not stages_raw:
        raise check.fail(
            ("stages",), "stages must be a non-empty list of whole days, e.g. [14, 7, 3, 1, 0]"
        )
    for stage in stages_raw:
        if isinstance(stage, bool) or not isinstance(stage, int):
            raise check.fail(("stages",), f"stages: {stage!r} is not a whole number of days")
        if stage < 0:
            raise check.fail(
                ("stages",), f"stages: {stage} is negative; lead times count days before a deadline"
            )
    if len(set(stages_raw)) != len(stages_raw):
        raise check.fail(("stages",), "stages: a lead time is listed twice")
    every = check.integer(data, (), "overdue_every_days", 1, 7)

    incidents = tuple(
        _incident(check, raw, i, every)
        for i, raw in enumerate(check.array_of_tables(data, (), "incident"))
    )
    ids = [inc.id for inc in incidents]
    for i, incident_id in enumerate(ids):
        if incident_id in ids[:i]:
            raise check.fail(("incident", i, "id"), f"duplicate incident id {incident_id!r}")

    rotation = None
    if "rotation" in data:
        raw = data["rotation"]
        if not isinstance(raw, dict):
            raise check.fail(("rotation",), "rotation must be a [rotation] table")
        check.table(raw, ("rotation",), {"title", "deadline"}, {"actions"})
        rotation = Rotation(
            id=ROTATION_ID,
            title=check.string(raw, ("rotation",), "title"),
            actions=check.strings(raw, ("rotation",), "actions"),
            deadlines=_deadlines(check, raw, ("rotation",), ROTATION_ID, every),
        )

    return Rules(
        incidents=incidents,
        rotation=rotation,
        stages=tuple(sorted(stages_raw, reverse=True)),
        overdue_every_days=every,
        source=source,
    )


def _read(path: Path) -> Rules:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RulesError(str(path), None, "rules file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(str(path), None, f"cannot read the rules file: {exc}") from None
    return parse_rules(text, str(path))


@lru_cache(maxsize=8)
def _load_setting(rules_file: str) -> Rules:
    return _read(Path(rules_file) if rules_file else DEFAULT_RULES_PATH)


def load_rules(path: str | Path | None = None) -> Rules:
    """The rules in ``path``; without one, the file the ``RULES_FILE`` setting names, or the
    packaged default. The no-argument form is cached (per RULES_FILE value) because the
    classifier and the timer call it for every upload and run; an explicit path is read anew.
    """
    if path is not None:
        return _read(Path(path))
    return _load_setting(os.environ.get("RULES_FILE", "").strip())


def clear_rules_cache() -> None:
    """Forget the cached default rules (tests that change RULES_FILE call this)."""
    _load_setting.cache_clear()
