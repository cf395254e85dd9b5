"""The fake API server against the real one: the same scenarios, the same answers.

Unit tests run the controller and the node agent against the fake API
server of tests/support. Each scenario here runs twice through
`csi_vm.kube` (`Objects` and the `Api` door): once against the fake with
the chart's CRDs installed, once against the test cluster. Both runs
assert the same observable result, so where the fake stops behaving like
a real server a test fails here, instead of a controller test passing
against the fake only.

The cluster runs csi-vm's own controller, which reconciles every CsiVM in
every namespace: it writes their status, makes their claims and records
events. The scenarios therefore judge what a client sees of its own writes
(the answer to a write, the events of its own changes), never "nothing
else changed"; a write that a status update of the controller may beat
is repeated after a re-read, as any client would.

Not compared: garbage collection (the fake has none: see
`tests.support.fakekube`), managedFields, set-based label selectors.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from csi_vm import errors
from csi_vm.csi import retry
from csi_vm.kube import api as kube_api
from csi_vm.kube import errors as kube_errors
from csi_vm.kube import methods, objects
from tests.support import fakekube
from tests.support.cluster import lab

Json = dict[str, Any]
CRDS = lab.PROJECT / "charts" / "csi-vm" / "crds"
VM = objects.Resource(group="csi-vm.io", version="v1alpha1", plural="csivms")
NAMESPACE = objects.Resource(group="", version="v1", plural="namespaces", namespaced=False)
CRD = objects.Resource(
    group="apiextensions.k8s.io", version="v1", plural="customresourcedefinitions",
    namespaced=False,
)  # fmt: skip
# Few, quick retries: a 5xx the scenario expects shows at once.
QUICK = retry.RetryPolicy(attempts=2, first_delay=0.05, max_delay=0.1)
# A storage class no cluster has: the controller's claims for these VMs stay Pending.
NO_CLASS = "contract-no-such-class"
# A resourceVersion older than either server's history, once the fake forgot
# its own (the real one keeps a few minutes of it).
ANCIENT = "1"


@dataclasses.dataclass(frozen=True)
class Server:
    kind: str  # "fake" or "real"
    api: kube_api.Api
    objs: objects.Objects
    namespace: str
    #: whether the server's csivms CRD is the chart's (a cluster may serve an older one)
    chart_crds: bool
    #: forget the history before now (the fake's; a real server forgot rv 1 long ago)
    forget_history: Callable[[], None]

    def list_page(self, **query: Any) -> Json:
        """One list request for CsiVMs in the namespace, with the client's query arguments."""
        lister = methods.Methods(self.api.api_client).list(VM, namespace=self.namespace)
        return self.api.request("list", VM.qualified, functools.partial(lister, **query))

    def vms(self, *, selector: str) -> list[str]:
        """Names of the namespace's CsiVMs that match a label selector, every page."""
        lister = methods.Methods(self.api.api_client).list(VM, namespace=self.namespace)
        items, _ = self.api.list_all(
            VM.qualified, functools.partial(lister, label_selector=selector)
        )
        return [i["metadata"]["name"] for i in items]


@pytest.fixture(params=["fake", "real"])
def server(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Server]:
    if request.param == "fake":
        with fakekube.running() as fake:
            fake.install_crds(CRDS)
            fake.store.require_namespaces = True
            config = fake.kubeconfig(tmp_path / "kubeconfig")
            with kube_api.connect(kubeconfig_file=config, policy=QUICK) as api:
                yield from _in_namespace("fake", api, forget=fake.store.compact)
        return
    # The chart's CRDs must be served: a fresh cluster has none until the
    # chart is installed, and this file may run before any other that needs it.
    kube = request.getfixturevalue("chart")
    with kube_api.connect(kubeconfig_file=kube.where.admin_kubeconfig, policy=QUICK) as api:
        yield from _in_namespace("real", api, forget=lambda: None)


def _in_namespace(kind: str, api: kube_api.Api, *, forget: Callable[[], None]) -> Iterator[Server]:
    objs = objects.Objects(api)
    name = f"contract-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    objs.create(NAMESPACE, body)
    chart_crds = _serves_chart_crd(kind, objs)
    try:
        yield Server(kind, api, objs, name, chart_crds=chart_crds, forget_history=forget)
    finally:
        objs.delete(NAMESPACE, name)  # the real cluster deletes what is in it


