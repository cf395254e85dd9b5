"""Every journaled action by name, with its undo: what a flow's steps run and `resume` replays.

The actions live with what they act on: `volume_actions` (CSI volumes),
`vm_actions` (running VMs), `migration_actions` (live migration) and `effects`
(read-only looks at volumes, nothing to undo). A journal names its steps, so
a name once written must keep meaning the same action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from csi_vm import errors
from csi_vm.flows import (
    context,
    effects,
    fanout_member,
    migration_actions,
    vm_actions,
    volume_actions,
)

Data = dict[str, Any]

_DO: dict[str, Callable[[context.Env, Data, str, int], Data]] = {
    **volume_actions.DO,
    **vm_actions.DO,
    **migration_actions.DO,
    **effects.DO,
    **fanout_member.DO,
}
_UNDO: dict[str, Callable[[context.Env, Data], None]] = {
    **volume_actions.UNDO,
    **vm_actions.UNDO,
    **migration_actions.UNDO,
    **fanout_member.UNDO,
}


def do(env: context.Env, action: str, data: Data, *, flow_id: str, seq: int) -> Data:
    handler = _DO.get(action)
    if handler is None:
        raise errors.DataSafetyError(
            f"unknown journal action {action!r}: is this csi-vm older than the store?"
        )
    return handler(env, data, flow_id, seq)


def undo(env: context.Env, action: str, data: Data) -> None:
    handler = _UNDO.get(action)
    if handler is not None:
        handler(env, data)
