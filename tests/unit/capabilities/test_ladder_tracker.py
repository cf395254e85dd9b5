"""The strategy ladder and the probe journal (pure logic)."""

from __future__ import annotations

import json
import pathlib

import pytest

from capabilities import ladder, model, tracker

F = model.Feature


def _features(**verified: bool | None) -> dict[model.Feature, model.FeatureResult]:
    return {F(k): model.FeatureResult(verified=v) for k, v in verified.items()}


ALL_WORKING = dict.fromkeys((f.value for f in model.Feature), True)


@pytest.mark.parametrize(
    ("missing", "op", "strategy"),
    [
        ((), "vm_snapshot", "csi-snapshot"),
        (("snapshot",), "vm_snapshot", "host-copy"),
        ((), "vm_restore", "csi-restore"),
        (("restore_from_snapshot",), "vm_restore", "host-copy"),
        ((), "vm_clone", "csi-clone"),
        (("clone",), "vm_clone", "snapshot-restore"),
        (("clone", "snapshot"), "vm_clone", "host-copy"),
        ((), "disk_expand", "csi-expand"),
        (("expansion_controller",), "disk_expand", "copy-to-larger"),
        ((), "live_migration", "shared-volume"),
        (("multi_node_shared",), "live_migration", "storage-migration"),
        ((), "disk_import", "block"),
        (("block",), "disk_import", "filesystem-image"),
        (("block", "filesystem"), "disk_import", "unavailable"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else v,
)
def test_ladder_picks_first_usable_rung(missing: tuple[str, ...], op: str, strategy: str) -> None:
    verified = {**ALL_WORKING, **dict.fromkeys(missing, False)}
    choice = ladder.plan(_features(**verified), trust_declared=False)[op]
    assert choice.strategy == strategy
    if missing and strategy != "unavailable":
        assert "fallback" in choice.reason


def test_plan_covers_every_operation() -> None:
    assert set(ladder.plan({}, trust_declared=False)) == set(ladder.OPERATIONS)


def test_declared_only_trusts_declarations_but_verification_wins() -> None:
    feats = {
        F.SNAPSHOT: model.FeatureResult(declared=True),
        F.CLONE: model.FeatureResult(declared=True, verified=False),
    }
    plan = ladder.plan(feats, trust_declared=True)
    assert plan["vm_snapshot"].strategy == "csi-snapshot"
    assert plan["vm_clone"].strategy == "host-copy"


@pytest.mark.parametrize(
    "result",
    [
        model.FeatureResult(declared=True),
        model.FeatureResult(inferred=True),
        model.FeatureResult(verified=None, inferred=False),
    ],
    ids=["declared", "inferred-true", "inferred-false"],
)
def test_sharing_needs_verification_or_assertion(result: model.FeatureResult) -> None:
    feats = {F.MULTI_NODE_SHARED: result}
    assert ladder.plan(feats, trust_declared=True)["live_migration"].strategy == "storage-migration"
    asserted = ladder.plan(feats, trust_declared=True, asserted=frozenset({F.MULTI_NODE_SHARED}))
    assert asserted["live_migration"].strategy == "shared-volume"
    assert "asserted" in asserted["live_migration"].reason


@pytest.mark.parametrize("trust_declared", [False, True], ids=["verified", "declared-only"])
def test_works_undeclared_is_used_only_when_asserted(trust_declared: bool) -> None:
    feats = {F.EXPANSION_CONTROLLER: model.FeatureResult(declared=False, verified=True)}
    choice = ladder.plan(feats, trust_declared=trust_declared)["disk_expand"]
    assert choice.strategy == "copy-to-larger"
    assert "works, undeclared: assert it in the config" in choice.reason
    asserted = frozenset({F.EXPANSION_CONTROLLER})
    assert ladder.plan(feats, trust_declared=trust_declared, asserted=asserted)[
        "disk_expand"
    ].strategy == ("csi-expand")
    assert not ladder.usable(F.EXPANSION_CONTROLLER, feats)
    assert ladder.usable(F.EXPANSION_CONTROLLER, feats, asserted=asserted)


def test_journal_pending_lists_unremoved_objects_newest_first(tmp_path: pathlib.Path) -> None:
    journal = tracker.Journal(tmp_path, endpoint="unix:///x.sock", run_id="r1")
    first = journal.name("a")
    journal.intent(kind="volume", name=first, spec={"size": 1})
    journal.created(kind="volume", name=first, object_id="vol-1", spec={"size": 1})
    second = journal.name("b")
    journal.intent(kind="volume", name=second, spec={"size": 2})  # killed before the answer
    third = journal.name("c")
    journal.intent(kind="snapshot", name=third, spec={"source_volume_id": "vol-1"})
    journal.created(kind="snapshot", name=third, object_id="snap-1", spec={})
    journal.removed(kind="snapshot", name=third)

    endpoint, entries = tracker.pending(journal.path)
    assert endpoint == "unix:///x.sock"
    assert [(e.name, e.object_id) for e in entries] == [(second, ""), (first, "vol-1")]
    assert all(e.name.startswith(tracker.PREFIX) for e in entries)


def test_journal_survives_a_torn_last_line(tmp_path: pathlib.Path) -> None:
    journal = tracker.Journal(tmp_path, endpoint="e", run_id="r2")
    name = journal.name("a")
    journal.intent(kind="volume", name=name, spec={})
    with journal.path.open("a") as stream:
        stream.write(json.dumps({"seq": 9, "kind": "volume"})[:12])
    _, entries = tracker.pending(journal.path)
    assert [e.name for e in entries] == [name]


def test_finished_journal_is_gone(tmp_path: pathlib.Path) -> None:
    journal = tracker.Journal(tmp_path, endpoint="e")
    journal.finish()
    assert tracker.journals(tmp_path) == []
