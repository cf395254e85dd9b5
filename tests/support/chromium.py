"""Headless Chromium driven over the DevTools protocol on a pipe, for page-layout tests.

    with Browser.start(profile_dir) as browser:
        page = browser.open(url, width=1366, height=768)
        page.evaluate("window.innerHeight")
        png = page.screenshot()

`--remote-debugging-pipe` makes Chromium read protocol commands on fd 3 and
write replies and events on fd 4, each a JSON text ended by a NUL byte: no
port, no websocket library. The flags keep it quiet on a machine without
network or display (background networking on a closed network makes it
misbehave). Waiting is on the protocol's own replies and load event, with a
deadline, never a sleep.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import pathlib
import select
import shutil
import subprocess
import time
import types
from typing import Any

#: Debian's package name and binary (scripts/setup installs it)
BINARY = "chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
#: the longest any one protocol step may take, start-up included
DEADLINE_S = 60.0


class BrowserError(RuntimeError):
    pass


def binary() -> str:
    found = shutil.which(BINARY)
    if found is None:
        raise BrowserError(f"{BINARY} is not installed: run scripts/setup as root")
    return found


@dataclasses.dataclass
class Browser:
    process: subprocess.Popen[bytes]
    commands: int  # our end of Chromium's fd 3
    replies: int  # our end of Chromium's fd 4
    _buffer: bytes = b""
    _next_id: int = 0

    @classmethod
    def start(cls, profile_dir: pathlib.Path) -> Browser:
        """Start Chromium with a fresh profile in ``profile_dir`` (which must be empty)."""
        to_chromium, commands = _pipe(child_end=0)
        replies, from_chromium = _pipe(child_end=1)
        # bash (dash takes single-digit fds only) puts the pipe ends on fd 3 and 4,
        # where Chromium looks for them.
        wiring = f'exec "$0" "$@" 3<&{to_chromium} 4>&{from_chromium}'
        process = subprocess.Popen(
            ["bash", "-c", wiring, binary(), *FLAGS, f"--user-data-dir={profile_dir}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_chromium, from_chromium),
        )
        os.close(to_chromium)
        os.close(from_chromium)
        return cls(process=process, commands=commands, replies=replies)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object | types.TracebackType) -> None:
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.call("Browser.close")
            except (BrowserError, OSError):
                self.process.kill()
            try:
                self.process.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for fd in (self.commands, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)

    def open(self, url: str, *, width: int, height: int) -> Page:
        """A new tab of ``width`` x ``height`` CSS pixels showing ``url``, once it has loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(browser=self, session=attached["sessionId"])
        page.call("Page.enable")
        page.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.call("Page.navigate", {"url": url})
        self._wait_for("Page.loadEventFired", session=page.session)
        return page

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        """Send one command and return its result; a protocol error raises BrowserError."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        reply = self._wait_for(None, reply_to=self._next_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def _wait_for(
        self, event: str | None, *, reply_to: int | None = None, session: str | None = None
    ) -> dict[str, Any]:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            message = self._read(deadline)
            if reply_to is not None and message.get("id") == reply_to:
                return message
            if (
                event is not None
                and message.get("method") == event
                and (session is None or message.get("sessionId") == session)
            ):
                return message

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.replies], [], [], max(left, 0))
            if not ready:
                raise BrowserError(f"Chromium did not answer within {DEADLINE_S:.0f} s")
            chunk = os.read(self.replies, 1 << 16)
            if not chunk:
                raise BrowserError(f"Chromium exited (code {self.process.poll()})")
            self._buffer += chunk
        text, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(text)
        return message


def _pipe(*, child_end: int) -> tuple[int, int]:
    """A pipe whose end for the child sits above fd 4, so moving it onto 3 or 4 clobbers nothing."""
    ends = list(os.pipe())
    moved = fcntl.fcntl(ends[child_end], fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(ends[child_end])
    ends[child_end] = moved
    return ends[0], ends[1]


@dataclasses.dataclass
class Page:
    browser: Browser
    session: str

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, session=self.session)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression!r} failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self) -> bytes:
        """What the viewport shows, as PNG."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        return base64.b64decode(data)
