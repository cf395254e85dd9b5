"""Concurrent RPCs: parallel creates and deletes stay consistent; races answer ABORTED."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent import futures
from typing import TypeVar

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

WORKERS = 8
T = TypeVar("T")


def _parallel(calls: list[Callable[[], T]]) -> list[T | grpc.RpcError]:
    def guarded(call: Callable[[], T]) -> T | grpc.RpcError:
        try:
            return call()
        except grpc.RpcError as err:
            return err

    with futures.ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(guarded, calls))


def test_parallel_creates_and_deletes(driver: driverproc.DriverProcess, stubs: csi.Stubs) -> None:
    names = [f"parallel-{i}" for i in range(48)]
    created = _parallel([lambda n=n: csi.create_volume(stubs, n, size=csi.GiB) for n in names])
    volumes = [v for v in created if isinstance(v, pb.Volume)]
    assert len(volumes) == len(names), [e for e in created if isinstance(e, grpc.RpcError)]
    ids = {v.volume_id for v in volumes}
    assert len(ids) == len(names)
    assert csi.list_volume_ids(stubs) == ids

    deletes = [
        lambda i=i: stubs.controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=i)) for i in ids
    ]
    assert not [r for r in _parallel(deletes) if isinstance(r, grpc.RpcError)]
    assert csi.list_volume_ids(stubs) == set()
    assert os.listdir(driver.state_dir / "volumes") == []


def test_racing_creates_of_one_name_make_one_volume(
    driver: driverproc.DriverProcess, stubs: csi.Stubs
) -> None:
    results = _parallel([lambda: csi.create_volume(stubs, "contested")] * 16)
    ok = {r.volume_id for r in results if isinstance(r, pb.Volume)}
    refused = {r.code() for r in results if isinstance(r, grpc.RpcError)}  # type: ignore[attr-defined]
    assert len(ok) == 1
    assert refused <= {grpc.StatusCode.ABORTED}
    assert csi.list_volume_ids(stubs) == ok
    assert len(os.listdir(driver.state_dir / "volumes")) == 1


def test_parallel_snapshots_of_one_volume(stubs: csi.Stubs) -> None:
    vol = csi.create_volume(stubs, "snapped", size=16 * csi.MiB)
    results = _parallel(
        [lambda i=i: csi.create_snapshot(stubs, f"snap-{i}", vol.volume_id) for i in range(16)]
    )
    assert all(isinstance(r, pb.Snapshot) for r in results), results
    assert len(csi.list_snapshot_ids(stubs)) == 16


def test_delete_racing_snapshots_never_corrupts(
    driver: driverproc.DriverProcess, stubs: csi.Stubs
) -> None:
    """A delete during snapshots either waits its turn (ABORTED) or wins cleanly."""
    vol = csi.create_volume(stubs, "victim", size=16 * csi.MiB)
    calls: list[Callable[[], object]] = [
        lambda i=i: csi.create_snapshot(stubs, f"race-{i}", vol.volume_id) for i in range(8)
    ]
    calls.insert(
        4, lambda: stubs.controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=vol.volume_id))
    )
    results = _parallel(calls)
    codes = {r.code() for r in results if isinstance(r, grpc.RpcError)}  # type: ignore[attr-defined]
    assert codes <= {grpc.StatusCode.ABORTED, grpc.StatusCode.NOT_FOUND}
    snapshots = csi.list_snapshot_ids(stubs)
    images = {n.removesuffix(".img") for n in os.listdir(driver.state_dir / "snapshots")}
    assert snapshots == images  # every listed snapshot has its image, and no image is orphaned
