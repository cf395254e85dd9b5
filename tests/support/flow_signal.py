"""`tests.support.crash` aimed at one kind of flow, with SIGKILL or SIGINT.

    subprocess.run(flow_signal.command("clone", "gold", "--count", "3", ...),
                   env={..., crash.ENV: "4:after", flow_signal.KIND: "fanout"})

Only the boundaries of flows whose id KIND matches count: "fanout" for a
fan-out's own flow (fanout-<hex>), or a pattern such as "fanout-[0-9a-f]+-2"
for the flow of its second clone. With SIGNAL=INT the process sends itself
SIGINT there instead of SIGKILL, once, and the step waits until the
command's handler has seen it: what Ctrl-C at that moment does, without a
race between the handler and the steps that follow. SIGNAL=FAIL makes the
step fail there (OperationFailed), as a driver's failure would.
"""

from __future__ import annotations

import os
import pathlib
import re
import signal
import sys
import threading

from csi_vm import errors
from csi_vm.cli import main as cli
from csi_vm.flows import engine
from tests.support import crash

KIND = "CSI_VM_CRASH_KIND"
SIGNAL = "CSI_VM_CRASH_SIGNAL"

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_MAIN = (
    f"import sys; sys.path.insert(0, {str(_ROOT)!r}); "
    "from tests.support import flow_signal; flow_signal.main()"
)


def command(*args: str) -> list[str]:
    return [sys.executable, "-c", _MAIN, *args]


def install(spec: str, *, kind: str, how: str) -> None:
    number, _, at = spec.partition(":")
    own = re.compile(kind if "[" in kind else rf"{re.escape(kind)}-[0-9a-f]+")
    befores: dict[str, int] = {}
    fired = threading.Event()

    def hook(flow_id: str, when: str) -> None:
        if not own.fullmatch(flow_id) or fired.is_set():
            return
        befores[flow_id] = befores.get(flow_id, 0) + (when == "before")
        if int(number) != befores[flow_id] or (at or "before") != when:
            return
        fired.set()
        if how == "INT":
            _interrupt()
        elif how == "FAIL":
            raise errors.OperationFailed(f"failure injected at {flow_id} step {number}")
        else:
            os.kill(os.getpid(), signal.SIGKILL)

    engine.boundary_hooks.append(hook)


def _interrupt() -> None:
    """SIGINT to this process; returns once the cancel event of its handler is set."""
    handler = signal.getsignal(signal.SIGINT)
    cells = getattr(handler, "__closure__", None) or ()
    events = [c.cell_contents for c in cells if isinstance(c.cell_contents, threading.Event)]
    assert events, "SIGINT is not handled by signals.run_cancellable here"
    os.kill(os.getpid(), signal.SIGINT)
    events[0].wait()


def main() -> None:
    spec, kind = os.environ.get(crash.ENV), os.environ.get(KIND)
    if spec and kind:
        install(spec, kind=kind, how=os.environ.get(SIGNAL, "KILL"))
    cli.run()
