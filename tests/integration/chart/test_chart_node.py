"""The node DaemonSet on a real kubelet: Block claims' symlinks resolve, root-owned sockets open.

For a Block claim the kubelet makes
<kubeletDir>/pods/<uid>/volumeDevices/kubernetes.io~csi/<pv> an absolute
symlink to <kubeletDir>/plugins/kubernetes.io/csi/volumeDevices/publish/<pv>/<uid>.
Each container path is mapped back to the host through the rendered mounts,
as the container runtime would, so the check holds whichever directories
the chart chooses to mount.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from tests.integration.chart import conftest as chart

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Obj = dict[str, Any]
UID = "0d5c6a8e-5b5e-4f0a-9a51-2f1f3c7c9d10"
PV = "pvc-7f3e"
#: values sets that render the node DaemonSet, and the kubelet dir each names
NODE_VALUES = {"defaults": "/var/lib/kubelet", "custom-kubelet-values": "/var/lib/k0s/kubelet"}


def _daemonset(helm: pathlib.Path, name: str) -> Obj:
    objects = chart.render(helm, chart.VALUES[name])
    return next(o for o in objects if o["kind"] == "DaemonSet")


def _container(ds: Obj, name: str) -> Obj:
    containers = ds["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def _host_path(ds: Obj, container: Obj, path: str) -> tuple[str, Obj] | None:
    """Where `path` inside the container is on the host, and the mount it goes through."""
    volumes = {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}
    target = pathlib.PurePosixPath(path)
    best: tuple[pathlib.PurePosixPath, Obj] | None = None
    for mount in container["volumeMounts"]:
        at = pathlib.PurePosixPath(mount["mountPath"])
        if target.is_relative_to(at) and (best is None or len(at.parts) > len(best[0].parts)):
            best = (at, mount)
    if best is None:
        return None
    at, mount = best
    host = volumes[mount["name"]].get("hostPath")
    if host is None:
        return None
    return str(pathlib.PurePosixPath(host["path"]) / target.relative_to(at)), mount


@pytest.mark.parametrize(("values", "kubelet"), NODE_VALUES.items(), ids=list(NODE_VALUES))
@pytest.mark.parametrize("container", ["libvirt", "launcher"])
def test_block_claim_links_resolve_at_the_hosts_paths(
    helm: pathlib.Path, values: str, kubelet: str, container: str
) -> None:
    ds = _daemonset(helm, values)
    spec = _container(ds, container)
    link = f"{kubelet}/pods/{UID}/volumeDevices/kubernetes.io~csi/{PV}"
    device = f"{kubelet}/plugins/kubernetes.io/csi/volumeDevices/publish/{PV}/{UID}"
    for path in (link, device):
        found = _host_path(ds, spec, path)
        assert found is not None, f"{container}: {path} is not on a hostPath mount"
        host, mount = found
        assert host == path, f"{container}: {path} is the host's {host}"
        # The kubelet publishes after the container started.
        assert mount.get("mountPropagation") == "HostToContainer", mount
        assert mount.get("readOnly", False) == (container == "launcher"), mount


def test_launcher_is_root_without_any_capability(helm: pathlib.Path) -> None:
    # Without launcher Pods: no run directory to make backup device nodes in.
    objects = chart.render(helm, chart.DEFAULTS, "--set", "vmPods.enabled=false")
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    security = _container(ds, "launcher")["securityContext"]
    assert security["runAsUser"] == 0  # the sockets and the pods dir belong to root
    assert security["capabilities"] == {"drop": ["ALL"]}  # so root has no DAC override
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert not security.get("privileged", False)


def test_launcher_with_vm_pods_may_only_make_device_nodes(helm: pathlib.Path) -> None:
    # A running VM's push backup: a device node in the launcher's run directory.
    spec = _container(_daemonset(helm, "local-cluster-values"), "launcher")
    security = spec["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["MKNOD"]}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert not security.get("privileged", False)
