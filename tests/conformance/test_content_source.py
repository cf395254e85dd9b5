"""Volumes made from a snapshot (restore) or from another volume (clone).

Each test runs for both kinds of content source; a kind the driver does not
advertise is checked to be refused instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, checks, data, rpc
from .caps import Caps, Probe
from .ledger import Ledger
from .target import Target, check_offer, require, require_access

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(120)]

Code = rpc.Code


@dataclasses.dataclass(frozen=True)
class Kind:
    feature: str
    capability: str
    #: make a content source from an existing volume (cutting a snapshot if needed)
    make: Callable[[Ledger, csi_pb2.Volume], csi_pb2.VolumeContentSource]
    unknown: csi_pb2.VolumeContentSource


KINDS = {
    "snapshot": Kind(
        "snapshot",
        "CREATE_DELETE_SNAPSHOT",
        lambda ledger, v: build.from_snapshot(ledger.create_snapshot(v.volume_id).snapshot_id),
        build.from_snapshot("csi-conformance-no-such-snapshot"),
    ),
    "clone": Kind(
        "clone",
        "CLONE_VOLUME",
        lambda ledger, v: build.from_volume(v.volume_id),
        build.from_volume("csi-conformance-no-such-volume"),
    ),
}

BY_KIND = pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
BY_ACCESS = pytest.mark.parametrize("access", build.ACCESS_TYPES)


def _need(csi_target: Target, caps: Caps, kind: Kind) -> None:
    require(
        csi_target,
        kind.feature,
        caps.controller_has(kind.capability),
        f"controller lacks {kind.capability} (refusal checked by test_unknown_source_is_refused)",
    )


def _payload(tag: str) -> bytes:
    return data.pattern(tag, 64 * 1024)


@BY_KIND
def test_unknown_source_is_refused(ledger: Ledger, caps: Caps, kind: Kind) -> None:
    request = ledger.request(source=kind.unknown)
    if caps.controller_has(kind.capability):
        ledger.refuse_create(request, Code.NOT_FOUND)
    else:
        # Both "source not supported" and "source does not exist" are true here.
        ledger.refuse_create(request, Code.INVALID_ARGUMENT, Code.NOT_FOUND)


def test_clone_is_accepted_exactly_when_advertised(
    ledger: Ledger, caps: Caps, csi_target: Target
) -> None:
    offered = caps.controller_has("CLONE_VOLUME")
    check_offer(csi_target, "clone", offered)
    source = build.from_volume(ledger.create_volume().volume_id)
    request = ledger.request(source=source)
    if not offered:
        ledger.refuse_create(request, Code.INVALID_ARGUMENT)
        return
    assert ledger.create(request).content_source == source


@BY_KIND
@BY_ACCESS
def test_new_volume_holds_the_source_data_of_that_moment(
    ledger: Ledger,
    caps: Caps,
    csi_target: Target,
    access_probes: dict[str, Probe],
    kind: Kind,
    access: str,
) -> None:
    _need(csi_target, caps, kind)
    require_access(csi_target, access_probes, access)
    before, after, own = _payload("before"), _payload("after"), _payload("own")
    source_volume = ledger.create_volume(access=access)
    ledger.put(source_volume, access, before)
    source = kind.make(ledger, source_volume)
    copy = ledger.create_volume(access=access, source=source)
    assert copy.content_source == source, "content_source does not name the source"
    checks.reachable_from_node(caps, copy)
    ledger.put(source_volume, access, after)
    assert ledger.get(copy, access, len(before)) == before, "copy does not hold the source data"
    ledger.put(copy, access, own)
    assert ledger.get(source_volume, access, len(after)) == after, (
        "writing the copy changed its source"
    )


@BY_KIND
def test_copy_is_idempotent_and_bound_to_its_source(
    ledger: Ledger, caps: Caps, csi_target: Target, kind: Kind
) -> None:
    _need(csi_target, caps, kind)
    source = kind.make(ledger, ledger.create_volume())
    request = ledger.request(source=source)
    first = ledger.create(request)
    checks.same_volume(first, ledger.create(request))
    request.ClearField("volume_content_source")
    ledger.refuse_create(request, Code.ALREADY_EXISTS)
    request.volume_content_source.CopyFrom(kind.make(ledger, ledger.create_volume()))
    ledger.refuse_create(request, Code.ALREADY_EXISTS)


@BY_KIND
def test_copy_smaller_than_source_is_out_of_range(
    ledger: Ledger, caps: Caps, csi_target: Target, kind: Kind
) -> None:
    _need(csi_target, caps, kind)
    source_volume = ledger.create_volume()
    source = kind.make(ledger, source_volume)
    request = ledger.request(source=source)
    # required == limit, so the driver cannot round up to the source size.
    request.capacity_range.CopyFrom(build.exact(caps.volume_size // 2))
    ledger.refuse_create(request, Code.OUT_OF_RANGE)


@BY_KIND
@BY_ACCESS
def test_copy_larger_than_source_is_usable_at_full_size(
    ledger: Ledger,
    caps: Caps,
    csi_target: Target,
    access_probes: dict[str, Probe],
    kind: Kind,
    access: str,
) -> None:
    """Refused with OUT_OF_RANGE, or bigger with the data, filesystem grown by publish time."""
    _need(csi_target, caps, kind)
    require_access(csi_target, access_probes, access)
    payload = _payload("grow")
    source_volume = ledger.create_volume(access=access)
    ledger.put(source_volume, access, payload)
    source = kind.make(ledger, source_volume)
    request = ledger.request(access=access, size=caps.volume_size * 2, source=source)
    answer = rpc.outcome(lambda: ledger.create(request))
    if answer.code != Code.OK:
        assert answer.code == Code.OUT_OF_RANGE, f"larger copy answered {answer}"
        return
    copy = ledger.create(request)
    checks.fits_range(copy, request.capacity_range)
    attachment = ledger.attach(copy, access=access)
    assert data.load(access, attachment.target_path, len(payload)) == payload
    if access == "block":
        size = data.device_size(attachment.target_path)
        assert size >= caps.volume_size * 2, f"block device has {size} bytes"
    else:
        size = data.filesystem_size(attachment.target_path)
        assert size > caps.volume_size, (
            f"filesystem of the larger copy has {size} bytes: it was not grown to the volume"
        )


@BY_KIND
def test_copy_outlives_its_source_volume(
    ledger: Ledger, csi: rpc.Csi, caps: Caps, csi_target: Target, kind: Kind
) -> None:
    """Copies are independent volumes: deleting the source (if allowed) leaves them whole."""
    _need(csi_target, caps, kind)
    payload = _payload("outlive")
    source_volume = ledger.create_volume()
    ledger.put(source_volume, "mount", payload)
    copy = ledger.create_volume(source=kind.make(ledger, source_volume))
    answer = rpc.outcome(
        lambda: csi.controller.DeleteVolume(
            csi_pb2.DeleteVolumeRequest(volume_id=source_volume.volume_id)
        )
    )
    assert answer.code in (Code.OK, Code.FAILED_PRECONDITION), f"DeleteVolume answered {answer}"
    assert ledger.get(copy, "mount", len(payload)) == payload


@BY_KIND
@BY_ACCESS
def test_copy_of_a_volume_in_use_holds_its_synced_data(
    ledger: Ledger,
    caps: Caps,
    csi_target: Target,
    access_probes: dict[str, Probe],
    kind: Kind,
    access: str,
) -> None:
    """Data made durable (fsync, O_DIRECT) before the copy is in the copy, workload running."""
    _need(csi_target, caps, kind)
    require_access(csi_target, access_probes, access)
    payload = _payload("in-use")
    source_volume = ledger.create_volume(access=access)
    attachment = ledger.attach(source_volume, access=access)
    data.store(access, attachment.target_path, payload)
    copy = ledger.create_volume(access=access, source=kind.make(ledger, source_volume))
    data.store(access, attachment.target_path, _payload("after-the-copy"))
    assert ledger.get(copy, access, len(payload)) == payload
