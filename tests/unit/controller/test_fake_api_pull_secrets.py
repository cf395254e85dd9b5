"""The chart's imagePullSecrets on every Pod and Job the controller makes (fake API server)."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from csi_vm.controller import context, launchpod, pullsecrets, storage
from csi_vm.crd import kinds
from csi_vm.crd import models as crd
from csi_vm.kube import api as kube_api
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import QUICK

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]

SECRETS = ("regcred", "mirror")


@pytest.fixture
def pctx(fake: fakekube.FakeKube, ctx: context.Context, tmp_path: pathlib.Path) -> context.Context:
    api = kube_api.connect(kubeconfig_file=fake.kubeconfig(tmp_path / "pull"), policy=QUICK)
    return dataclasses.replace(ctx, objs=pullsecrets.Objects(api, secrets=SECRETS))


def _target(name: str) -> storage.Target:
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-1"}
    return storage.Target(name=name, namespace=v.NS, size="1Gi", storage_class="fast", owner=owner)


def _pulls(obj: dict) -> list[str]:  # type: ignore[type-arg]
    spec = obj["spec"]["template"]["spec"] if obj["kind"] == "Job" else obj["spec"]
    return [s["name"] for s in spec.get("imagePullSecrets", [])]


def test_launcher_holder_and_copy_pull_with_the_secrets(pctx: context.Context) -> None:
    vm = v.vm("web")
    vm["metadata"]["uid"] = "uid-web"
    settings = launchpod.Settings(image="libvirt:test")
    made = [
        launchpod.ensure(pctx.objs, launchpod.body(vm, node="n1", disks=[], settings=settings)),
        storage.ensure(pctx.objs, kinds.POD, storage.holder_pod(_target("c1"), image="x")),
        storage.ensure(
            pctx.objs,
            kinds.JOB,
            storage.copy_job(
                _target("c2"),
                source_claim="c1",
                source_mode=crd.VolumeMode.BLOCK,
                image="x",
            ),
        ),
    ]
    for obj in made:
        assert _pulls(obj) == list(SECRETS), obj["metadata"]["name"]
    # Read back from the server, not only the answer to the create.
    stored = pctx.objs.get(kinds.JOB, "c2-copy", namespace=v.NS)
    assert _pulls(stored) == list(SECRETS)


def test_claims_and_secretless_controllers_are_left_alone(
    pctx: context.Context, ctx: context.Context
) -> None:
    claim = storage.ensure(pctx.objs, kinds.PVC, storage.claim(_target("c3")))
    assert "imagePullSecrets" not in claim["spec"]
    pod = storage.ensure(ctx.objs, kinds.POD, storage.holder_pod(_target("c4"), image="x"))
    assert "imagePullSecrets" not in pod["spec"]


def test_a_secret_already_named_is_not_repeated() -> None:
    body = {"kind": "Pod", "spec": {"imagePullSecrets": [{"name": "regcred"}]}}
    assert _pulls(pullsecrets.added(body, SECRETS)) == ["regcred", "mirror"]
    assert body["spec"]["imagePullSecrets"] == [{"name": "regcred"}]  # a copy was changed