def _serves_chart_crd(kind: str, objs: objects.Objects) -> bool:
    if kind == "fake":
        return True  # it was given the chart's
    chart = yaml.safe_load((CRDS / "csivms.csi-vm.io.yaml").read_text(encoding="utf-8"))
    served = objs.get(CRD, "csivms.csi-vm.io")
    schemas = [[v.get("schema") for v in crd["spec"]["versions"]] for crd in (chart, served)]
    return schemas[0] == schemas[1]


def _vm(name: str, *, labels: dict[str, str] | None = None, **spec: Any) -> Json:
    disk = {"name": "root", "size": "1Gi", "storageClassName": NO_CLASS}
    meta: Json = {"name": name, **({"labels": labels} if labels else {})}
    return {
        "apiVersion": "csi-vm.io/v1alpha1",
        "kind": "CsiVM",
        "metadata": meta,
        "spec": {"disks": [disk], **spec},
    }


def _create(server: Server, body: Json) -> Json:
    return server.objs.create(VM, body, namespace=server.namespace)


def _patch(server: Server, name: str, patch: Json, *, subresource: str = "") -> Json:
    return server.objs.patch(VM, name, patch, namespace=server.namespace, subresource=subresource)


def _get(server: Server, name: str) -> Json:
    return server.objs.get(VM, name, namespace=server.namespace)


def _rv(obj: Json) -> str:
    return str(obj["metadata"]["resourceVersion"])


def _on_fresh_read(server: Server, name: str, write: Callable[[Json], Json]) -> Json:
    """``write`` on the object as read; read again when someone else wrote in between."""
    for _ in range(5):
        try:
            return write(_get(server, name))
        except errors.Busy:
            continue  # the controller's status write came first
    raise AssertionError(f"{name}: every write lost the race against another writer")


# -- objects ---------------------------------------------------------------------


def test_create_get_list_delete(server: Server) -> None:
    sent = _vm("a", labels={"app": "contract", "tier": "1"}, cpus=2)
    created = _create(server, sent)
    _create(server, _vm("b", labels={"app": "contract", "tier": "2"}))
    _create(server, _vm("c"))
    got = _get(server, "a")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["metadata"]["labels"] == {"app": "contract", "tier": "1"}
    assert (got["spec"]["cpus"], got["spec"]["disks"][0]["size"]) == (2, "1Gi")
    assert (got["metadata"]["namespace"], got["metadata"]["generation"]) == (server.namespace, 1)
    assert server.vms(selector="app=contract") == ["a", "b"]
    assert server.vms(selector="app=contract,tier!=1") == ["b"]
    assert server.vms(selector="!app") == ["c"]
    items, version = server.objs.list(VM, namespace=server.namespace)
    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c"]
    assert version
    server.objs.delete(VM, "a", namespace=server.namespace)
    with pytest.raises(errors.NotFound):
        _get(server, "a")
    server.objs.delete(VM, "a", namespace=server.namespace)  # gone already: what delete wants


def test_missing_and_taken_names(server: Server) -> None:
    with pytest.raises(errors.NotFound, match=r'HTTP 404: csivms.csi-vm.io "nope" not found'):
        _get(server, "nope")
    with pytest.raises(errors.NotFound, match="HTTP 404"):
        _patch(server, "nope", {"spec": {"cpus": 2}})
    with pytest.raises(errors.NotFound, match="HTTP 404"):
        _patch(server, "nope", {"status": {"phase": "x"}}, subresource="status")
    _create(server, _vm("a"))
    with pytest.raises(errors.AlreadyExists, match=r'HTTP 409: csivms.csi-vm.io "a" already'):
        _create(server, _vm("a", cpus=4))
    assert "cpus" not in _get(server, "a")["spec"]
    with pytest.raises(errors.NotFound, match=r'HTTP 404: namespaces "contract-none" not found'):
        server.objs.create(VM, _vm("a"), namespace="contract-none")
    elsewhere = _vm("b")
    elsewhere["metadata"]["namespace"] = "contract-other"
    with pytest.raises(errors.InvalidInput, match="HTTP 400: the namespace of the provided"):
        _create(server, elsewhere)


