"""Markdown pipe tables as hand-edited driver lists write them."""

from __future__ import annotations

import pytest

from capabilities import mdtable


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a | b | c", ("a", "b", "c")),
        ("| a | b | c |", ("a", "b", "c")),
        ("a|b|c|", ("a", "b", "c")),
        ("a | b |", ("a", "b", "")),
        ("a |", ("a", "", "")),
        ("a | b \\| still b | c", ("a", "b \\| still b", "c")),
        ("   a   |b|    c   ", ("a", "b", "c")),
    ],
    ids=["bare", "outer-pipes", "tight", "missing-last", "one-cell", "escaped-pipe", "spacing"],
)
def test_rows_line_up_with_the_header(line: str, expected: tuple[str, ...]) -> None:
    (table,) = mdtable.tables(f"x | y | z\n--|:-:|--\n{line}\n")
    assert table.rows[0].cells == expected


def test_surplus_cells_are_kept_apart() -> None:
    (table,) = mdtable.tables("x | y\n---|---\na | b | extra\n")
    assert table.rows[0].cells == ("a", "b")
    assert table.rows[0].surplus == ("extra",)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("[Ceph RBD](https://example.org/ceph)", "Ceph RBD"),
        ("`rbd.csi.ceph.com`", "rbd.csi.ceph.com"),
        ("Raw Block,<br/><br/>Expansion", "Raw Block, Expansion"),
        ("a <b>bold</b> &amp; plain", "a bold & plain"),
        ("  spread   out  ", "spread out"),
        ("**strong**", "strong"),
    ],
    ids=["link", "backticks", "br", "html-and-entity", "whitespace", "bold"],
)
def test_clean_removes_markup(cell: str, expected: str) -> None:
    assert mdtable.clean(cell) == expected


def test_tables_know_their_heading_and_skip_code_fences() -> None:
    text = "\n".join(
        [
            "# Drivers",
            "## Production Drivers",
            "Name | Other",
            "--|--",
            "one | x",
            "",
            "```",
            "Name | Other",
            "--|--",
            "fenced | y",
            "```",
            "## Sample Drivers",
            "| Name | Status |",
            "|------|--------|",
            "| two | ok |",
        ]
    )
    found = mdtable.tables(text)
    assert [(t.heading, len(t.rows)) for t in found] == [
        ("Production Drivers", 1),
        ("Sample Drivers", 1),
    ]
    assert found[0].rows[0].line == 5


@pytest.mark.parametrize(
    ("names", "exact", "expected"),
    [
        (("name",), True, 0),
        (("csi driver name",), False, 1),
        (("access mode",), False, 2),
        (("nothing",), False, None),
    ],
    ids=["exact", "substring", "plural-header", "absent"],
)
def test_column_lookup(names: tuple[str, ...], exact: bool, expected: int | None) -> None:
    (table,) = mdtable.tables("Name | CSI Driver Name | Supported Access Modes\n-|-|-\na|b|c\n")
    assert table.column(*names, exact=exact) == expected
