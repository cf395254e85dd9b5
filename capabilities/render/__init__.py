"""Renderers of capability reports, one module per output format.

`render(report, fmt)` is the one entry point; `FORMATS` lists the formats in
the order the CLI offers them. For a terminal, `table.show` prints the table
to a rich console in colour; `render(..., "table")` is plain text unless asked.
"""

from __future__ import annotations

from collections.abc import Callable

from capabilities import model
from capabilities.render import (
    html_page,
    json_doc,
    markdown_doc,
    table,
    testdriver,
    yaml_doc,
)
from csi_vm import errors

FORMATS = ("table", "json", "yaml", "markdown", "html", "testdriver")

Report = model.DriverReport | model.MatrixReport

_RENDERERS: dict[str, Callable[[Report], str]] = {
    "json": json_doc.render,
    "yaml": yaml_doc.render,
    "markdown": markdown_doc.render,
    "html": html_page.render,
    "testdriver": testdriver.render,
}


def render(report: Report, fmt: str, *, width: int = 100, color: bool = False) -> str:
    """The report in format ``fmt``; ``width`` and ``color`` apply to "table" only."""
    if fmt == "table":
        return table.to_text(report, width=width, color=color)
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise errors.InvalidInput(
            f"unknown report format {fmt!r}", hint="choose one of " + ", ".join(FORMATS)
        )
    return renderer(report)
