"""Tables for pipes, --no-headers, -o wide, and --debug after the command."""

from __future__ import annotations

import io

import pytest
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from csi_vm import sizes
from csi_vm.cli import main, tables

pytestmark = pytest.mark.timeout(60)

COLUMNS = (tables.Column("name"), tables.Column("size"), tables.Column("volume", wide=True))
ROWS = [("web-1", "64 MiB", "vol-" + "x" * 90), ("db", Text("1 GiB", style="red"), "")]


def _piped(layout: tables.Layout) -> str:
    out = io.StringIO()
    console = Console(file=out, width=80)  # a StringIO is no terminal
    tables.show(console, columns=COLUMNS, rows=ROWS, layout=layout, title="2 VMs")
    return out.getvalue()


def test_a_pipe_gets_padded_columns_one_line_a_row() -> None:
    assert _piped(tables.Layout()).splitlines() == [
        "NAME    SIZE",
        "web-1   64 MiB",
        "db      1 GiB",
    ]


def test_wide_adds_columns_and_never_wraps() -> None:
    lines = _piped(tables.Layout(wide=True)).splitlines()
    assert lines[0] == "NAME    SIZE     VOLUME"
    assert lines[1] == "web-1   64 MiB   vol-" + "x" * 90
    # An empty cell still holds its column for awk and cut.
    assert lines[2] == "db      1 GiB    <none>"


def test_no_headers() -> None:
    assert _piped(tables.Layout(headers=False)).splitlines() == ["web-1   64 MiB", "db      1 GiB"]


def test_a_renderers_tables_become_plain_lines() -> None:
    table = Table(title="Plan")
    table.add_column("operation")
    table.add_column("unix:///run/a.sock")
    table.add_row("vm_clone", Text("csi-clone", style="green"))
    lines = tables.plain_renderable(Group(Text("report of a", style="bold"), table))
    # Column names of a report can be drivers: kept as written.
    assert lines == [
        "report of a",
        "",
        "Plan",
        "operation   unix:///run/a.sock",
        "vm_clone    csi-clone",
    ]


@pytest.mark.parametrize(
    ("size", "shown"),
    [(512, "512 B"), (64 << 20, "64 MiB"), (3 << 29, "1.5 GiB"), (10**9, "953.7 MiB")],
    ids=["bytes", "MiB", "GiB", "decimal-G"],
)
def test_sizes_in_binary_units(size: int, shown: str) -> None:
    assert sizes.binary(size) == shown


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["vm", "list", "--debug"], ["--debug", "vm", "list"]),
        (["--debug", "vm", "list"], ["--debug", "vm", "list"]),
        (["vm", "list"], ["vm", "list"]),
        (["image", "copy", "a", "--", "--debug"], ["image", "copy", "a", "--", "--debug"]),
        (["vm", "list", "-v"], ["-v", "vm", "list"]),
        (["vm", "list", "--verbose", "--debug"], ["--debug", "--verbose", "vm", "list"]),
    ],
    ids=["after", "before", "absent", "after-double-dash", "verbose", "both"],
)
def test_debug_is_read_wherever_it_stands(args: list[str], expected: list[str]) -> None:
    assert main.global_options_first(args) == expected


PLAIN_ROWS = [("web-1", "64 MiB", "vol-" + "x" * 90), ("db", "1 GiB", "")]


def _no_console() -> Console:
    raise AssertionError("a pipe of plain text made a rich console")


@pytest.mark.parametrize("layout", [tables.Layout(), tables.Layout(wide=True, headers=False)])
def test_show_stdout_prints_in_a_pipe_what_rich_prints_without_rich(
    layout: tables.Layout, capsys: pytest.CaptureFixture[str]
) -> None:
    tables.show_stdout(_no_console, columns=COLUMNS, rows=PLAIN_ROWS, layout=layout, title="t")
    through_rich = io.StringIO()
    tables.show(
        Console(file=through_rich), columns=COLUMNS, rows=PLAIN_ROWS, layout=layout, title="t"
    )
    assert capsys.readouterr().out == through_rich.getvalue() != ""


@pytest.mark.parametrize(
    ("rows", "env"),
    [
        # rich strips control characters and expands tabs: it prints those lines
        ([("web\x07-1", "1 MiB", "")], {}),
        ([("web\t1", "1 MiB", "")], {}),
        # styled cells are rich's to render
        ([("db", Text("1 GiB", style="red"), "")], {}),
        # rich takes stdout for a terminal when these are set
        (PLAIN_ROWS, {"FORCE_COLOR": "1"}),
        (PLAIN_ROWS, {"TTY_COMPATIBLE": "1"}),
    ],
)
def test_show_stdout_leaves_to_rich_what_rich_would_print_otherwise(
    rows: list[tuple[object, ...]],
    env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    made = io.StringIO()
    tables.show_stdout(
        lambda: Console(file=made),
        columns=COLUMNS,
        rows=rows,  # type: ignore[arg-type]
        layout=tables.Layout(),
    )
    assert capsys.readouterr().out == ""
    assert made.getvalue() != ""
