"""Tables as kubectl prints them: boxed on a terminal, plain columns in a pipe.

A pipe gets one line per row, columns padded with spaces and never wrapped
or cut, so `grep`, `awk` and `cut` see whole values; `--no-headers` drops
the header line (and a terminal table's title), `-o wide` adds the columns
marked wide.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from csi_vm.cli.pipe import plain_pipe as plain_pipe  # noqa: PLC0414 - re-exported

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

# rich is imported where a table is drawn: `--help` of a command with tables
# would otherwise pay for it.
Cell: TypeAlias = "str | Text"
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


def show_stdout(
    console: Callable[[], Console],
    *,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    layout: Layout,
    title: str | None = None,
) -> None:
    """`show` on standard output, making the rich ``console()`` only where it draws.

    A pipe of plain text gets the same lines as `show` prints through rich,
    without importing rich: a quarter of `vm list`'s start-up.
    """
    keep = [i for i, col in enumerate(columns) if layout.wide or not col.wide]
    cells = [[row[i] for i in keep] for row in rows]
    lines = _pipe_lines([columns[i].header for i in keep], cells, headers=layout.headers)
    if lines is None:
        show(console(), columns=columns, rows=rows, layout=layout, title=title)
        return
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def stream_stdout(
    console: Callable[[], Console],
    *,
    columns: Sequence[Column],
    pages: Iterable[Sequence[Sequence[Cell]]],
    layout: Layout,
    title: Callable[[int], str],
) -> None:
    """`show_stdout` of rows read a page at a time: each page is written as it comes.

    In a pipe the lines are those of `show_stdout`, except that columns are
    as wide as the header and the first page need, not the whole list: a
    later page widens a column only where it holds a longer value (a cell is
    never cut), so columns never narrow and the first line needs no more than
    the first page. On a terminal a list of one page is the boxed table with
    its `title(rows)`; a longer one is printed as plain columns, as kubectl
    prints every list, since a boxed table is drawn only once all its rows
    are known.
    """
    pages = iter(pages)
    if not plain_pipe():
        first = list(next(pages, []))
        second = next(pages, None)
        if second is None:
            show(console(), columns=columns, rows=first, layout=layout, title=title(len(first)))
            return
        pages = itertools.chain([first, second], pages)
    keep = [i for i, col in enumerate(columns) if layout.wide or not col.wide]
    widths = [0] * len(keep)
    head = [[columns[i].header.upper() for i in keep]] if layout.headers else []
    # An empty list still gets its header line, as in `show_stdout`.
    for page in itertools.chain(pages, [[]] if head else []):
        text = head + [[_plain(row[i]) for i in keep] for row in page]
        if not text:
            continue
        head = []
        widths = [max([w, *(len(row[i]) for row in text)]) for i, w in enumerate(widths)]
        _write_lines([_aligned(row, widths) for row in text], console)


def _write_lines(lines: list[str], console: Callable[[], Console]) -> None:
    """Lines to standard output, through rich only where rich would change them."""
    if plain_pipe() and all(line.isascii() and line.isprintable() for line in lines):
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()
        return
    sys.stdout.flush()  # what came before goes first
    for line in lines:
        console().out(line, highlight=False)


def _pipe_lines(
    heads: Sequence[str], rows: Sequence[Sequence[Cell]], *, headers: bool
) -> list[str] | None:
    """The lines for a pipe, or None where rich is needed to print them alike.

    rich's `out` writes a line of printable ASCII unchanged; it strips or
    expands control characters and tabs, so any other text goes through rich.
    """
    if not plain_pipe() or any(not isinstance(c, str) for row in rows for c in row):
        return None
    lines = plain_lines(heads, rows, headers=headers)
    return lines if all(line.isascii() and line.isprintable() for line in lines) else None


def plain_lines(
    heads: Sequence[str], rows: Sequence[Sequence[Cell]], *, headers: bool, upper: bool = True
) -> list[str]:
    """Left-aligned columns padded with spaces: no boxes, no colour, no wrapping.

    Headers are upper case, as kubectl prints them, unless they are names
    (`upper=False`: a report's columns may be drivers).
    """
    text = [[_plain(c) for c in row] for row in rows]
    if headers:
        text.insert(0, [h.upper() if upper else h for h in heads])
    if not text:
        return []
    widths = [max(len(row[i]) for row in text) for i in range(len(heads))]
    return [_aligned(row, widths) for row in text]


def _aligned(row: Sequence[str], widths: Sequence[int]) -> str:
    return _GAP.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()


def print_renderable(console: Console, renderable: RenderableType) -> None:
    """A renderer's rich tables: as drawn on a terminal, as plain columns in a pipe."""
    if console.is_terminal:
        console.print(renderable)
        return
    for line in plain_renderable(renderable):
        console.out(line, highlight=False)


def plain_renderable(renderable: RenderableType) -> list[str]:
    """Text of tables, texts and groups of them, without boxes or wrapping."""
    from rich.console import Group  # noqa: PLC0415 - see Cell
    from rich.table import Table  # noqa: PLC0415 - see Cell

    if isinstance(renderable, Group):
        lines: list[str] = []
        for part in renderable.renderables:
            lines += plain_renderable(part)
        return lines
    if isinstance(renderable, Table):
        heads = [_plain(_cell(c.header)) for c in renderable.columns]
        columns = [[_cell(cell) for cell in c.cells] for c in renderable.columns]
        rows = [list(row) for row in zip(*columns, strict=True)]
        title = [_plain(_cell(renderable.title))] if renderable.title else []
        body = plain_lines(heads, rows, headers=renderable.show_header, upper=False)
        return ["", *title, *body]
    return _cell(renderable).plain.splitlines()


def _cell(value: object) -> Text:
    from rich.text import Text  # noqa: PLC0415 - see Cell

    if isinstance(value, Text):
        return value
    return Text.from_markup(value) if isinstance(value, str) else Text(str(value))


def _boxed(
    heads: Sequence[str], rows: Sequence[Sequence[Cell]], *, title: str | None, layout: Layout
) -> Table:
    from rich.table import Table  # noqa: PLC0415 - see Cell

    table = Table(title=title, title_justify="left", show_header=layout.headers)
    for head in heads:
        table.add_column(head, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def _plain(cell: Cell) -> str:
    # A value never spans lines in a pipe: a line is a row.
    text = cell if isinstance(cell, str) else cell.plain
    return text.replace("\n", " ") or "<none>"
