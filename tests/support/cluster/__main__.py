"""`python -m tests.support.cluster up|down|env|logs` (scripts/cluster wraps it)."""

from __future__ import annotations

import argparse
import sys

from tests.support.cluster import daemons, gobuild, images, lab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="A real one-node Kubernetes on this machine, for csi-vm's tests and for "
        "trying csi-vm. Needs root. Binaries are built once per pinned version into "
        "~/.cache/csi-vm/cluster (CSI_VM_CLUSTER_CACHE); state lives in /var/lib/csi-vm-cluster "
        "(CSI_VM_CLUSTER_STATE).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "up", help="build what is missing, start the cluster, wait until the node is Ready"
    )
    sub.add_parser(
        "down", help="stop everything and remove what the cluster made (also after a kill)"
    )
    sub.add_parser(
        "env", help="print export lines for KUBECONFIG and PATH (kubectl, helm): eval them"
    )
    logs = sub.add_parser("logs", help="the last lines of each daemon's log")
    logs.add_argument("name", nargs="?", default="", help=f"one of: {', '.join(lab.ORDER)}")
    logs.add_argument("-n", "--lines", type=int, default=40)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            lab.up(say=lambda text: print(f"== {text}", flush=True))
        elif args.command == "down":
            lab.down(say=lambda text: print(f"== {text}", flush=True))
        elif args.command == "env":
            print("\n".join(lab.env_lines(lab.layout.default())))
        else:
            print(lab.logs(name=args.name, lines=args.lines))
    except (
        lab.ClusterError,
        daemons.DaemonFailed,
        gobuild.BuildFailed,
        images.ImageBuildFailed,
    ) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