# -- versions and generations ----------------------------------------------------------


def test_generation_counts_spec_changes_and_every_write_gets_a_new_version(
    server: Server,
) -> None:
    created = _create(server, _vm("a"))
    labelled = _patch(server, "a", {"metadata": {"labels": {"x": "1"}}})
    grown = _patch(server, "a", {"spec": {"cpus": 2}})
    told = _patch(server, "a", {"status": {"message": "told"}}, subresource="status")
    generations = [o["metadata"]["generation"] for o in (created, labelled, grown, told)]
    assert generations == [1, 1, 2, 2]
    versions = [_rv(o) for o in (created, labelled, grown, told)]
    assert len(set(versions)) == 4
    assert [int(v) for v in versions] == sorted(int(v) for v in versions)


def test_a_write_that_changes_nothing_keeps_the_version(server: Server) -> None:
    _create(server, _vm("a", labels={"x": "1"}))

    def same_labels(now: Json) -> Json:
        guard = {"resourceVersion": _rv(now), "labels": {"x": "1"}}
        written = _patch(server, "a", {"metadata": guard})
        return {"before": now, "after": written}

    seen = _on_fresh_read(server, "a", same_labels)
    assert _rv(seen["after"]) == _rv(seen["before"])
    put = _on_fresh_read(server, "a", lambda now: {"before": now, "after": _replace(server, now)})
    assert _rv(put["after"]) == _rv(put["before"])


def _replace(server: Server, body: Json) -> Json:
    return server.objs.replace(VM, body, namespace=server.namespace)


# -- the status subresource ------------------------------------------------------------


def test_create_drops_the_status(server: Server) -> None:
    body = _vm("a")
    body["status"] = {"phase": "Running", "message": "sent with the object"}
    assert "status" not in _create(server, body)


def test_a_status_write_changes_only_the_status(server: Server) -> None:
    _create(server, _vm("a", labels={"x": "1"}, cpus=1))
    patch = {
        "metadata": {"labels": {"x": "2"}},
        "spec": {"cpus": 7},
        "status": {"message": "through status"},
    }
    written = _patch(server, "a", patch, subresource="status")
    assert written["status"]["message"] == "through status"
    assert (written["spec"]["cpus"], written["metadata"]["labels"]) == (1, {"x": "1"})
    assert written["metadata"]["generation"] == 1


def test_a_write_to_the_object_leaves_the_status_alone(server: Server) -> None:
    _create(server, _vm("a", cpus=1))
    patched = _patch(server, "a", {"spec": {"cpus": 3}, "status": {"message": "by patch"}})
    assert patched["spec"]["cpus"] == 3
    assert (patched.get("status") or {}).get("message") != "by patch"

    def put(now: Json) -> Json:
        now["spec"]["cpus"] = 4
        now["status"] = {"message": "by put"}
        return _replace(server, now)

    replaced = _on_fresh_read(server, "a", put)
    assert replaced["spec"]["cpus"] == 4
    assert (replaced.get("status") or {}).get("message") != "by put"


