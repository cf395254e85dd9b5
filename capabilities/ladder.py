"""The one definition of csi-vm's strategy ladders.

For each VM operation, the strategies in order of preference, each with the
driver features it needs. Reports and the VM flows both call `plan`, so what
a report promises is what a flow will do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from capabilities import model

F = model.Feature


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rung:
    strategy: str
    needs: tuple[model.Feature, ...]
    native: bool
    what: str


LADDERS: dict[str, tuple[Rung, ...]] = {
    "vm_snapshot": (
        Rung(
            strategy="csi-snapshot",
            needs=(F.SNAPSHOT,),
            native=True,
            what="CSI CreateSnapshot of each disk",
        ),
        Rung(
            strategy="host-copy",
            needs=(),
            native=False,
            what="copy each disk into a new volume on a node",
        ),
    ),
    "vm_restore": (
        Rung(
            strategy="csi-restore",
            needs=(F.RESTORE_FROM_SNAPSHOT,),
            native=True,
            what="CreateVolume from the snapshot",
        ),
        Rung(
            strategy="host-copy",
            needs=(),
            native=False,
            what="copy the snapshot's data into a new volume on a node",
        ),
    ),
    "vm_clone": (
        Rung(
            strategy="csi-clone",
            needs=(F.CLONE,),
            native=True,
            what="CreateVolume with the source volume as content source",
        ),
        Rung(
            strategy="snapshot-restore",
            needs=(F.SNAPSHOT, F.RESTORE_FROM_SNAPSHOT),
            native=True,
            what="temporary CSI snapshot, then CreateVolume from it",
        ),
        Rung(
            strategy="host-copy",
            needs=(),
            native=False,
            what="copy each disk into a new volume on a node",
        ),
    ),
    "disk_expand": (
        Rung(
            strategy="csi-expand",
            needs=(F.EXPANSION_CONTROLLER,),
            native=True,
            what="ControllerExpandVolume (and NodeExpandVolume when asked)",
        ),
        Rung(
            strategy="copy-to-larger",
            needs=(),
            native=False,
            what="copy into a new, larger volume and switch the disk to it",
        ),
    ),
    "live_migration": (
        Rung(
            strategy="shared-volume",
            needs=(F.MULTI_NODE_SHARED,),
            native=True,
            what="live-migrate the VM; both nodes use the same volume",
        ),
        Rung(
            strategy="storage-migration",
            needs=(),
            native=False,
            what="live-migrate with a storage copy into a volume on the target node",
        ),
    ),
    "disk_import": (
        Rung(
            strategy="block",
            needs=(F.BLOCK,),
            native=True,
            what="raw block volume, written directly",
        ),
        Rung(
            strategy="filesystem-image",
            needs=(F.FILESYSTEM,),
            native=False,
            what="an image file on a filesystem-mode volume",
        ),
    ),
}

OPERATIONS = tuple(LADDERS)


def plan(
    features: Mapping[model.Feature, model.FeatureResult],
    *,
    trust_declared: bool,
    asserted: frozenset[model.Feature] = frozenset(),
) -> dict[str, model.Choice]:
    """Pick a strategy per VM operation.

    ``trust_declared`` is for declared-only reports (nothing was tested); a
    verified result always wins over a declaration, except that a feature
    that works but is not declared is used only when asserted (sidecars on
    Kubernetes gate on declarations). Cross-node sharing is only
    trusted when verified or explicitly asserted by the operator: migrating
    without a storage copy over storage that is not really shared corrupts
    the guest's disk.
    """
    return {
        op: _choose(op, rungs, features, trust_declared, asserted) for op, rungs in LADDERS.items()
    }


def _choose(
    op: str,
    rungs: tuple[Rung, ...],
    features: Mapping[model.Feature, model.FeatureResult],
    trust_declared: bool,
    asserted: frozenset[model.Feature],
) -> model.Choice:
    missing_notes: list[str] = []
    for rung in rungs:
        missing = [f for f in rung.needs if not _usable(f, features, trust_declared, asserted)]
        if not missing:
            return model.Choice(
                strategy=rung.strategy,
                native=rung.native,
                reason=_reason(rung, features, asserted, missing_notes),
            )
        missing_notes.append(
            f"{rung.strategy} needs {', '.join(_why(f, features) for f in missing)}"
        )
    # The last rung of a ladder needs nothing but basic volumes; reaching here
    # means even that failed (for disk_import: neither block nor filesystem).
    return model.Choice(
        strategy="unavailable",
        native=False,
        reason="; ".join(missing_notes) + f": no way to {op.replace('_', ' ')} on this driver",
    )


def _usable(
    feature: model.Feature,
    features: Mapping[model.Feature, model.FeatureResult],
    trust_declared: bool,
    asserted: frozenset[model.Feature],
) -> bool:
    if feature in asserted:
        return True
    result = features.get(feature)
    if result is None:
        return False
    if result.undeclared:
        return False
    if feature is F.MULTI_NODE_SHARED:
        return result.verified is True
    if feature is F.FILESYSTEM and trust_declared and result.verified is None:
        # CSI has no capability bit for filesystem access, and every driver
        # in the public list offers it: unknown is taken as yes until tested.
        return True
    return result.works(trust_declared=trust_declared)


def usable(
    feature: model.Feature,
    features: Mapping[model.Feature, model.FeatureResult],
    *,
    asserted: frozenset[model.Feature] = frozenset(),
) -> bool:
    """Whether a flow may rely on a feature of a verified report (as `plan` decides)."""
    return _usable(feature, features, False, asserted)


def _why(feature: model.Feature, features: Mapping[model.Feature, model.FeatureResult]) -> str:
    result = features.get(feature)
    if result is not None and result.undeclared:
        return f"{feature} (works, undeclared: assert it in the config to use it)"
    return str(feature)


def _reason(
    rung: Rung,
    features: Mapping[model.Feature, model.FeatureResult],
    asserted: frozenset[model.Feature],
    skipped: list[str],
) -> str:
    basis = []
    for f in rung.needs:
        result = features.get(f)
        if f in asserted:
            basis.append(f"{f} asserted by config")
        elif result is None or (result.verified is None and not result.declared):
            basis.append(f"{f} assumed, not tested")
        else:
            basis.append(f"{f} {'verified' if result.verified else 'declared'}")
    parts = [rung.what]
    if basis:
        parts.append("(" + ", ".join(basis) + ")")
    if skipped:
        parts.append("(fallback, since " + "; ".join(skipped) + ")")
    return " ".join(parts)
