"""The one report writer: aligned text tables and JSON for every command that prints results.

A table is a list of row dicts and a list of `Column`s; widths grow to fit headers and cells. JSON output is
strict (NaN and infinities become null) so that `jq` and other parsers read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Column:
    """One column: `key` in the row dicts, its `header`, a format spec (`"6.1f"`, `"d"`, `""`) or a function of
    the value, a minimum `width`, the alignment (`>`, `<`, `^`) and text put before the column (`sep`)."""

    key: str
    header: str = ""
    spec: str | Callable[[Any], str] = ""
    width: int = 0
    align: str = ">"
    sep: str = " "

    def cell(self, row: dict) -> str:
        value = row.get(self.key)
        if callable(self.spec):
            return self.spec(value)
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return format(value, self.spec)


@dataclass(frozen=True)
class Group:
    """A title centred over the columns `first`..`last` (keys), on a line above the headers."""

    title: str
    first: str
    last: str


def format_table(rows: list[dict], columns: list[Column], groups: tuple[Group, ...] = (), rule: bool = False) -> list[str]:
    """Header line(s) (with `rule`, a line of dashes under them) and one line per row, columns padded to a common
    width (trailing spaces stripped)."""
    cells = [[c.cell(r) for c in columns] for r in rows]
    widths = [max([c.width, len(c.header)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]

    def line(texts: list[str], aligns: list[str]) -> str:
        parts = [c.sep + f"{t:{a}{w}}" for c, t, a, w in zip(columns, texts, aligns, widths)]
        return "".join(parts)[len(columns[0].sep):].rstrip()

    lines = []
    if groups:
        lines.append(_group_line(columns, widths, groups))
    lines.append(line([c.header for c in columns], [c.align for c in columns]))
    if rule:
        lines.append(line(["-" * w for w in widths], [c.align for c in columns]))
    lines += [line(row, [c.align for c in columns]) for row in cells]
    return lines


def _group_line(columns: list[Column], widths: list[int], groups: tuple[Group, ...]) -> str:
    keys = [c.key for c in columns]
    starts, pos = [], -len(columns[0].sep)
    for c, w in zip(columns, widths):
        pos += len(c.sep)
        starts.append(pos)
        pos += w
    out = ""
    for i, g in enumerate(groups):
        a, b = keys.index(g.first), keys.index(g.last)
        sep = columns[a].sep if i else ""
        out += " " * max(0, starts[a] - len(out) - len(sep)) + sep  # titles that overflow push the next one
        out += f"{g.title:^{starts[b] + widths[b] - starts[a]}s}"
    return out.rstrip()


def strict(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (nested dicts, lists, tuples)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Strict, indented JSON (NaN → null); paths and other objects as strings."""
    return json.dumps(strict(value), indent=2, default=_plain, allow_nan=False)


def _plain(value: Any) -> Any:
    """numpy / torch scalars as numbers (non-finite ones as null), anything else (paths) as text."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return strict(value.item())
    return str(value)
