"""`csi-vm clone SOURCE --count N`: each rung of the ladder makes verified clones, tidily."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.fanout.conftest import (
    LADDERS,
    Golden,
    Lab,
    assert_tidy,
    clone_sources,
    make_golden,
    vm_names,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_fanout_makes_every_clone_by_the_cheapest_rung(ladder: str, golden: Golden) -> None:
    out = golden.fanout("--count", "4", "--name-template", "lab-{i}", "--parallel", "2")
    names = [f"lab-{i}" for i in range(1, 5)]
    assert out["strategy"] == ladder
    assert out["made"] == names
    assert vm_names(golden.lab) == {golden.vm, *names}
    for name in names:
        assert golden.export(name) == golden.data, name
    # Host copies write the source's data once per clone; native clones write nothing here.
    written = golden.data_bytes() * 4 if ladder == "host-copy" else 0
    assert out["bytes_written"] == written
    assert out["expected_bytes"] == written
    assert_tidy(golden.lab)


def test_host_copies_read_clones_already_made(lab_factory: Callable[..., Lab]) -> None:
    golden = make_golden(lab_factory(LADDERS["host-copy"]), mode="filesystem")
    out = golden.fanout("--count", "5", "--name-template", "lab-{i:02}", "--parallel", "2")
    assert out["made"] == [f"lab-0{i}" for i in range(1, 6)]
    sources = clone_sources(golden.lab)
    # The first copy can read only the source; the next two read it and that first clone.
    assert sources["lab-01"] == golden.vm
    assert {sources["lab-02"], sources["lab-03"]} == {golden.vm, "lab-01"}
    assert set(sources.values()) - {golden.vm}, "no copy read a clone"
    for name in out["made"]:  # type: ignore[attr-defined]
        assert golden.export(name) == golden.data, name
    assert_tidy(golden.lab)
