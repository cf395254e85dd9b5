"""The report documentation stays in sync with the code it describes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from capabilities import catalogue, model, schema
from capabilities.render import markdown_doc

DOC = Path(__file__).resolve().parents[3] / "docs" / "capability-report.md"

GENERATED = {
    "ladders": markdown_doc.ladder_table,
    "testdriver": markdown_doc.testdriver_table,
}


def _section(text: str, name: str) -> str:
    match = re.search(rf"<!-- generated: {name} -->\n(.*?)\n<!-- end: {name} -->", text, re.S)
    assert match, f"markers for {name!r} missing in {DOC.name}"
    return match.group(1)


@pytest.mark.parametrize("name", sorted(GENERATED), ids=sorted(GENERATED))
def test_generated_tables_match_the_code(name: str) -> None:
    expected = GENERATED[name]()
    assert _section(DOC.read_text(encoding="utf-8"), name) == expected, (
        f"{DOC.name} is out of date; replace the {name!r} section with:\n{expected}"
    )


def test_every_feature_key_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [f for f in model.Feature if f"| `{f}` |" not in text]
    assert not missing


def test_every_gap_and_schema_field_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert all(f"| `{gap.key}` |" in text for gap in catalogue.GAPS)
    defs = schema.load()["$defs"]
    for definition in ("driverReport", "driverInfo", "feature", "matrixReport"):
        for field in defs[definition]["properties"]:
            assert f"| `{field}` |" in text, (definition, field)
