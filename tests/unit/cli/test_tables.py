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
    ],
    ids=["after", "before", "absent", "after-double-dash"],
)
def test_debug_is_read_wherever_it_stands(args: list[str], expected: list[str]) -> None:
    assert main.global_options_first(args) == expected