def test_a_replace_replaces_the_metadata_the_client_owns(server: Server) -> None:
    created = _create(server, _vm("a", labels={"x": "1"}))

    def without_labels(now: Json) -> Json:
        now["metadata"].pop("labels")
        return _replace(server, now)

    replaced = _on_fresh_read(server, "a", without_labels)
    assert "labels" not in replaced["metadata"]
    assert replaced["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]


# -- optimistic concurrency ----------------------------------------------------------------


def test_a_stale_version_conflicts_on_the_object_and_its_status(server: Server) -> None:
    stale = _rv(_create(server, _vm("a")))
    _patch(server, "a", {"metadata": {"labels": {"x": "1"}}})
    guarded = {"metadata": {"resourceVersion": stale}}
    with pytest.raises(errors.Busy, match="HTTP 409: Operation cannot be fulfilled"):
        _patch(server, "a", {**guarded, "spec": {"cpus": 2}})
    with pytest.raises(errors.Busy, match="HTTP 409"):
        _patch(server, "a", {**guarded, "status": {"message": "late"}}, subresource="status")
    old = _vm("a", cpus=3)
    old["metadata"]["resourceVersion"] = stale
    with pytest.raises(errors.Busy, match="HTTP 409"):
        _replace(server, old)
    got = _get(server, "a")
    assert ("cpus" not in got["spec"], got["metadata"]["labels"]) == (True, {"x": "1"})
    assert (got.get("status") or {}).get("message") != "late"


def test_a_replace_without_a_version_is_invalid(server: Server) -> None:
    _create(server, _vm("a"))
    with pytest.raises(errors.InvalidInput, match=r"HTTP 422.*metadata.resourceVersion"):
        _replace(server, _vm("a", cpus=2))


# -- the CRD's schema --------------------------------------------------------------


def _without_disks(body: Json) -> Json:
    del body["spec"]["disks"]
    return body


def _sized(size: str) -> Callable[[Json], Json]:
    def change(body: Json) -> Json:
        body["spec"]["disks"][0]["size"] = size
        return body

    return change


def _cpus(value: Any) -> Callable[[Json], Json]:
    def change(body: Json) -> Json:
        body["spec"]["cpus"] = value
        return body

    return change


def _named(name: str) -> Callable[[Json], Json]:
    def change(body: Json) -> Json:
        body["metadata"]["name"] = name
        return body

    return change


def _specless(body: Json) -> Json:
    del body["spec"]
    return body


def _two_faults(body: Json) -> Json:
    return _cpus(0)(_sized("lots")(body))


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (_without_disks, ["spec.disks: Required value"]),
        (_sized("lots"), ["spec.disks[0].size: Invalid value"]),
        (_cpus(0), ["spec.cpus: Invalid value: 0", "greater than or equal to 1"]),
        (_cpus(300), ["spec.cpus: Invalid value: 300"]),
        (_cpus("2"), ["spec.cpus", "must be of type integer"]),
        (_cpus(1.5), ["spec.cpus", "must be of type integer"]),
        (_specless, ["spec: Required value"]),
        (_named("Not_A_Name"), ["metadata.name: Invalid value"]),
        (_two_faults, ["spec.cpus: Invalid value", "spec.disks[0].size: Invalid value"]),
    ],
    ids=["no-disks", "size", "cpus-0", "cpus-300", "cpus-string", "cpus-fraction", "no-spec",
         "name", "two-faults"],
)  # fmt: skip
def test_a_vm_against_the_schema_is_invalid(
    server: Server, change: Callable[[Json], Json], fields: list[str]
) -> None:
    with pytest.raises(errors.InvalidInput, match="HTTP 422") as info:
        _create(server, change(_vm("bad")))
    for field in fields:
        assert field in info.value.message


def test_a_write_that_breaks_the_schema_is_invalid(server: Server) -> None:
    _create(server, _vm("a"))
    with pytest.raises(errors.InvalidInput, match=r"HTTP 422.*spec.disks: Required value"):
        _patch(server, "a", {"spec": {"disks": None}})
    with pytest.raises(errors.InvalidInput, match=r"HTTP 422.*spec.disks: Invalid value: 0"):
        _patch(server, "a", {"spec": {"disks": []}})
    with pytest.raises(errors.InvalidInput, match=r"HTTP 422.*status.observedGeneration"):
        _patch(server, "a", {"status": {"observedGeneration": "one"}}, subresource="status")
    assert _get(server, "a")["spec"]["disks"][0]["name"] == "root"


def test_unknown_fields_are_dropped(server: Server) -> None:
    """Without fieldValidation (the adapter sends none) the server prunes; it warns only."""
    body = _vm("a", colour="red")
    body["spec"]["disks"][0]["shade"] = "dark"
    body["metadata"]["colour"] = "blue"
    body["extra"] = {"a": 1}
    created = _create(server, body)
    assert created["spec"] == _vm("a")["spec"] | _served_defaults(server)
    assert "colour" not in created["metadata"]
    assert "extra" not in created
    patched = _patch(server, "a", {"spec": {"colour": "green", "cpus": 2}})
    assert "colour" not in patched["spec"]
    assert patched["spec"]["cpus"] == 2
    assert patched["metadata"]["generation"] == 2


