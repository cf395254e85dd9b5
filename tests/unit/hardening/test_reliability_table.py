"""The committed docs/reliability.md lists exactly the faults the tests declare, each tried."""

from __future__ import annotations

import pathlib
import re

import pytest

from tests.support import reliability

DOC = pathlib.Path(__file__).resolve().parents[3] / "docs" / "reliability.md"
_CHECK = r" \| (\d+|n/a)"
_ROW = re.compile(
    r"^\| `([^`]+)` \| [^|]+ \| (\d+) \| (\d+) \| (\d+) \| (\d+) \| (\d+)"
    + _CHECK * len(reliability.CHECKS)
    + r" \|$"
)
#: faults whose tests run the counter guest: each attempt measures the checks
GUEST_FAULTS = [f for f in reliability.FAULTS if f.startswith("libvirtd-")]


def _matches() -> dict[str, tuple[str, ...]]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            rows[match.group(1)] = match.groups()[1:]
    return rows


def _rows() -> dict[str, tuple[int, ...]]:
    return {f: tuple(int(g) for g in cells[:5]) for f, cells in _matches().items()}


def test_rows_match_the_declared_faults() -> None:
    assert list(_rows()) == list(reliability.FAULTS)


def test_every_fault_was_tried_and_counts_add_up() -> None:
    for fault, (tried, *outcomes, via_resume) in _rows().items():
        assert tried > 0, f"{fault} was never tried in the run the document comes from"
        assert tried == sum(outcomes), fault
        assert via_resume <= tried - outcomes[0], fault


def test_faults_with_a_guest_show_zero_in_every_check() -> None:
    """0 lost writes, 0 guests left frozen, 0 orphans, 0 hangs, as measured."""
    rows = _matches()
    assert GUEST_FAULTS
    for fault in GUEST_FAULTS:
        assert rows[fault][5:] == ("0",) * len(reliability.CHECKS), fault


def test_render_has_one_row_per_fault(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "outcomes.jsonl"
    out.write_text('{"fault": "bad-vm-spec", "outcome": "refused", "count": 3}\n')
    table = reliability.render(reliability.tally(out))
    assert (
        "| `bad-vm-spec` | " in table and "| 3 | 0 | 0 | 3 | 0 | n/a | n/a | n/a | n/a |" in table
    )
    assert len(table.splitlines()) == 2 + len(reliability.FAULTS)


def test_render_sums_the_measured_checks(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fault = GUEST_FAULTS[0]
    out = tmp_path / "outcomes.jsonl"
    monkeypatch.setenv(reliability.ENV_VAR, str(out))
    for lost in (0, 2):
        checks = reliability.Checks(lost_writes=lost, left_frozen=0, orphans=1, hangs=0)
        reliability.record(fault, reliability.ROLLED_BACK, via_resume=True, checks=checks)
    table = reliability.render(reliability.tally(out))
    assert f"| `{fault}` | " in table and "| 2 | 0 | 2 | 0 | 2 | 2 | 0 | 2 | 0 |" in table
