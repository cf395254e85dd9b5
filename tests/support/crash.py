"""The real `csi-vm` command, killable at a chosen journaled step: how crash tests reach every step.

    subprocess.run(crash.command("snapshot", "create", "vm1"), env={..., crash.ENV: "3"})

The flow engine calls `engine.boundary_hooks` at each step boundary and
installs none itself. `command` runs the CLI through this module, which
installs a hook where `ENV` says: "N" kills the process (SIGKILL) right
before the N-th journaled step of a flow, "N:after" right after that step's
answer is journaled. A value that is not a number fails inside the flow, as
an error nobody expected would.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sys

from csi_vm.cli import main as cli
from csi_vm.flows import engine

ENV = "CSI_VM_CRASH_AT"

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_MAIN = (
    f"import sys; sys.path.insert(0, {str(_ROOT)!r}); from tests.support import crash; crash.main()"
)


def command(*args: str) -> list[str]:
    """The argv of `csi-vm args...` that obeys `ENV` in its environment."""
    return [sys.executable, "-c", _MAIN, *args]


def install(spec: str) -> None:
    """Kill this process at the step boundary `spec` names (see the module's docstring)."""
    befores: dict[str, int] = {}

    def hook(flow_id: str, when: str) -> None:
        befores[flow_id] = befores.get(flow_id, 0) + (when == "before")
        # Parsed here, not at install: a malformed value must fail inside a flow.
        number, _, at = spec.partition(":")
        if int(number) == befores[flow_id] and (at or "before") == when:
            os.kill(os.getpid(), signal.SIGKILL)

    engine.boundary_hooks.append(hook)


def main() -> None:
    spec = os.environ.get(ENV)
    if spec:
        install(spec)
    cli.run()
