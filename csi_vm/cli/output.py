"""Writing a report to the terminal or a file, in the format asked for.

Every report command takes the same two options: `-o/--output FORMAT`
names the format, as in kubectl, and `--output-file PATH` where to write it.
"""

from __future__ import annotations

import enum
import pathlib
from typing import TYPE_CHECKING

import typer

from csi_vm import errors
from csi_vm.cli import tables

if TYPE_CHECKING:
    from capabilities import model

# The report's models (pydantic), rich and the renderers are imported where a
# report is written: the commands' --help reads Format and the options only.


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"
    MARKDOWN = "markdown"
    HTML = "html"
    TESTDRIVER = "testdriver"


FORMAT_HELP = (
    "Report format: table (the default), json, yaml, name (a driver/LABEL line per driver), "
    "markdown, html, or testdriver (a Kubernetes external-storage test driver file)."
)
FILE_HELP = "Write the report to this file instead of standard output."


def format_option() -> Format:
    """-o/--output FORMAT, the same on every report command."""
    return typer.Option(Format.TABLE, "--output", "-o", help=FORMAT_HELP)  # type: ignore[no-any-return]


def file_option() -> pathlib.Path | None:
    """--output-file PATH: where the report goes."""
    return typer.Option(None, "--output-file", metavar="PATH", help=FILE_HELP)  # type: ignore[no-any-return]


def emit(
    report: model.DriverReport | model.MatrixReport,
    *,
    fmt: Format,
    path: pathlib.Path | None,
) -> None:
    from rich.console import Console  # noqa: PLC0415 - see the imports

    from capabilities import render  # noqa: PLC0415 - see the imports

    if fmt is Format.TABLE and path is None:
        tables.print_renderable(Console(), render.table.renderable(report))
        return
    text = _names(report) if fmt is Format.NAME else render.render(report, fmt.value)
    if path is None:
        print(text)
        return
    try:
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as err:
        raise errors.InvalidInput(f"cannot write report to {path}: {err}") from err


def _names(report: model.DriverReport | model.MatrixReport) -> str:
    from capabilities import model  # noqa: PLC0415 - see the imports

    rows = report.rows if isinstance(report, model.MatrixReport) else [report]
    return "\n".join(f"driver/{row.driver.label}" for row in rows)
