"""Tables as kubectl prints them: boxed on a terminal, plain columns in a pipe.

A pipe gets one line per row, columns padded with spaces and never wrapped
or cut, so `grep`, `awk` and `cut` see whole values; `--no-headers` drops
the header line (and a terminal table's title), `-o wide` adds the columns
marked wide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | Text
# kubectl separates plain columns by three spaces.
_GAP = "   "


@dataclasses.dataclass(frozen=True)
class Column:
    header: str
    #: shown only with -o wide
    wide: bool = False


@dataclasses.dataclass(frozen=True)
class Layout:
    """How the user asked for the table: -o wide, --no-headers."""

    wide: bool = False
    headers: bool = True


def show(
    console: Console,
    *,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    layout: Layout,
    title: str | None = None,
) -> None:
    keep = [i for i, col in enumerate(columns) if layout.wide or not col.wide]
    heads = [columns[i].header for i in keep]
    cells = [[row[i] for i in keep] for row in rows]
    if console.is_terminal:
        console.print(_boxed(heads, cells, title=title if layout.headers else None, layout=layout))
        return
    for line in plain_lines(heads, cells, headers=layout.headers):
        console.out(line, highlight=False)


def plain_lines(
    heads: Sequence[str], rows: Sequence[Sequence[Cell]], *, headers: bool
) -> list[str]:
    """Left-aligned columns padded with spaces: no boxes, no colour, no wrapping."""
    text = [[_plain(c) for c in row] for row in rows]
    if headers:
        text.insert(0, [h.upper() for h in heads])
    if not text:
        return []
    widths = [max(len(row[i]) for row in text) for i in range(len(heads))]
    return [
        _GAP.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in text
    ]


def _boxed(
    heads: Sequence[str], rows: Sequence[Sequence[Cell]], *, title: str | None, layout: Layout
) -> Table:
    table = Table(title=title, title_justify="left", show_header=layout.headers)
    for head in heads:
        table.add_column(head, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _plain(cell: Cell) -> str:
    # A value never spans lines in a pipe: a line is a row.
    text = cell.plain if isinstance(cell, Text) else cell
    return " ".join(text.split("\n")) or "<none>"
