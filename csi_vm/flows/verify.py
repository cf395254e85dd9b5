"""Flow steps that look at a native operation's effect on this node (see `effects`).

Each attaches the volumes it needs here, runs one journaled look, and detaches
them again; a look that finds the effect missing fails the flow, which rolls
back what it made.
"""

from __future__ import annotations

import dataclasses

from csi_vm.flows import engine, volume_actions, volume_steps


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


def growth(flow: engine.Flow, vol: volume_steps.Vol, *, size: int) -> Growth:
    """Attach an expanded volume and measure it; a filesystem disk's image is grown too."""
    att = volume_steps.attach(flow, vol)
    seen = flow.run("measure", {"path": att.path, "mode": vol.mode.value})
    found = Growth(
        device=seen.get("device"),
        filesystem=seen.get("filesystem"),
        wanted=volume_actions.volume_size(size, vol.mode.value),
    )
    if not found.shortfall(size):
        volume_steps.make_image(flow, att, size=size)
    volume_steps.detach(flow, att)
    return found


def same_data(
    flow: engine.Flow,
    *,
    src: volume_steps.Vol,
    new: volume_steps.Vol,
    what: str,
    answer: str,
    full: bool,
    fingerprint: bool = False,
) -> str:
    """The new volume holds the source disk: its size, then sampled (or all) blocks.

    With `fingerprint`, returns the new volume's `effects.fingerprint`; else "".
    """
    src_att = volume_steps.attach(flow, src)
    new_att = volume_steps.attach(flow, new)
    seen = compare(
        flow, src_path=src_att.path, new=new_att, size=src.size, what=what, answer=answer,
        full=full, fingerprint=fingerprint,
    )  # fmt: skip
    volume_steps.detach(flow, new_att)
    volume_steps.detach(flow, src_att)
    return seen


def compare(
    flow: engine.Flow,
    *,
    src_path: str,
    new: volume_steps.Attached,
    size: int,
    what: str,
    answer: str,
    full: bool,
    fingerprint: bool = False,
    once: bool = False,
) -> str:
    """`same_data` of volumes already attached: the source at `src_path`, the new one.

    With `once`, many compares share one read of the source's sampled blocks
    (`effects.SOURCES`); its holder forgets them when the source is let go.
    """
    seen = flow.run(
        "compare",
        {"driver": new.vol.driver, "src": src_path, "dst": new.path, "size": size,
         "what": f"{flow.vm}: {what}", "answer": answer, "full": full, "fingerprint": fingerprint,
         "once": once},
    )  # fmt: skip
    return str(seen.get("fingerprint") or "")


def whole(
    flow: engine.Flow, new: volume_steps.Vol, *, what: str, answer: str, fingerprint: str = ""
) -> None:
    """The new volume holds at least the disk: a device that large, or its image file.

    A restored volume with the `fingerprint` its snapshot was taken with must
    also show the same sampled blocks.
    """
    att = volume_steps.attach(flow, new)
    look = {"driver": new.driver, "path": att.path, "size": new.size,
            "what": f"{flow.vm}: {what}", "answer": answer, "mode": new.mode.value}  # fmt: skip
    flow.run("require", look)
    if fingerprint:
        flow.run("match", {**look, "fingerprint": fingerprint})
    volume_steps.detach(flow, att)
