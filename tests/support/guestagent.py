"""Talking to the agent guest's qemu-guest-agent from a test, through virsh.

Tests ask the real agent what csi-vm itself never needs to: is the guest
frozen now, run this command in the guest. `virsh qemu-agent-command` is the
plain libvirt client door to the agent, so this needs no libvirt binding.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
import time
from typing import Any

from launcher import agentguest

#: a guest-exec of a shell one-liner under TCG takes well under this
EXEC_LIMIT_S = 60.0


def command(domain: str, execute: str, *, timeout_s: int = 10, **arguments: Any) -> Any:
    """One agent command's "return" value; a failure or timeout raises CalledProcessError."""
    request = json.dumps({"execute": execute, "arguments": arguments} if arguments else
                         {"execute": execute})  # fmt: skip
    done = subprocess.run(
        ["virsh", "-c", "qemu:///system", "qemu-agent-command", domain, request,
         "--timeout", str(timeout_s)],
        capture_output=True, text=True, check=True, timeout=timeout_s + 30,
    )  # fmt: skip
    return json.loads(done.stdout)["return"]


def wait_for_agent(domain: str, *, within: float) -> None:
    """Until the agent in the guest answers a ping (it starts a moment after the counter)."""
    deadline = time.monotonic() + within
    while True:
        try:
            command(domain, "guest-ping", timeout_s=2)
            return
        except subprocess.CalledProcessError as err:
            if time.monotonic() > deadline:
                raise AssertionError(f"{domain}: no guest agent answers: {err.stderr}") from err
        time.sleep(0.1)


def freeze_status(domain: str) -> str:
    """ "frozen" or "thawed", as the agent in the guest knows it."""
    return str(command(domain, "guest-fsfreeze-status"))


def run(domain: str, script: str) -> str:
    """Run `sh -c script` in the guest, wait for it; its stdout, or AssertionError."""
    pid = command(domain, "guest-exec", path="sh", arg=["-c", script], **{"capture-output": True})[
        "pid"
    ]
    deadline = time.monotonic() + EXEC_LIMIT_S
    while time.monotonic() < deadline:
        status = command(domain, "guest-exec-status", pid=pid)
        if status["exited"]:
            out = base64.b64decode(status.get("out-data", "")).decode()
            err = base64.b64decode(status.get("err-data", "")).decode()
            assert status["exitcode"] == 0, f"guest: {script!r} failed: {err or out}"
            return out
        time.sleep(0.1)
    raise AssertionError(f"guest: {script!r} still runs after {EXEC_LIMIT_S} s")


def signal_agent(domain: str, signal: str) -> None:
    """Send qemu-ga a signal (STOP, TERM) from the guest, through a child it spawns.

    The agent's answer to the exec may be lost to the signal: not waited for.
    """
    request = {
        "execute": "guest-exec",
        "arguments": {"path": "sh", "arg": ["-c", f"kill -{signal} $(pidof qemu-ga)"]},
    }
    subprocess.run(
        ["virsh", "-c", "qemu:///system", "qemu-agent-command", domain, json.dumps(request),
         "--timeout", "5"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def stop_agent(domain: str) -> None:
    """SIGSTOP the guest's qemu-ga: it keeps its port open and never answers again."""
    signal_agent(domain, "STOP")
    deadline = time.monotonic() + EXEC_LIMIT_S
    while time.monotonic() < deadline:
        try:
            command(domain, "guest-ping", timeout_s=2)
        except subprocess.CalledProcessError:
            return  # the ping itself waited: no sleep needed
    raise AssertionError(f"{domain}: the guest agent still answers after SIGSTOP")


def backing_file(device: pathlib.Path) -> pathlib.Path:
    """The file behind a loop device (the local driver's volume), from sysfs."""
    rdev = os.stat(device).st_rdev
    sysfs = pathlib.Path(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}/loop/backing_file")
    return pathlib.Path(sysfs.read_text().strip())


#: what the guest writes on its console around a stall (`stall_agent`)
STALLED, WOKEN = "CSIVMCTR agent stopped", "CSIVMCTR agent woken"


def stall_agent(domain: str, *, console: pathlib.Path, seconds: int) -> None:
    """SIGSTOP the guest's qemu-ga for `seconds`, then SIGCONT it, from a child it spawns.

    Returns once the guest's console says the agent is stopped. The host learns
    it from the console, not by asking the agent: an unanswered command would
    leave libvirt waiting on the agent before the command under test asks it.
    The child lets the agent answer the exec first: an exec whose answer is
    lost leaves virsh waiting out its time-out, nothing worse.
    """
    script = (
        f"q=$(pidof qemu-ga); kill -STOP $q && echo '{STALLED}' >/dev/console; "
        f"sleep {seconds}; kill -CONT $q; echo '{WOKEN}' >/dev/console"
    )
    _exec_detached(domain, script)
    wait_for_console(domain, console, STALLED)


def slow_ready(seconds: int) -> str:
    """What the guest writes on its console once its agent has a `seconds` freeze hook."""
    return f"CSIVMCTR agent restarted, freeze hook of {seconds} s"


def slow_done(seconds: int) -> str:
    """What the guest writes on its console when that hook ends (the freeze follows)."""
    return f"CSIVMCTR slow freeze of {seconds} s done"


def slow_freeze(domain: str, *, console: pathlib.Path, seconds: int) -> None:
    """Restart the guest's qemu-ga with a freeze hook that takes `seconds` before it freezes.

    qemu-ga runs its fsfreeze hook, and waits for it, before it freezes: the
    agent answers everything until a freeze, then nothing until the hook is
    done and the filesystems are frozen, as a guest with a long flush would.
    A child of the old agent (it answers the exec first) stops it and starts
    the new one; the host learns it from the console, then waits for a ping.
    """
    hook = "/run/slow-freeze-hook"
    body = (
        f'#!/bin/sh\\n[ "$1" = freeze ] || exit 0\\nsleep {seconds}\\n'
        f'echo "{slow_done(seconds)}" >/dev/console\\n'
    )
    script = (
        f"printf '{body}' >{hook} && chmod +x {hook} && "
        "kill -TERM $(pidof qemu-ga) && while pidof qemu-ga >/dev/null; do sleep 0.1; done && "
        f"({agentguest.agent_command()} -F{hook} </dev/null >/dev/null 2>&1 &) && "
        f"echo '{slow_ready(seconds)}' >/dev/console"
    )
    _exec_detached(domain, script)
    wait_for_console(domain, console, slow_ready(seconds))
    wait_for_agent(domain, within=EXEC_LIMIT_S)


def _exec_detached(domain: str, script: str) -> None:
    """Have the agent start `script` in the guest a second from now, without waiting for it.

    The pause lets the agent answer the exec before the script touches the
    agent itself; an answer lost anyway only leaves virsh waiting its time-out.
    """
    request = {
        "execute": "guest-exec",
        "arguments": {"path": "sh", "arg": ["-c", f"sleep 1; {script}"]},
    }
    subprocess.run(
        ["virsh", "-c", "qemu:///system", "qemu-agent-command", domain, json.dumps(request),
         "--timeout", "10"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def wait_for_console(
    domain: str, console: pathlib.Path, line: str, *, within: float = EXEC_LIMIT_S
) -> None:
    deadline = time.monotonic() + within
    while line not in console.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"{domain}: the guest never wrote {line!r} on its console")
        time.sleep(0.05)
