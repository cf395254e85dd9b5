"""Sockets are not world-accessible, odd image paths stay plain arguments, RBAC is narrow."""

from __future__ import annotations

import pathlib
import stat
from collections.abc import Callable
from typing import Any

import pytest

from csi_vm.flows import offline_disk, vms
from tests.integration.chart.conftest import CHART, VALUES, render
from tests.integration.flows.conftest import pattern_image
from tests.integration.hardening.conftest import SIZE, ProxyLab
from tests.support import helmbin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: a file name a shell would act on in every way it can
HOSTILE = "img with spaces 'single' \"double\" $(touch PWNED) `touch PWNED` ;touch PWNED&.raw"


def test_driver_socket_is_not_world_accessible(
    proxy_lab_factory: Callable[..., ProxyLab],
) -> None:
    lab = proxy_lab_factory()
    mode = stat.S_IMODE(lab.driver.socket_path.stat().st_mode)
    assert mode in (0o600, 0o660), oct(mode)


def test_image_paths_are_plain_arguments(proxy_lab_factory: Callable[..., ProxyLab]) -> None:
    lab = proxy_lab_factory()
    odd = lab.tmp / "dir $(touch PWNED)"
    odd.mkdir()
    first, second = odd / HOSTILE, odd / ("b-" + HOSTILE)
    want = pattern_image(first, size=SIZE, seed=5)
    spec = lab.spec("vm1").model_dump()
    spec["disks"][0]["source"] = {"image": str(first)}
    vms.create(lab.env, type(lab.spec("vm1")).model_validate(spec))
    out = odd / ("out-" + HOSTILE)
    offline_disk.export(lab.env, vm="vm1", disk="root", file=out, fmt="raw")
    assert out.read_bytes() == want
    want_b = pattern_image(second, size=SIZE, seed=6)
    offline_disk.import_image(lab.env, vm="vm1", disk="root", image=second)
    assert lab.export("vm1", "root") == want_b
    qcow = odd / ("q-" + HOSTILE.replace(".raw", ".qcow2"))
    offline_disk.export(lab.env, vm="vm1", disk="root", file=qcow, fmt="qcow2")
    assert qcow.read_bytes()[:4] == b"QFI\xfb"
    assert not list(pathlib.Path.cwd().glob("PWNED")) and not list(lab.tmp.rglob("PWNED"))


def _rbac_problems(doc: dict[str, Any]) -> list[str]:
    kind, name = doc.get("kind"), doc.get("metadata", {}).get("name")
    found = []
    if kind in ("Role", "ClusterRole"):
        for rule in doc.get("rules") or []:
            for key in ("apiGroups", "resources", "verbs", "nonResourceURLs"):
                if "*" in (rule.get(key) or []):
                    found.append(f"{kind} {name}: wildcard in {key}")
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        role = doc.get("roleRef", {}).get("name")
        if role in ("cluster-admin", "admin", "edit"):
            found.append(f"{kind} {name}: binds the built-in role {role}")
    return found


@pytest.mark.parametrize("values", sorted(VALUES), ids=sorted(VALUES))
def test_chart_rbac_has_no_wildcard_and_no_admin(values: str) -> None:
    assert (CHART / "templates").is_dir(), "the chart is not there"
    docs = render(helmbin.helm(), VALUES[values])
    kinds = {d.get("kind") for d in docs}
    if values == "defaults":  # some ci/ values leave RBAC to the cluster admin
        assert kinds & {"Role", "ClusterRole"}, "no RBAC rendered: nothing was checked"
    assert [p for d in docs for p in _rbac_problems(d)] == []
