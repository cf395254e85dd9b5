"""The JSON Schema of capability reports (``report-v1.json``) and a validator for it.

The schema file is the published contract for report consumers; the tests
validate every report the renderers produce against it.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any

import jsonschema

from csi_vm import errors

FILE = "report-v1.json"
# Problems listed in one error message; the rest are counted.
_SHOWN = 5
_LONGEST = 160


@functools.cache
def load() -> dict[str, Any]:
    """The schema document, parsed once."""
    text = importlib.resources.files(__package__).joinpath(FILE).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def validate(data: dict[str, Any]) -> None:
    """Raise `errors.InvalidInput` naming where ``data`` breaks the schema."""
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise errors.InvalidInput(f"a capability report is a JSON object, not {kind}")
    problems = sorted(_validator(_shape(data)).iter_errors(data), key=_order)
    if not problems:
        return
    lines = [f"{_where(p)}: {_shorten(p.message)}" for p in problems[:_SHOWN]]
    more = len(problems) - _SHOWN
    lines += [f"... and {more} more"] if more > 0 else []
    schema_name = load()["$defs"]["schemaName"]["const"]
    raise errors.InvalidInput(
        f"report does not match {schema_name}: " + "; ".join(lines),
        hint="see docs/capability-report.md for the report format",
    )


def _shape(data: dict[str, Any]) -> str:
    # Validate against the branch the data claims to be, so messages point at
    # the offending field instead of "is not valid under any of the schemas".
    return "matrixReport" if "rows" in data else "driverReport"


@functools.cache
def _validator(definition: str) -> jsonschema.protocols.Validator:
    schema = {key: value for key, value in load().items() if key != "oneOf"}
    schema["$ref"] = f"#/$defs/{definition}"
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(schema)
    return validator


def _order(problem: jsonschema.ValidationError) -> list[tuple[int, int, str]]:
    # Paths mix list indexes and object keys; order indexes numerically.
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in problem.absolute_path]


def _shorten(message: str) -> str:
    # Messages quote the offending value, which may be a whole driver row.
    return message if len(message) <= _LONGEST else message[: _LONGEST - 1] + "…"


def _where(problem: jsonschema.ValidationError) -> str:
    return "/".join(str(part) for part in problem.absolute_path) or "(top level)"
