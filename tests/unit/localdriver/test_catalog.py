"""The SQLite catalogue: rows, name uniqueness and pagination tokens."""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import Iterator

import pytest

from csi_vm import errors
from csi_vm.localdriver import attachstate, catalog, db, faults, model


@pytest.fixture
def database(tmp_path: pathlib.Path) -> Iterator[db.Database]:
    opened = db.Database(tmp_path / "state.db")
    yield opened
    opened.close()


def _volume(name: str, **changes: object) -> model.Volume:
    base = model.Volume(
        volume_id=f"vol-{name}",
        name=name,
        size=1 << 20,
        pinned_node="n",
        source=model.Source("snapshot", "snap-1"),
        parameters={"p": "1"},
        mutable={"tier": "fast"},
        created_ns=1,
    )
    return model.Volume(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_volume_round_trip(database: db.Database) -> None:
    with database.transaction() as cur:
        catalog.insert_volume(cur, _volume("a"))
    with database.read() as cur:
        got = catalog.get_volume(cur, "vol-a")
        assert catalog.get_volume_by_name(cur, "a") == got
    assert got is not None and got.seq > 0
    assert got == _volume("a", seq=got.seq)


def test_names_are_unique(database: db.Database) -> None:
    with database.transaction() as cur:
        catalog.insert_volume(cur, _volume("a"))
    with pytest.raises(sqlite3.IntegrityError), database.transaction() as cur:
        catalog.insert_volume(cur, _volume("a", volume_id="vol-other"))


def test_pages_and_tokens_survive_deletion(database: db.Database) -> None:
    with database.transaction() as cur:
        for i in range(5):
            catalog.insert_volume(cur, _volume(f"v{i}"))
    with database.read() as cur:
        first = catalog.list_volumes(cur, token="", limit=2)
    assert [v.name for v in first.items] == ["v0", "v1"] and first.next_token
    with database.transaction() as cur:
        catalog.delete_volume(cur, "vol-v1")  # the entry the token points after
    with database.read() as cur:
        second = catalog.list_volumes(cur, token=first.next_token, limit=2)
        last = catalog.list_volumes(cur, token=second.next_token, limit=2)
    assert [v.name for v in second.items] == ["v2", "v3"]
    assert [v.name for v in last.items] == ["v4"] and last.next_token == ""


@pytest.mark.parametrize("token", ["garbage", "-1", "99", "1" * 30])
def test_tokens_not_issued_here_are_refused(database: db.Database, token: str) -> None:
    with database.transaction() as cur:
        catalog.insert_volume(cur, _volume("a"))
    with pytest.raises(faults.InvalidToken), database.read() as cur:
        catalog.list_volumes(cur, token=token, limit=0)


def test_state_dir_has_one_owner(database: db.Database) -> None:
    with database.transaction() as cur:
        attachstate.claim_state_dir(cur, mode="node:a")
        attachstate.claim_state_dir(cur, mode="node:a")  # the same owner again is fine
    with pytest.raises(errors.InvalidInput, match="belongs to"), database.transaction() as cur:
        attachstate.claim_state_dir(cur, mode="shared")


def test_capability_json_round_trip() -> None:
    cap = model.Capability(
        block=False,
        mode=model.AccessMode.MULTI_NODE_READER_ONLY,
        fs_type="xfs",
        mount_flags=("noatime",),
    )
    assert model.Capability.from_json(cap.to_json()) == cap
    assert cap.mode.multi_node and cap.mode.read_only
