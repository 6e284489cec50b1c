"""Plain-text tables that fit a width: the CLI's tables share one renderer, so each fits
the terminal the same way (long columns elided or wrapped, never the line broken)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import NamedTuple

ELLIPSIS = "..."  # ASCII: a terminal or log without UTF-8 shows it too
GAP = "  "


class Shrink(NamedTuple):
    """How one column gives way when the table is too wide: ``wrap`` onto continuation
    lines, or elide the ``left`` or ``right`` end. Columns shrink in the order given."""

    column: int
    minimum: int
    mode: str  # "wrap" | "left" | "right"


def _elide(text: str, width: int, mode: str) -> str:
    if len(text) <= width:
        return text
    keep = max(width - len(ELLIPSIS), 1)
    return ELLIPSIS + text[-keep:] if mode == "left" else text[:keep] + ELLIPSIS


def render_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int | None = None,
    shrink: Sequence[Shrink] = (),
    paint: Callable[[int, str, str], str] | None = None,
) -> str:
    """The table as text, one line per row (more where a ``wrap`` column wraps).
    ``paint(column, value, padded)`` may colour a cell after padding."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    modes: dict[int, str] = {}
    if width is not None:
        excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
        for rule in shrink:
            if excess <= 0:
                break
            if rule.column >= len(widths):  # a column this table left out
                continue
            give = min(excess, max(widths[rule.column] - rule.minimum, 0))
            if give:
                widths[rule.column] -= give
                modes[rule.column] = rule.mode
                excess -= give
    lines: list[str] = []
    for index, row in enumerate([tuple(header), *map(tuple, rows)]):
        cells: list[list[str]] = []
        for column, value in enumerate(row):
            mode = modes.get(column)
            if mode == "wrap" and index:
                cells.append(textwrap.wrap(value, widths[column]) or [""])
            else:
                cells.append([_elide(value, widths[column], mode or "right")])
        for depth in range(max(len(c) for c in cells)):
            parts = []
            for column, lines_of_cell in enumerate(cells):
                text = lines_of_cell[depth] if depth < len(lines_of_cell) else ""
                padded = text.ljust(widths[column])
                if paint and index and depth == 0:
                    padded = paint(column, row[column], padded)
                parts.append(padded)
            lines.append(GAP.join(parts).rstrip())
    return "\n".join(lines) + "\n"
