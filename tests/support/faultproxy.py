"""A fault-injection gRPC proxy between csi-vm and a CSI driver, for tests.

    proxy = FaultProxy(upstream=drv.endpoint, socket_path=tmp / "proxy.sock")
    proxy.start()
    proxy.fail(grpc.StatusCode.UNAVAILABLE, calls=2)          # next two calls
    proxy.fail(grpc.StatusCode.ABORTED, methods={"CreateVolume"})  # until cleared
    proxy.hang(methods={"ControllerExpandVolume"}, calls=1)  # past the deadline
    proxy.never_ready()                                       # snapshots stay unready
    proxy.drop(calls=1)                                       # connection torn down
    proxy.clear()

Every method is forwarded as raw bytes through one generic handler, so the
proxy knows nothing about CSI except the few responses it rewrites for
`never_ready` and which methods stream (read from the proto descriptor).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import Any

import grpc

from csi_vm.csi import client as csi_client
from csi_vm.csi.pb import csi_pb2 as pb

#: how long a hung call sleeps: far past any deadline csi-vm sets in tests
HANG_S = 30.0

_UNREADY_RESPONSES: dict[str, Callable[[bytes], bytes]] = {}


def _streaming_methods() -> frozenset[str]:
    found = set()
    for service in pb.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            if method.server_streaming:
                found.add(f"/{service.full_name}/{method.name}")
    return frozenset(found)


_STREAMING = _streaming_methods()


@dataclasses.dataclass
class Fault:
    """One switched-on fault; `calls`/`until` bound it, `methods` scopes it (empty: all)."""

    kind: str  # "status", "hang", "drop"
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    methods: frozenset[str] = frozenset()
    calls: int | None = None
    until: float | None = None
    #: matching calls let through before the fault starts (to fail a later step)
    after: int = 0

    def applies(self, method: str) -> bool:
        if self.methods and method not in self.methods:
            return False
        if self.after > 0:
            self.after -= 1
            return False
        if self.until is not None and time.monotonic() > self.until:
            return False
        return self.calls is None or self.calls > 0


class FaultProxy(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    def __init__(self, *, upstream: str, socket_path: Any) -> None:
        self.upstream = upstream
        self.socket_path = socket_path
        self.calls: collections.Counter[str] = collections.Counter()
        self.injected: collections.Counter[str] = collections.Counter()
        self._faults: list[Fault] = []
        self._unready = False
        self._after: dict[str, Callable[[], None]] = {}
        #: (method, raw request) of every call, when a test wants to see the wire
        self.requests: list[tuple[str, bytes]] | None = None
        self._lock = threading.Lock()
        # The same channel options as csi-vm's client, so the proxy adds no
        # reconnect delay of its own after a driver restart.
        self._channel = grpc.insecure_channel(upstream, options=csi_client.CHANNEL_OPTIONS)
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    # -- switches ---------------------------------------------------------------

    def fail(
        self,
        code: grpc.StatusCode,
        *,
        methods: Iterable[str] = (),
        calls: int | None = None,
        seconds: float | None = None,
        after: int = 0,
    ) -> None:
        self._add(Fault("status", code, frozenset(methods), calls, _until(seconds), after))

    def hang(
        self, *, methods: Iterable[str] = (), calls: int | None = None, after: int = 0
    ) -> None:
        self._add(Fault("hang", methods=frozenset(methods), calls=calls, after=after))

    def drop(self, *, methods: Iterable[str] = (), calls: int | None = 1) -> None:
        self._add(Fault("drop", methods=frozenset(methods), calls=calls))

    def never_ready(self, on: bool = True) -> None:
        self._unready = on

    def after_call(self, method: str, action: Callable[[], None]) -> None:
        """Run `action` once, right after the next successful `method` call."""
        self._after[method] = action

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._after.clear()
            self._unready = False

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        server.add_generic_rpc_handlers((self,))
        server.add_insecure_port(self.endpoint)
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=0).wait()
            self._server = None
        self._channel.close()

    def _bounce(self, done: threading.Event) -> None:
        """Tear down every connection (a dropped link), then listen again."""
        if self._server is not None:
            self._server.stop(grace=0).wait()
        self.start()
        done.set()

    # -- the generic handler ----------------------------------------------------

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        if method in _STREAMING:
            return grpc.unary_stream_rpc_method_handler(
                lambda raw, ctx: self._forward_stream(method, raw, ctx)
            )
        return grpc.unary_unary_rpc_method_handler(lambda raw, ctx: self._forward(method, raw, ctx))

    def _forward(self, method: str, raw: bytes, ctx: grpc.ServicerContext) -> bytes:
        if self.requests is not None:
            self.requests.append((method.rsplit("/", 1)[-1], raw))
        self._inject(method, ctx)
        call = self._channel.unary_unary(method, None, None)  # raw bytes both ways
        try:
            answer: bytes = call(raw, timeout=_remaining(ctx))
        except grpc.RpcError as err:
            ctx.abort(err.code(), err.details() or "")
        action = self._after.pop(method.rsplit("/", 1)[-1], None)
        if action is not None:
            action()
        return self._rewrite(method, answer)

    def _forward_stream(
        self, method: str, raw: bytes, ctx: grpc.ServicerContext
    ) -> Iterator[bytes]:
        self._inject(method, ctx)
        call = self._channel.unary_stream(method, None, None)
        try:
            yield from call(raw, timeout=_remaining(ctx))
        except grpc.RpcError as err:
            ctx.abort(err.code(), err.details() or "")

    def _inject(self, method: str, ctx: grpc.ServicerContext) -> None:
        short = method.rsplit("/", 1)[-1]
        fault = self._take(short)
        if fault is None:
            return
        if fault.kind == "hang":
            # Sleep until the caller's deadline passes (or HANG_S), like a stuck driver.
            time.sleep(min(HANG_S, (_remaining(ctx) or HANG_S) + 0.5))
            ctx.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "fault proxy: hung")
        if fault.kind == "drop":
            # The call stays in flight while the server under it goes away;
            # this handler thread then ends instead of idling until exit.
            bounced = threading.Event()
            threading.Thread(target=self._bounce, args=(bounced,), daemon=True).start()
            bounced.wait(HANG_S)
        ctx.abort(fault.code, f"fault proxy: injected {fault.code.name}")

    def _take(self, short: str) -> Fault | None:
        with self._lock:
            self.calls[short] += 1
            for fault in self._faults:
                if fault.applies(short):
                    if fault.calls is not None:
                        fault.calls -= 1
                    self.injected[fault.kind] += 1
                    return fault
        return None

    def _rewrite(self, method: str, answer: bytes) -> bytes:
        rewrite = _UNREADY_RESPONSES.get(method.rsplit("/", 1)[-1])
        if not self._unready or rewrite is None:
            return answer
        return rewrite(answer)


def _until(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


def _remaining(ctx: grpc.ServicerContext) -> float | None:
    left = ctx.time_remaining()
    return None if left is None else max(left, 0.0)


# -- response rewrites for never_ready --------------------------------------------


def _unready_snapshot(raw: bytes) -> bytes:
    resp = pb.CreateSnapshotResponse.FromString(raw)
    resp.snapshot.ready_to_use = False
    return resp.SerializeToString()


def _unready_get(raw: bytes) -> bytes:
    resp = pb.GetSnapshotResponse.FromString(raw)
    resp.snapshot.ready_to_use = False
    return resp.SerializeToString()


def _unready_list(raw: bytes) -> bytes:
    resp = pb.ListSnapshotsResponse.FromString(raw)
    for entry in resp.entries:
        entry.snapshot.ready_to_use = False
    return resp.SerializeToString()


def _unready_group(cls: Any) -> Callable[[bytes], bytes]:
    def rewrite(raw: bytes) -> bytes:
        resp = cls.FromString(raw)
        resp.group_snapshot.ready_to_use = False
        for snap in resp.group_snapshot.snapshots:
            snap.ready_to_use = False
        return bytes(resp.SerializeToString())

    return rewrite


_UNREADY_RESPONSES.update(
    {
        "CreateSnapshot": _unready_snapshot,
        "GetSnapshot": _unready_get,
        "ListSnapshots": _unready_list,
        "CreateVolumeGroupSnapshot": _unready_group(pb.CreateVolumeGroupSnapshotResponse),
        "GetVolumeGroupSnapshot": _unready_group(pb.GetVolumeGroupSnapshotResponse),
    }
)
