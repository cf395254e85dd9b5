"""Writing a report to the terminal or a file, in the format asked for."""

from __future__ import annotations

import enum
import pathlib

from rich.console import Console

from capabilities import model, render
from csi_vm import errors


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    MARKDOWN = "markdown"
    HTML = "html"
    TESTDRIVER = "testdriver"


def emit(
    report: model.DriverReport | model.MatrixReport,
    *,
    fmt: Format,
    path: pathlib.Path | None,
) -> None:
    if fmt is Format.TABLE and path is None:
        render.table.show(report, Console())
        return
    text = render.render(report, fmt.value)
    if path is None:
        print(text)
        return
    try:
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as err:
        raise errors.InvalidInput(f"cannot write report to {path}: {err}") from err
