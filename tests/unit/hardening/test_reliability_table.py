"""The committed docs/reliability.md lists exactly the faults the tests declare, each tried."""

from __future__ import annotations

import pathlib
import re

from tests.support import reliability

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "reliability.md"
_ROW = re.compile(r"^\| `([^`]+)` \| [^|]+ \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$")


def _rows() -> dict[str, tuple[int, ...]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            rows[match.group(1)] = tuple(int(g) for g in match.groups()[1:])
    return rows


def test_rows_match_the_declared_faults() -> None:
    assert list(_rows()) == list(reliability.FAULTS)


def test_every_fault_was_tried_and_counts_add_up() -> None:
    for fault, (tried, *outcomes, via_resume) in _rows().items():
        assert tried > 0, f"{fault} was never tried in the run the document comes from"
        assert tried == sum(outcomes), fault
        assert via_resume <= tried - outcomes[0], fault


def test_render_has_one_row_per_fault(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "outcomes.jsonl"
    out.write_text('{"fault": "bad-vm-spec", "outcome": "refused", "count": 3}\n')
    table = reliability.render(reliability.tally(out))
    assert "| `bad-vm-spec` | " in table and "| 3 | 0 | 0 | 3 | 0 |" in table
    assert len(table.splitlines()) == 2 + len(reliability.FAULTS)
