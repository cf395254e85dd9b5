"""`python -m tests.support.cluster up|down|env|logs` (scripts/cluster wraps it)."""

from __future__ import annotations

import argparse
import sys
import time

from tests.support.cluster import daemons, gobuild, images, lab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="A real two-node Kubernetes on this machine, for csi-vm's tests and for "
        "trying csi-vm; the second node is a network, mount and UTS namespace of its own. "
        "Needs root. Binaries are built once per pinned version into "
        "~/.cache/csi-vm/cluster (CSI_VM_CLUSTER_CACHE); state lives in /var/lib/csi-vm-cluster "
        "(CSI_VM_CLUSTER_STATE).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", help="build what is missing, start the cluster, wait until the nodes are Ready"
    )
    up.add_argument(
        "--nodes",
        type=int,
        choices=(1, 2),
        default=lab.DEFAULT_NODES,
        help="how many nodes (default %(default)s); a node already up stays up",
    )
    sub.add_parser(
        "down", help="stop everything and remove what the cluster made (also after a kill)"
    )
    sub.add_parser(
        "env",
        help="print export lines for KUBECONFIG, PATH (kubectl, helm) and CSI_VM_NODE2 "
        "(a prefix that runs a command on node 2): eval them",
    )
    logs = sub.add_parser("logs", help="the last lines of each daemon's log")
    names = lab.all_daemons(lab.layout.default())
    logs.add_argument("name", nargs="?", default="", help=f"one of: {', '.join(names)}")
    logs.add_argument("-n", "--lines", type=int, default=40)
    args = parser.parse_args(argv)
    started = time.monotonic()

    def say(text: str) -> None:
        # Seconds since the start: where `up` and `down` spend their time.
        print(f"== {time.monotonic() - started:6.1f}s {text}", flush=True)

    try:
        if args.command == "up":
            lab.up(say=say, nodes=args.nodes)
        elif args.command == "down":
            lab.down(say=say)
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
