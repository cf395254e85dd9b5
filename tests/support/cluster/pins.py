"""Every third-party program the test cluster and the tests run, one pinned release each.

Kubernetes 1.34 is the newest release that runs on cgroup v1 without opting
in (1.35's kubelet refuses unless failCgroupV1 is false, and 1.35 is the
last release for containerd 1.x); this machine kind has cgroup v1 only and
Debian 12 ships containerd 1.6.20, runc 1.1.5 and the CNI plugins 1.1.1, so
those come from Debian and are not built. The kubernetes-csi sidecars are
the releases the Go module proxy serves; each is built against its own
go.mod, so their client-go being newer than the server is the ordinary
version skew sidecars support.
"""

from __future__ import annotations

import dataclasses

KUBERNETES = "v1.34.4"
# The staging modules (k8s.io/api, client-go, ...) of that release.
STAGING = "v0.34.4"


@dataclasses.dataclass(frozen=True)
class GoProgram:
    """One Go program: the module and version that hold it, and its packages."""

    name: str
    module: str
    version: str
    # Package path -> binary name.
    packages: tuple[tuple[str, str], ...]
    # A main package written by the build when the module ships none.
    main_source: str = ""
    # -X settings the upstream release build passes to the linker.
    ldflags: tuple[str, ...] = ()


_K8S_VERSION_FLAGS = tuple(
    f"-X k8s.io/component-base/version.{key}={value}"
    for key, value in (
        ("gitVersion", KUBERNETES),
        ("gitMajor", KUBERNETES[1:].split(".", maxsplit=1)[0]),
        ("gitMinor", KUBERNETES.split(".")[1]),
        ("gitTreeState", "clean"),
        ("buildDate", "1970-01-01T00:00:00Z"),
    )
)

KUBE = GoProgram(
    name="kubernetes",
    module="k8s.io/kubernetes",
    version=KUBERNETES,
    packages=tuple(
        (f"k8s.io/kubernetes/cmd/{cmd}", cmd)
        for cmd in (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
            "kube-proxy",
            "kubectl",
        )
    ),
    ldflags=_K8S_VERSION_FLAGS,
)

# etcd's own main lives in a module the proxy does not serve; the server
# module exports the same entry point, so a two-line main calls it.
ETCD = GoProgram(
    name="etcd",
    module="go.etcd.io/etcd/server/v3",
    version="v3.6.16",
    packages=((".", "etcd"),),
    main_source=(
        "package main\n\n"
        'import (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\n'
        "func main() { etcdmain.Main(os.Args) }\n"
    ),
)

PROVISIONER = GoProgram(
    name="external-provisioner",
    module="github.com/kubernetes-csi/external-provisioner/v6",
    version="v6.3.0",
    packages=(
        (
            "github.com/kubernetes-csi/external-provisioner/v6/cmd/csi-provisioner",
            "csi-provisioner",
        ),
    ),
)
ATTACHER = GoProgram(
    name="external-attacher",
    module="github.com/kubernetes-csi/external-attacher/v4",
    version="v4.12.0",
    packages=(("github.com/kubernetes-csi/external-attacher/v4/cmd/csi-attacher", "csi-attacher"),),
)
RESIZER = GoProgram(
    name="external-resizer",
    module="github.com/kubernetes-csi/external-resizer",
    version="v1.14.0",
    packages=(("github.com/kubernetes-csi/external-resizer/cmd/csi-resizer", "csi-resizer"),),
)
SNAPSHOTTER = GoProgram(
    name="external-snapshotter",
    module="github.com/kubernetes-csi/external-snapshotter/v8",
    version="v8.6.0",
    packages=(
        (
            "github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter",
            "csi-snapshotter",
        ),
        (
            "github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller",
            "snapshot-controller",
        ),
    ),
)
# The VolumeSnapshot and VolumeGroupSnapshot CRDs ship in the client module,
# at the same release as the snapshotter.
SNAPSHOT_CLIENT_MODULE = "github.com/kubernetes-csi/external-snapshotter/client/v8"
SNAPSHOT_CLIENT_VERSION = SNAPSHOTTER.version

ALL: tuple[GoProgram, ...] = (KUBE, ETCD, PROVISIONER, ATTACHER, RESIZER, SNAPSHOTTER)

# The kubernetes-csi conformance suite, run by the tests against the local
# driver on the host. It is no part of the cluster, so it is in TOOLS, not
# ALL: scripts/check builds it (a minute, then cached like the rest) and the
# sanity tests build it on first use when run alone.
_CSI_TEST_VERSION = "v5.6.0"
CSI_SANITY = GoProgram(
    name="csi-sanity",
    module="github.com/kubernetes-csi/csi-test/v5",
    version=_CSI_TEST_VERSION,
    packages=(("github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity", "csi-sanity"),),
    # What `csi-sanity -version` prints; the upstream release build sets it too.
    ldflags=(f"-X main.VERSION={_CSI_TEST_VERSION}",),
)

TOOLS: tuple[GoProgram, ...] = (CSI_SANITY,)
