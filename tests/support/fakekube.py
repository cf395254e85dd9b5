"""A local fake of the Kubernetes API server, for tests only.

Kubernetes-facing unit tests run against this, fast and with no cluster: a
stdlib HTTP server on 127.0.0.1 that speaks the REST shapes the kubernetes
client uses (list, get, create, replace, merge patch, delete, ``?watch=true``
as a chunked stream of JSON lines, discovery under ``/api`` and ``/apis``,
Status objects for errors) over the generic in-memory store of
`fakekube_store`; `fakekube_routes` reads paths, verbs and selectors.
Tests that use it are marked ``fake`` and say so in their names.

Faults a test can switch on: a bearer token the server insists on (401), a
resource it forbids (403, as RBAC would), and injected HTTP errors for the
next requests (transient 5xx, say).

`FakeKube.install_crds` installs CustomResourceDefinitions as the real
server serves them: schema, status subresource, pruning and defaulting.
tests/integration/cluster/test_api_contract.py runs the same scenarios
here and on a real API server, so where the two differ a test fails.
What the fake leaves out on purpose: there is no garbage collector (an
object whose owner is gone stays; a real cluster deletes it), no admission
webhooks, no managedFields, no server-side apply, and deleting a namespace
does not delete what is in it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import json
import pathlib
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import yaml

from tests.support import fakekube_routes, fakekube_schema, fakekube_store
from tests.support.fakekube_store import ApiError, Obj, Resource

#: The identity the fake names in its RBAC refusals.
USER = fakekube_routes.USER
TOKEN = "fake-token-for-tests"
#: Watches end after this many seconds unless the client asks for less.
WATCH_TIMEOUT = 60.0

STORAGE = "storage.k8s.io"
SNAPSHOT = "snapshot.storage.k8s.io"

BUILTIN = (
    Resource("", "v1", "namespaces", "Namespace", namespaced=False),
    Resource("", "v1", "nodes", "Node", namespaced=False),
    Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", namespaced=True),
    Resource("", "v1", "pods", "Pod", namespaced=True),
    Resource("", "v1", "events", "Event", namespaced=True),
    Resource(STORAGE, "v1", "storageclasses", "StorageClass", namespaced=False),
    Resource(STORAGE, "v1", "csidrivers", "CSIDriver", namespaced=False),
    Resource(STORAGE, "v1", "csinodes", "CSINode", namespaced=False),
    Resource(STORAGE, "v1", "volumeattachments", "VolumeAttachment", namespaced=False),
)
#: The external-snapshotter CRDs: leave them out to fake a cluster without them.
SNAPSHOT_CRDS = (
    Resource(SNAPSHOT, "v1", "volumesnapshotclasses", "VolumeSnapshotClass", namespaced=False),
    Resource(SNAPSHOT, "v1", "volumesnapshots", "VolumeSnapshot", namespaced=True),
    Resource(SNAPSHOT, "v1", "volumesnapshotcontents", "VolumeSnapshotContent", namespaced=False),
)


@dataclasses.dataclass(frozen=True)
class Request:
    """One request the fake saw, for tests that check what a client asked."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str = ""


@dataclasses.dataclass
class _Fault:
    code: int
    plural: str  # "" for any resource
    times: int


class FakeKube:
    """The server: start with `running()`, point a client at `kubeconfig()`."""

    def __init__(self, *, snapshot_crds: bool = True, token: str | None = TOKEN) -> None:
        self.store = fakekube_store.Store()
        for res in BUILTIN + (SNAPSHOT_CRDS if snapshot_crds else ()):
            self.store.register(res)
        self.token = token
        self.forbidden: set[str] = set()  # plurals every request for is refused (403)
        self.requests: list[Request] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        # A short poll interval: stop() waits up to one interval for the loop.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.store.close()  # ends open watches, whose threads would otherwise linger
        self._server.shutdown()
        self._server.server_close()

    def install_crds(self, *paths: pathlib.Path) -> list[Resource]:
        """Serve the CRDs in these YAML files (or directories of them) as the real server would."""
        files = [f for p in paths for f in (sorted(p.glob("*.yaml")) if p.is_dir() else [p])]
        installed = []
        for path in files:
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    installed.extend(crd_resources(doc))
        for res in installed:
            self.store.register(res)
        return installed

    def add(self, *objects: Obj) -> None:
        for obj in objects:
            self.store.add(obj)

    def forbid(self, plural: str) -> None:
        self.forbidden.add(plural)

    def fail_next(self, code: int, *, times: int = 1, plural: str = "") -> None:
        """Answer the next ``times`` requests (for ``plural``, or any) with HTTP ``code``."""
        with self._lock:
            self._faults.append(_Fault(code, plural, times))

    def kubeconfig(self, path: pathlib.Path, *, token: str | None = None) -> pathlib.Path:
        """Write a kubeconfig for this server; ``token`` defaults to the accepted one."""
        return write_kubeconfig(path, server=self.url, token=token or self.token or "none")

    def take_fault(self, plural: str) -> int | None:
        with self._lock:
            for fault in self._faults:
                if fault.plural in ("", plural):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault.code
        return None


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[FakeKube]:
    fake = FakeKube(**kwargs)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def crd_resources(crd: Obj) -> list[Resource]:
    """The resource each served version of a CRD document makes, with its schema."""
    spec, names = crd["spec"], crd["spec"]["names"]
    return [
        Resource(
            spec["group"],
            version["name"],
            names["plural"],
            names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            status_subresource="status" in (version.get("subresources") or {}),
            schema=fakekube_schema.Schema(
                (version.get("schema") or {}).get("openAPIV3Schema") or {}
            ),
        )
        for version in spec["versions"]
        if version.get("served", True)
    ]


