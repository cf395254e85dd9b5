"""A running VM's Block disk on a class without expansion: block copy into a larger claim.

The controller's side of the online copy-to-larger (the agent's is
`csi_vm.agent.guest_copy`): the larger claim and a holder Pod that has the
kubelet publish it on the VM's node, then ``resize.targetClaim`` for the
agent, which has the launcher's libvirt mirror the disk into it, switch the
guest over (pivot) and tell it the new size, and says so in the VM's
``status.pivots``. Then the VM's disk names the new claim, and the old one
is deleted: Kubernetes keeps a claim a Pod uses until that Pod is gone, so
it goes with the launcher Pod at the VM's next stop. The holder Pod keeps
the new claim published for the running guest until then as well.
"""

from __future__ import annotations

from capabilities import model
from csi_vm.controller import context, online, online_backup, storage
from csi_vm.crd import kinds
from csi_vm.crd import models as crd

Json = context.Json
PIVOTED, COPY_FAILED = "Pivoted", "CopyFailed"


def applies(ctx: context.Context, vm: Json, mode: crd.VolumeMode) -> str:
    """The VM's node when its guest runs in a launcher Pod and the disk is Block, else ""."""
    return online.runs_in_launcher(ctx, vm) if mode is crd.VolumeMode.BLOCK else ""


def pivot(vm: Json, disk: str) -> Json:
    """What the agent wrote of ``disk``'s copy under the running guest ({} before)."""
    return dict(((vm.get("status") or {}).get("pivots") or {}).get(disk) or {})


def step(ctx: context.Context, vm: Json, disk: str, target: storage.Target, *, node: str) -> str:
    """The larger claim and its holder on ``node``; the copy's phase as the agent reports it."""
    done = pivot(vm, disk)
    ours = done.get("claimName") == target.name
    if ours and done.get("phase") == COPY_FAILED:
        online_backup.release(ctx, vm, [target.name])
        online_backup.delete_own(ctx, vm, kinds.PVC, target.name)
        return COPY_FAILED
    storage.ensure(ctx.objs, kinds.PVC, storage.claim(target))
    online_backup.hold(ctx, target, node=node)
    return PIVOTED if ours and done.get("phase") == PIVOTED else "Copying"


def reason(choice: model.Choice) -> str:
    return (
        f"{choice.reason}; the VM runs: a block copy into the larger claim under the running "
        "guest, then a pivot"
    )


def release_holders(ctx: context.Context, vm: Json) -> None:
    """The VM stopped: its disks' claims need no holder Pod of a pivot any more."""
    claims = [d.claim_of(crd.meta(vm).name) for d in crd.spec(vm, crd.VMSpec).disks]
    online_backup.release(ctx, vm, claims)
