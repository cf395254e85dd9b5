"""Pipe tables out of hand-written markdown.

The public CSI driver list is edited by many people, so its rows are
irregular: missing or extra trailing pipes, uneven spacing, links, backticks
and inline HTML (``<br/>``) inside cells. This module finds the tables, splits
the rows against the header and turns cells into plain text; what the cells
mean is left to the caller.
"""

from __future__ import annotations

import dataclasses
import html
import re

# A delimiter row: cells of dashes, optionally with alignment colons.
_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-*:?\s*)*\|?\s*$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
# A pipe not escaped with a backslash separates cells.
_SPLIT = re.compile(r"(?<!\\)\|")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Row:
    cells: tuple[str, ...]
    line: int  # 1-based, for messages that point into the file
    surplus: tuple[str, ...] = ()  # non-empty cells beyond the header


@dataclasses.dataclass(frozen=True, kw_only=True)
class Table:
    heading: str  # text of the nearest heading above, "" if none
    header: tuple[str, ...]
    rows: tuple[Row, ...]

    def column(self, *names: str, exact: bool = False) -> int | None:
        """Index of the first header cell matching one of ``names`` (in order).

        Headers are matched case-insensitively, by substring unless ``exact``,
        because hand-edited tables word their headers loosely.
        """
        lowered = [clean(cell).lower() for cell in self.header]
        for name in names:
            for index, cell in enumerate(lowered):
                if cell == name or (not exact and name in cell):
                    return index
        return None


def tables(text: str) -> list[Table]:
    """Every pipe table in ``text``, with the heading it sits under."""
    lines = text.splitlines()
    found: list[Table] = []
    heading = ""
    in_fence = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (match := _HEADING.match(line)):
            heading = clean(match.group(1))
        elif not in_fence and _starts_table(lines, index):
            table, index = _read_table(lines, start=index, heading=heading)
            found.append(table)
            continue
        index += 1
    return found


def clean(cell: str, *, separator: str = " ") -> str:
    """Cell text without markup; ``<br>`` becomes ``separator``."""
    text = _LINK.sub(r"\1", cell)
    text = _BREAK.sub(separator, text)
    text = _TAG.sub("", text)
    text = text.replace("`", "").replace("**", "").replace("\\|", "|")
    text = html.unescape(text)
    return " ".join(text.split())


def _starts_table(lines: list[str], index: int) -> bool:
    return (
        "|" in lines[index]
        and index + 1 < len(lines)
        and "-" in lines[index + 1]
        and bool(_DELIMITER.match(lines[index + 1]))
    )


def _read_table(lines: list[str], *, start: int, heading: str) -> tuple[Table, int]:
    header = _split(lines[start])
    rows: list[Row] = []
    index = start + 2
    while index < len(lines) and "|" in lines[index] and lines[index].strip():
        rows.append(_row(lines[index], width=len(header), line=index + 1))
        index += 1
    return Table(heading=heading, header=tuple(header), rows=tuple(rows)), index


def _split(line: str) -> list[str]:
    stripped = line.strip()
    cells = [cell.strip() for cell in _SPLIT.split(stripped)]
    # Outer pipes are optional in markdown; they only add empty edge cells.
    if stripped.startswith("|"):
        cells = cells[1:]
    if stripped.endswith("|") and not stripped.endswith("\\|"):
        cells = cells[:-1]
    return cells


def _row(text: str, *, width: int, line: int) -> Row:
    cells = _split(text)
    # Rows may lack trailing empty cells; pad them so columns line up.
    cells += [""] * (width - len(cells))
    return Row(cells=tuple(cells[:width]), line=line, surplus=tuple(c for c in cells[width:] if c))
