"""Questions the capability RPCs cannot answer, asked once per session.

CSI has no capability bit for block access or for multi-node access modes; a
driver tells by accepting or refusing them at CreateVolume.
"""

from __future__ import annotations

import contextlib
import uuid

import grpc

from csi_vm.csi.pb import csi_pb2

from . import build, rpc
from .caps import Caps, Probe

#: What each probe asks CreateVolume for.
PROBES = {
    "block": ("block", "SINGLE_NODE_WRITER"),
    "multi-node": ("mount", "MULTI_NODE_MULTI_WRITER"),
}


def delete_volume_quietly(csi: rpc.Csi, volume_id: str) -> None:
    with contextlib.suppress(grpc.RpcError):
        csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume_id))


def _probe(csi: rpc.Csi, caps: Caps, access: str, mode: str) -> Probe:
    request = build.create_request(
        caps,
        f"csi-conformance-probe-{uuid.uuid4().hex[:12]}",
        capabilities=[build.capability(access, mode)],
    )
    try:
        volume = csi.controller.CreateVolume(request).volume
    except grpc.RpcError as err:
        return Probe(accepted=False, code=err.code(), details=err.details() or "")
    delete_volume_quietly(csi, volume.volume_id)
    return Probe(accepted=True, code=grpc.StatusCode.OK, details="")


def access(csi: rpc.Csi, caps: Caps) -> dict[str, Probe]:
    if not caps.controller_has("CREATE_DELETE_VOLUME"):
        unknown = Probe(accepted=False, code=grpc.StatusCode.UNIMPLEMENTED, details="")
        return dict.fromkeys(PROBES, unknown)
    return {name: _probe(csi, caps, *what) for name, what in PROBES.items()}
