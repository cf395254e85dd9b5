"""Lists written a page at a time: the same text as the whole list, as it comes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence

import pytest
import yaml
from rich.console import Console

from csi_vm.cli import tables, vmenv

pytestmark = pytest.mark.timeout(60)

COLUMNS = (tables.Column("name"), tables.Column("size"), tables.Column("volume", wide=True))
PAGES = [
    [("a", "1 MiB", "vol-1"), ("bb", "10 MiB", "vol-22")],
    [("ccc", "1 MiB", "vol-333")],
    [("d", "100 GiB", "vol-4"), ("e", "1 B", "")],
]


@pytest.fixture(autouse=True)
def _plain_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)


def _no_console() -> Console:
    raise AssertionError("a pipe of plain text made a rich console")


class _Pages:
    """Pages handed out one by one, noting what was written before each."""

    def __init__(self, pages: Sequence[Sequence[tuple[str, ...]]], out: pytest.CaptureFixture[str]):
        self.pages = pages
        self.out = out
        self.seen: list[str] = []

    def __iter__(self) -> Iterator[Sequence[tuple[str, ...]]]:
        for page in self.pages:
            self.seen.append(self.out.readouterr().out)
            yield page
        self.seen.append(self.out.readouterr().out)


def test_each_page_is_written_before_the_next_is_read(capsys: pytest.CaptureFixture[str]) -> None:
    pages = _Pages(PAGES, capsys)
    tables.stream_stdout(
        _no_console, columns=COLUMNS, pages=pages, layout=tables.Layout(), title=str
    )
    assert pages.seen == [
        "",
        "NAME   SIZE\na      1 MiB\nbb     10 MiB\n",
        # A longer name widens the column from here on; SIZE keeps its width.
        "ccc    1 MiB\n",
        "d      100 GiB\ne      1 B\n",
    ]


def test_a_later_page_widens_a_column_and_none_narrows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pages = [[("a", "1")], [("a-much-longer-name", "2")], [("b", "3")]]
    tables.stream_stdout(
        _no_console,
        columns=COLUMNS[:2],
        pages=pages,
        layout=tables.Layout(headers=False),
        title=str,
    )
    assert capsys.readouterr().out.splitlines() == [
        "a   1",
        "a-much-longer-name   2",
        "b                    3",
    ]


@pytest.mark.parametrize(
    "layout", [tables.Layout(), tables.Layout(wide=True), tables.Layout(headers=False)]
)
def test_one_page_in_a_pipe_is_what_show_prints(
    layout: tables.Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [row for page in PAGES for row in page]
    tables.stream_stdout(_no_console, columns=COLUMNS, pages=[rows], layout=layout, title=str)
    whole = io.StringIO()
    tables.show(Console(file=whole), columns=COLUMNS, rows=rows, layout=layout)
    assert capsys.readouterr().out == whole.getvalue() != ""


def test_an_empty_list_keeps_its_header(capsys: pytest.CaptureFixture[str]) -> None:
    tables.stream_stdout(_no_console, columns=COLUMNS, pages=[], layout=tables.Layout(), title=str)
    assert capsys.readouterr().out == "NAME   SIZE\n"


def test_a_line_rich_would_change_goes_through_rich(capsys: pytest.CaptureFixture[str]) -> None:
    made = io.StringIO()
    tables.stream_stdout(
        lambda: Console(file=made),
        columns=COLUMNS[:1],
        pages=[[("plain",)], [("tab\there",)]],
        layout=tables.Layout(headers=False),
        title=str,
    )
    assert capsys.readouterr().out == "plain\n"
    assert made.getvalue() == "tab     here\n"


def test_a_terminal_gets_a_boxed_table_of_one_page_and_plain_lines_of_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich takes the console for a terminal
    boxed, plain = io.StringIO(), io.StringIO()
    tables.stream_stdout(
        lambda: Console(file=boxed, force_terminal=True, width=60, color_system=None),
        columns=COLUMNS,
        pages=PAGES[:1],
        layout=tables.Layout(),
        title=lambda n: f"{n} VMs",
    )
    assert "2 VMs" in boxed.getvalue()
    assert "┃ name ┃ size" in boxed.getvalue()
    tables.stream_stdout(
        lambda: Console(file=plain, force_terminal=True, width=60, color_system=None),
        columns=COLUMNS,
        pages=PAGES,
        layout=tables.Layout(),
        title=lambda n: f"{n} VMs",
    )
    assert plain.getvalue().splitlines() == [
        "NAME   SIZE",
        "a      1 MiB",
        "bb     10 MiB",
        "ccc    1 MiB",
        "d      100 GiB",
        "e      1 B",
    ]


ITEMS = [
    {"name": "a", "disks": [{"name": "root", "size": 1}], "running_on": None},
    {"name": "b: c", "disks": [], "running_on": "node-é"},
    {"name": "x" * 120, "disks": [{"name": "d"}], "running_on": "n"},
]


@pytest.mark.parametrize("fmt", [vmenv.Output.JSON, vmenv.Output.YAML, vmenv.Output.NAME])
@pytest.mark.parametrize(
    "pages",
    [[], [[]], [ITEMS], [ITEMS[:1], [], ITEMS[1:]], [[item] for item in ITEMS]],
    ids=["no-pages", "empty-page", "one-page", "with-empty", "one-each"],
)
def test_pages_of_items_print_what_the_whole_list_prints(
    fmt: vmenv.Output, pages: list[list[dict[str, object]]], capsys: pytest.CaptureFixture[str]
) -> None:
    vmenv.emit_pages(iter(pages), fmt=fmt)
    streamed = capsys.readouterr().out
    vmenv.emit([item for page in pages for item in page], fmt=fmt)
    assert streamed == capsys.readouterr().out
    if fmt is vmenv.Output.JSON:
        assert json.loads(streamed) == [item for page in pages for item in page]
    if fmt is vmenv.Output.YAML:
        assert yaml.safe_load(streamed) == [item for page in pages for item in page]
