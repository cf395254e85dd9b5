"""CreateVolume and DeleteVolume: arguments, capacity, idempotency, access types and modes."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Callable

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, checks, rpc
from .caps import Caps, Probe
from .ledger import Ledger
from .listing import list_volume_ids
from .target import Target, check_offer, require

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code
MiB = 1024 * 1024
#: Simultaneous identical calls in the concurrency tests.
CONCURRENT_CALLS = 8


@pytest.fixture(autouse=True)
def _needs_create_delete(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "create-delete",
        caps.controller_has("CREATE_DELETE_VOLUME"),
        "controller lacks CREATE_DELETE_VOLUME",
    )


def _drop_name(r: csi_pb2.CreateVolumeRequest) -> None:
    r.name = ""


def _drop_capabilities(r: csi_pb2.CreateVolumeRequest) -> None:
    del r.volume_capabilities[:]


def _drop_access_type(r: csi_pb2.CreateVolumeRequest) -> None:
    r.volume_capabilities[0].ClearField("mount")


def _drop_access_mode(r: csi_pb2.CreateVolumeRequest) -> None:
    r.volume_capabilities[0].ClearField("access_mode")


def _unknown_access_mode(r: csi_pb2.CreateVolumeRequest) -> None:
    r.volume_capabilities[0].access_mode.mode = build.Mode.Value("UNKNOWN")


def _unknown_fs_type(r: csi_pb2.CreateVolumeRequest) -> None:
    r.volume_capabilities[0].mount.fs_type = "csi-conformance-nofs"


def _negative_size(r: csi_pb2.CreateVolumeRequest) -> None:
    r.capacity_range.required_bytes = -MiB


def _limit_below_required(r: csi_pb2.CreateVolumeRequest) -> None:
    r.capacity_range.limit_bytes = r.capacity_range.required_bytes // 2


BAD_REQUESTS: dict[str, tuple[Callable[[csi_pb2.CreateVolumeRequest], None], tuple[Code, ...]]] = {
    "no-name": (_drop_name, (Code.INVALID_ARGUMENT,)),
    "no-capabilities": (_drop_capabilities, (Code.INVALID_ARGUMENT,)),
    "no-access-type": (_drop_access_type, (Code.INVALID_ARGUMENT,)),
    "no-access-mode": (_drop_access_mode, (Code.INVALID_ARGUMENT,)),
    "unknown-access-mode": (_unknown_access_mode, (Code.INVALID_ARGUMENT,)),
    "unknown-fs-type": (_unknown_fs_type, (Code.INVALID_ARGUMENT,)),
    "negative-size": (_negative_size, (Code.INVALID_ARGUMENT, Code.OUT_OF_RANGE)),
    "limit-below-required": (_limit_below_required, (Code.INVALID_ARGUMENT, Code.OUT_OF_RANGE)),
}


@pytest.mark.parametrize(("spoil", "codes"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_create_refuses_bad_request(
    ledger: Ledger,
    spoil: Callable[[csi_pb2.CreateVolumeRequest], None],
    codes: tuple[Code, ...],
) -> None:
    request = ledger.request()
    spoil(request)
    ledger.refuse_create(request, *codes)


RANGES: dict[str, Callable[[int], csi_pb2.CapacityRange | None]] = {
    "no-range": lambda size: None,
    "required": lambda size: build.capacity(required=size),
    "limit": lambda size: build.capacity(limit=size),
    "exact": build.exact,
}


@pytest.mark.parametrize("make_range", RANGES.values(), ids=RANGES.keys())
def test_create_returns_volume_within_range(
    ledger: Ledger,
    caps: Caps,
    make_range: Callable[[int], csi_pb2.CapacityRange | None],
) -> None:
    request = ledger.request()
    wanted = make_range(caps.volume_size)
    request.ClearField("capacity_range")
    if wanted is not None:
        request.capacity_range.CopyFrom(wanted)
    volume = ledger.create(request)
    assert volume.volume_id, "volume_id is required"
    assert not volume.HasField("content_source"), "an empty volume claims a content source"
    checks.fits_range(volume, request.capacity_range)
    checks.reachable_from_node(caps, volume)


def test_create_is_idempotent(ledger: Ledger) -> None:
    request = ledger.request()
    first = ledger.create(request)
    second = ledger.create(request)
    checks.same_volume(first, second)


def test_create_with_a_range_the_volume_fits_returns_it(ledger: Ledger, caps: Caps) -> None:
    request = ledger.request()
    request.capacity_range.CopyFrom(build.exact(caps.volume_size))
    first = ledger.create(request)
    request.capacity_range.CopyFrom(
        build.capacity(required=caps.volume_size // 2, limit=caps.volume_size * 2)
    )
    checks.same_volume(first, ledger.create(request))


INCOMPATIBLE: dict[str, Callable[[csi_pb2.CreateVolumeRequest, int], None]] = {
    "larger-required": lambda r, size: r.capacity_range.CopyFrom(build.exact(size * 2)),
    "smaller-limit": lambda r, size: r.capacity_range.CopyFrom(build.capacity(limit=size // 2)),
}


@pytest.mark.parametrize("change", INCOMPATIBLE.values(), ids=INCOMPATIBLE.keys())
def test_create_reusing_name_incompatibly_is_already_exists(
    ledger: Ledger, caps: Caps, change: Callable[[csi_pb2.CreateVolumeRequest, int], None]
) -> None:
    request = ledger.request()
    request.capacity_range.CopyFrom(build.exact(caps.volume_size))
    ledger.create(request)
    change(request, caps.volume_size)
    ledger.refuse_create(request, Code.ALREADY_EXISTS)


def _fill(prefix: str, length: int) -> str:
    name = f"{prefix}{uuid.uuid4().hex}"
    return (name * (length // len(name) + 1))[:length]


NAMES: dict[str, Callable[[], str]] = {
    # Spec size limit for strings: 128 bytes.
    "128-bytes": lambda: _fill("csi-conformance-", 128),
    # Any Unicode without control characters is a valid name, including
    # characters that mean something in paths or shells.
    "spaces-and-accents": lambda: f"csi conformance é ü ✓ {uuid.uuid4().hex[:8]}",
    "slashes-and-dots": lambda: f"csi-conformance/../../{uuid.uuid4().hex[:8]}/.",
    "shell-characters": lambda: f"csi-conformance $(true); `x` 'q' \"d\" *?{uuid.uuid4().hex[:8]}",
}


@pytest.mark.parametrize("make_name", NAMES.values(), ids=NAMES.keys())
def test_create_accepts_any_valid_name(ledger: Ledger, make_name: Callable[[], str]) -> None:
    name = make_name()
    assert len(name.encode()) <= 128
    first = ledger.create_volume(name=name)
    checks.same_volume(first, ledger.create_volume(name=name))
    other = ledger.create_volume(name=name[:-1] + ("x" if name[-1] != "x" else "y"))
    assert other.volume_id != first.volume_id, "two names gave one volume"


def test_create_refuses_impossible_size(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    size = 2**62  # 4 EiB: no backend the suite will meet can provide it
    if caps.controller_has("GET_CAPACITY"):
        answer = csi.controller.GetCapacity(csi_pb2.GetCapacityRequest())
        if answer.HasField("maximum_volume_size"):
            # Twice the maximum: free space moves while other processes
            # write and delete, and a margin of one MiB made this flaky.
            size = 2 * answer.maximum_volume_size.value + MiB
    ledger.refuse_create(ledger.request(size=size), Code.OUT_OF_RANGE, Code.RESOURCE_EXHAUSTED)


def test_delete_refuses_missing_id(csi: rpc.Csi) -> None:
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest())


def test_delete_of_unknown_volume_succeeds(csi: rpc.Csi) -> None:
    csi.controller.DeleteVolume(
        csi_pb2.DeleteVolumeRequest(volume_id=f"csi-conformance-unknown-{uuid.uuid4().hex}")
    )


def test_delete_is_idempotent_and_final(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    volume = ledger.create_volume()
    delete = csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id)
    csi.controller.DeleteVolume(delete)
    csi.controller.DeleteVolume(delete)
    with rpc.refused(Code.NOT_FOUND):
        csi.controller.ValidateVolumeCapabilities(
            csi_pb2.ValidateVolumeCapabilitiesRequest(
                volume_id=volume.volume_id, volume_capabilities=[build.capability()]
            )
        )
    if caps.controller_has("GET_VOLUME"):
        with rpc.refused(Code.NOT_FOUND):
            csi.controller.ControllerGetVolume(
                csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id)
            )
    if caps.controller_has("LIST_VOLUMES"):
        assert volume.volume_id not in list_volume_ids(csi)


def test_name_is_free_again_after_delete(ledger: Ledger, csi: rpc.Csi) -> None:
    request = ledger.request()
    first = ledger.create(request)
    csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=first.volume_id))
    request.capacity_range.CopyFrom(build.exact(request.capacity_range.required_bytes * 2))
    second = ledger.create(request)
    checks.fits_range(second, request.capacity_range)


@pytest.mark.parametrize("access", build.ACCESS_TYPES)
def test_access_type_is_accepted_or_refused_properly(
    ledger: Ledger, csi_target: Target, access: str
) -> None:
    request = ledger.request(access=access)
    answer = rpc.outcome(lambda: ledger.create(request))
    accepted = answer.code == Code.OK
    assert answer.code in (Code.OK, Code.INVALID_ARGUMENT), f"refused with {answer}"
    if access == "block":
        check_offer(csi_target, "block", accepted)
    elif csi_target.expected is not None:
        assert accepted, "the local driver must accept filesystem access"


MULTI_NODE_MODES = ("MULTI_NODE_READER_ONLY", "MULTI_NODE_SINGLE_WRITER", "MULTI_NODE_MULTI_WRITER")
MODES = ("SINGLE_NODE_WRITER", "SINGLE_NODE_READER_ONLY", *MULTI_NODE_MODES)
NEW_SINGLE_NODE_MODES = ("SINGLE_NODE_SINGLE_WRITER", "SINGLE_NODE_MULTI_WRITER")


@pytest.mark.parametrize("mode", MODES + NEW_SINGLE_NODE_MODES)
def test_access_mode_is_accepted_or_refused_properly(
    ledger: Ledger, caps: Caps, csi_target: Target, mode: str
) -> None:
    request = ledger.request(mode=mode)
    answer = rpc.outcome(lambda: ledger.create(request))
    accepted = answer.code == Code.OK
    assert answer.code in (Code.OK, Code.INVALID_ARGUMENT), f"refused with {answer}"
    if mode == "SINGLE_NODE_WRITER":
        assert accepted, "SINGLE_NODE_WRITER must always be accepted"
    elif mode in MULTI_NODE_MODES:
        check_offer(csi_target, "multi-node", accepted)
    elif mode in NEW_SINGLE_NODE_MODES and caps.controller_has("SINGLE_NODE_MULTI_WRITER"):
        assert accepted, f"{mode} refused though SINGLE_NODE_MULTI_WRITER is advertised"


MIXES: dict[str, tuple[str, tuple[str, str], tuple[str, str]]] = {
    "mount-and-block": ("block", ("mount", "SINGLE_NODE_WRITER"), ("block", "SINGLE_NODE_WRITER")),
    "single-and-multi-node": (
        "multi-node",
        ("mount", "SINGLE_NODE_WRITER"),
        ("mount", "MULTI_NODE_MULTI_WRITER"),
    ),
}


@pytest.mark.parametrize(("probe", "first", "second"), MIXES.values(), ids=MIXES.keys())
def test_every_requested_capability_must_be_supported(
    ledger: Ledger,
    access_probes: dict[str, Probe],
    probe: str,
    first: tuple[str, str],
    second: tuple[str, str],
) -> None:
    """The SP must provision for ALL listed capabilities, or refuse the whole request."""
    request = ledger.request()
    del request.volume_capabilities[:]
    request.volume_capabilities.extend([build.capability(*first), build.capability(*second)])
    if access_probes[probe].accepted:
        ledger.create(request)
    else:
        ledger.refuse_create(request, Code.INVALID_ARGUMENT)


def test_concurrent_creates_of_one_name_make_one_volume(ledger: Ledger) -> None:
    """A CO that lost track may send the same CreateVolume several times at once."""
    request = ledger.request()
    with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENT_CALLS) as pool:
        calls = [
            pool.submit(rpc.outcome_of, lambda: ledger.create(request))
            for _ in range(CONCURRENT_CALLS)
        ]
        answers = [call.result() for call in calls]
    ids = {volume.volume_id for code, volume in answers if code == Code.OK}
    codes = {code for code, _ in answers}
    assert codes <= {Code.OK, Code.ABORTED}, f"concurrent creates answered {codes}"
    assert len(ids) <= 1, f"one name gave {len(ids)} volumes"
    # Once the dust settles the name must still resolve to that one volume.
    final = ledger.create(request)
    assert not ids or final.volume_id in ids


def test_requisite_topology_is_honoured_or_refused(ledger: Ledger, caps: Caps) -> None:
    """A volume must be reachable from one of the requisite topologies, or not be made."""
    if not (caps.topology and caps.node_topology):
        pytest.skip("the driver reports no topology")
    nowhere = {key: "csi-conformance-nowhere" for key in caps.node_topology}
    request = ledger.request()
    request.accessibility_requirements.CopyFrom(
        csi_pb2.TopologyRequirement(requisite=[csi_pb2.Topology(segments=nowhere)])
    )
    code, volume = rpc.outcome_of(lambda: ledger.create(request))
    if code != Code.OK:
        assert code in (Code.RESOURCE_EXHAUSTED, Code.INVALID_ARGUMENT), code
        return
    assert volume.accessible_topology, "volume made without saying where it is reachable"
    assert all(dict(t.segments) == nowhere for t in volume.accessible_topology), (
        f"asked for {nowhere} only, got {[dict(t.segments) for t in volume.accessible_topology]}"
    )