def write_kubeconfig(
    path: pathlib.Path, *, server: str, token: str, context: str = "fake"
) -> pathlib.Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake-cluster", "cluster": {"server": server}}],
        "users": [{"name": "fake-user", "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": "fake-cluster", "user": "fake-user", "namespace": "default"},
            }
        ],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections park a handler thread; never wait for them.
    block_on_close = False
    fake: FakeKube


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watch streams
    # Small answers would otherwise wait for the client's delayed ACK (Nagle):
    # about 40 ms per request.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `FakeKube.requests` instead

    # -- routing --------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        fake = self.server.fake
        content_type = self.headers.get("Content-Type", "")
        fake.requests.append(Request(method, url.path, query, content_type))
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = self._body(raw)
            if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            parts = [p for p in url.path.split("/") if p]
            discovery = fakekube_routes.discovery(fake.store, parts)
            if discovery is not None:
                self._json(200, discovery)
                return
            target = fakekube_routes.target(fake.store, parts)
            if target is None:
                self._text(404, "404 page not found")
                return
            self._resource(method, target, query, body)
        except ApiError as err:
            self._json(err.code, err.status())

    def _resource(
        self, method: str, target: fakekube_routes.Target, query: dict[str, str], body: Any
    ) -> None:
        fake, res = self.server.fake, target.res
        verb = fakekube_routes.verb(method, target, query)
        if res.plural in fake.forbidden:
            raise fakekube_routes.forbidden(res, verb, target.namespace)
        code = fake.take_fault(res.plural)
        if code is not None:
            raise ApiError(code, "InternalError" if code >= 500 else "BadRequest", "injected fault")
        if verb == "watch":
            self._watch(target, query)
            return
        answer = fakekube_routes.apply(fake.store, verb, target, query, body)
        self._json(answer.code, answer.body, warnings=answer.warnings)

    # -- answers --------------------------------------------------------------

    def _watch(self, target: fakekube_routes.Target, query: dict[str, str]) -> None:
        since = fakekube_routes.version_of(query, watch=True)
        timeout = min(float(query.get("timeoutSeconds") or WATCH_TIMEOUT), WATCH_TIMEOUT)
        events = self.server.fake.store.watch(
            target.res,
            namespace=target.namespace,
            since=since,
            timeout=timeout,
            match=fakekube_routes.selector(query),
            bookmarks=fakekube_routes.flag(query, "allowWatchBookmarks"),
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                self._chunk(json.dumps(event).encode() + b"\n")
            self._chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped watching

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, code: int, data: Obj, *, warnings: tuple[str, ...] = ()) -> None:
        self._send(code, json.dumps(data).encode(), "application/json", warnings=warnings)

    def _text(self, code: int, text: str) -> None:
        self._send(code, text.encode(), "text/plain; charset=utf-8")

    def _send(
        self, code: int, payload: bytes, content_type: str, *, warnings: tuple[str, ...] = ()
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for warning in warnings:
            # RFC 7234 warn-code 299 (miscellaneous persistent warning), agent "-".
            self.send_header("Warning", f"299 - {json.dumps(warning)}")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self, raw: bytes) -> Any:
        if not raw:
            return None
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith(("application/json-patch", "application/apply-patch")):
            raise ApiError(415, "UnsupportedMediaType", f"the fake does not speak {content_type}")
        return json.loads(raw)