def test_a_strict_client_is_refused_unknown_fields(server: Server) -> None:
    creator = methods.Methods(server.api.api_client).create(VM, namespace=server.namespace)
    call = functools.partial(creator, body=_vm("a", colour="red"), field_validation="Strict")
    with pytest.raises(errors.InvalidInput, match=r'HTTP 400: .*unknown field \\?"spec.colour'):
        server.api.request("create", VM.qualified, call)
    with pytest.raises(errors.NotFound):
        _get(server, "a")


def test_a_number_written_as_a_whole_fraction_is_an_integer(server: Server) -> None:
    assert _create(server, _vm("a", cpus=2.0))["spec"]["cpus"] == 2


def test_nulls_the_schema_does_not_allow_are_dropped(server: Server) -> None:
    assert "cpus" not in _create(server, _vm("a", cpus=None))["spec"]
    # In a merge patch null deletes a field, but inside a list it is a value:
    # the server drops it from the merged object (the controller sends such).
    disks = [{"name": "root", "resize": {"phase": "Pending", "fallbackReason": None}}]
    written = _patch(server, "a", {"status": {"disks": disks}}, subresource="status")
    assert written["status"]["disks"] == [{"name": "root", "resize": {"phase": "Pending"}}]


def test_defaults_and_enums_of_the_chart_crd(server: Server) -> None:
    if not server.chart_crds:
        pytest.skip(
            "the cluster serves an older csivms CRD than charts/csi-vm/crds "
            "(helm installs crds/ once and never upgrades them)"
        )
    created = _create(server, _vm("a"))
    assert created["spec"]["disks"][0]["volumeMode"] == "Block"
    tape = _vm("b")
    tape["spec"]["disks"][0]["volumeMode"] = "Tape"
    with pytest.raises(errors.InvalidInput, match='volumeMode: Unsupported value: "Tape"'):
        _create(server, tape)


def _served_defaults(server: Server) -> Json:
    if not server.chart_crds:
        return {}
    return {"disks": [{**_vm("a")["spec"]["disks"][0], "volumeMode": "Block"}]}


# -- lists ----------------------------------------------------------------------


def test_list_pages_hold_every_object_once(server: Server) -> None:
    for name in ("a", "b", "c", "d", "e"):
        _create(server, _vm(name))
    first = server.list_page(limit=2)
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    assert first["metadata"].get("remainingItemCount") == 3
    # Changes after the first page do not reach the later ones: every page
    # comes from the first one's version (the adapter's list_all counts on it).
    server.objs.delete(VM, "d", namespace=server.namespace)
    _create(server, _vm("bb"))
    _patch(server, "c", {"spec": {"cpus": 5}})
    names, token, cpus = [], first["metadata"]["continue"], {}
    while token:
        page = server.list_page(limit=2, _continue=token)
        assert len(page["items"]) <= 2
        assert page["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
        names += [i["metadata"]["name"] for i in page["items"]]
        cpus.update({i["metadata"]["name"]: i["spec"].get("cpus") for i in page["items"]})
        token = page["metadata"].get("continue")
    assert names == ["c", "d", "e"]
    assert cpus["c"] is None
    items, _ = server.objs.list(VM, namespace=server.namespace)
    assert [i["metadata"]["name"] for i in items] == ["a", "b", "bb", "c", "e"]


def test_a_list_with_a_bad_continue_token_or_version_is_refused(server: Server) -> None:
    with pytest.raises(errors.InvalidInput, match="HTTP 400: invalid continue token"):
        server.list_page(limit=1, _continue="not-a-token")
    with pytest.raises(errors.InvalidInput, match="HTTP 400: invalid resource version"):
        server.list_page(resource_version="abc")


# -- watches --------------------------------------------------------------------


def _mine(events: list[objects.WatchEvent], name: str) -> list[objects.WatchEvent]:
    return [e for e in events if (e.object.get("metadata") or {}).get("name") == name]


def test_a_watch_from_a_version_sees_later_changes_in_order(server: Server) -> None:
    _create(server, _vm("before"))
    _, since = server.objs.list(VM, namespace=server.namespace)
    created = _create(server, _vm("w"))
    labelled = _patch(server, "w", {"metadata": {"labels": {"x": "1"}}})
    server.objs.delete(VM, "w", namespace=server.namespace)
    events = list(server.objs.watch(VM, namespace=server.namespace, since=since, timeout=1))
    # Created before the version: not replayed (the controller may still write its status).
    assert {e.type for e in _mine(events, "before")} <= {"MODIFIED"}
    own = _mine(events, "w")
    written = {_rv(created): "ADDED", _rv(labelled): "MODIFIED"}
    assert [(e.type, e.version) for e in own if e.version in written] == [
        (kind, version) for version, kind in written.items()
    ]
    assert own[-1].type == "DELETED"
    others = [e for e in own[:-1] if e.version not in written]
    assert all(e.type == "MODIFIED" for e in others)  # the controller's status writes
    versions = [int(e.version) for e in own]
    assert versions == sorted(versions)
    later = server.objs.watch(VM, namespace=server.namespace, since=own[-1].version, timeout=1)
    assert not _mine(list(later), "w")


def test_a_watch_from_nothing_starts_with_the_objects_and_a_bookmark(server: Server) -> None:
    for name in ("a", "b"):
        _create(server, _vm(name))
    events = list(server.objs.watch(VM, namespace=server.namespace, since="", timeout=1,
                                    bookmarks=True))  # fmt: skip
    assert [(e.type, e.object["metadata"].get("name")) for e in events[:3]] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        (objects.BOOKMARK, None),
    ]
    mark = events[2].object
    assert mark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(events[2].version) >= max(int(e.version) for e in events[:2])
    assert (mark["kind"], mark["apiVersion"]) == ("CsiVM", "csi-vm.io/v1alpha1")
    _check_bookmarks(events[3:], since=events[2].version)


