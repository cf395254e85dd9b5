"""Flow steps that look at a native operation's effect on this node (see `effects`).

Each attaches the volumes it needs here, runs one journaled look, and detaches
them again; a look that finds the effect missing fails the flow, which rolls
back what it made.
"""

from __future__ import annotations

import dataclasses

from csi_vm.flows import actions, engine, steps


@dataclasses.dataclass(frozen=True, kw_only=True)
class Growth:
    """What the node sees of a volume after an expansion."""

    device: int | None  # None: a filesystem with no block device under it
    filesystem: int | None  # None for block volumes
    wanted: int  # the volume size the expansion asked for

    def shortfall(self, disk_size: int) -> str:
        """Why the node does not show the growth, or "" when it does."""
        if self.device is not None and self.device < self.wanted:
            return f"the node sees a {self.device}-byte device"
        if self.filesystem is not None and self.filesystem < disk_size:
            return f"the node sees a {self.filesystem}-byte filesystem"
        return ""


def growth(flow: engine.Flow, vol: steps.Vol, *, size: int) -> Growth:
    """Attach an expanded volume and measure it; a filesystem disk's image is grown too."""
    att = steps.attach(flow, vol)
    seen = flow.run("measure", {"path": att.path, "mode": vol.mode.value})
    found = Growth(
        device=seen.get("device"),
        filesystem=seen.get("filesystem"),
        wanted=actions.volume_size(size, vol.mode.value),
    )
    if not found.shortfall(size):
        steps.make_image(flow, att, size=size)
    steps.detach(flow, att)
    return found


def same_data(
    flow: engine.Flow, *, src: steps.Vol, new: steps.Vol, what: str, answer: str, full: bool
) -> None:
    """The new volume holds the source disk: its size, then sampled (or all) blocks."""
    src_att = steps.attach(flow, src)
    new_att = steps.attach(flow, new)
    flow.run(
        "compare",
        {"driver": new.driver, "src": src_att.path, "dst": new_att.path, "size": src.size,
         "what": f"{flow.vm}: {what}", "answer": answer, "full": full},
    )  # fmt: skip
    steps.detach(flow, new_att)
    steps.detach(flow, src_att)


def whole(flow: engine.Flow, new: steps.Vol, *, what: str, answer: str) -> None:
    """The new volume holds at least the disk: a device that large, or its image file."""
    att = steps.attach(flow, new)
    flow.run(
        "require",
        {"driver": new.driver, "path": att.path, "size": new.size, "what": f"{flow.vm}: {what}",
         "answer": answer, "mode": new.mode.value},
    )  # fmt: skip
    steps.detach(flow, att)
