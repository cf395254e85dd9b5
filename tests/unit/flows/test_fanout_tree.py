"""The fan-out scheduler: the bound on parallel work, and the tree of host copies."""

from __future__ import annotations

import pytest

from csi_vm.flows import fanout_tree

pytestmark = pytest.mark.timeout(30)


def _todo(n: int) -> list[tuple[int, str]]:
    return [(i, f"c{i}") for i in range(1, n + 1)]


def _start_all(sched: fanout_tree.Scheduler) -> list[fanout_tree.Job]:
    jobs = []
    while (job := sched.next()) is not None:
        jobs.append(job)
    return jobs


def test_native_clones_all_read_the_origin_up_to_the_bound() -> None:
    sched = fanout_tree.Scheduler(origin="gold", todo=_todo(7), made=[], parallel=3, tree=False)
    first = _start_all(sched)
    assert [j.target for j in first] == ["c1", "c2", "c3"]
    assert {j.source for j in first} == {"gold"}
    sched.finished(first[0], made=True)
    assert [j.target for j in _start_all(sched)] == ["c4"]


def test_host_copies_double_each_round_until_the_bound() -> None:
    sched = fanout_tree.Scheduler(origin="gold", todo=_todo(12), made=[], parallel=4, tree=True)
    rounds = []
    while sched.left or sched.busy:
        jobs = _start_all(sched)
        rounds.append(len(jobs))
        for job in jobs:
            sched.finished(job, made=True)
    # one source, then two, then four: never more than the bound at once
    assert rounds == [1, 2, 4, 4, 1]


def test_a_copy_reads_a_clone_only_once_it_is_made() -> None:
    sched = fanout_tree.Scheduler(origin="gold", todo=_todo(3), made=[], parallel=8, tree=True)
    (first,) = _start_all(sched)
    assert first.source == "gold"
    sched.finished(first, made=True)
    assert sorted(j.source for j in _start_all(sched)) == ["c1", "gold"]


def test_a_failed_copy_frees_its_source_and_is_not_read() -> None:
    sched = fanout_tree.Scheduler(origin="gold", todo=_todo(2), made=[], parallel=8, tree=True)
    (first,) = _start_all(sched)
    sched.finished(first, made=False)
    (second,) = _start_all(sched)
    assert second.source == "gold"


def test_a_resumed_tree_reads_the_clones_made_before() -> None:
    todo = [(3, "c3"), (4, "c4")]
    sched = fanout_tree.Scheduler(
        origin="gold", todo=todo, made=["c1", "c2"], parallel=8, tree=True
    )
    assert sorted(j.source for j in _start_all(sched)) == ["c1", "gold"]