def test_bookmarks_come_only_to_watches_that_ask(server: Server) -> None:
    _, since = server.objs.list(VM, namespace=server.namespace)
    _create(server, _vm("a"))

    def watch(*, timeout: int, bookmarks: bool) -> list[objects.WatchEvent]:
        return list(server.objs.watch(VM, namespace=server.namespace, since=since,
                                      timeout=timeout, bookmarks=bookmarks))  # fmt: skip

    plain = watch(timeout=4, bookmarks=False)
    assert objects.BOOKMARK not in [e.type for e in plain]
    for events in (watch(timeout=1, bookmarks=True), watch(timeout=4, bookmarks=True)):
        changes = [(e.type, e.version) for e in events if e.type != objects.BOOKMARK]
        assert changes[: len(plain)] == [(e.type, e.version) for e in plain]
        _check_bookmarks(events, since=since)
    if server.kind == "fake":
        # The real server's usual answer: one bookmark 2 s before the end of
        # a watch longer than that, none for a shorter one. Its watch cache
        # decides, and may send one early or none at all.
        long, short = watch(timeout=3, bookmarks=True), watch(timeout=1, bookmarks=True)
        assert (_bookmarks(long), _bookmarks(short)) == (1, 0)


def _bookmarks(events: list[objects.WatchEvent]) -> int:
    return [e.type for e in events].count(objects.BOOKMARK)


def _check_bookmarks(events: list[objects.WatchEvent], *, since: str) -> None:
    """Bookmarks carry only a version, which no event before them exceeds."""
    for i, mark in enumerate(events):
        if mark.type != objects.BOOKMARK:
            continue
        assert set(mark.object) == {"kind", "apiVersion", "metadata"}
        assert set(mark.object["metadata"]) == {"resourceVersion"}
        assert int(mark.version) >= int(since)
        assert all(int(e.version) <= int(mark.version) for e in events[:i])


def test_a_watch_from_a_forgotten_version_is_expired(server: Server) -> None:
    _create(server, _vm("a"))
    server.forget_history()
    gone = r"HTTP 410.*too old resource version: 1 "
    with pytest.raises(kube_errors.Expired, match=gone) as info:
        list(server.objs.watch(VM, namespace=server.namespace, since=ANCIENT, timeout=1))
    assert isinstance(info.value, errors.Rejected)


def test_a_watch_from_a_version_that_is_no_number_fails_on_the_server(server: Server) -> None:
    # The real server answers 500 here (a list gets 400): the door retries it as transient.
    with pytest.raises(errors.Transient, match=r"HTTP 500.*resourceVersion"):
        list(server.objs.watch(VM, namespace=server.namespace, since="abc", timeout=1))
