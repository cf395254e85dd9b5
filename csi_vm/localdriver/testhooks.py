"""TEST ONLY: pause the driver at a named point so a test can kill it right there.

Set CSI_VM_LOCALDRIVER_PAUSE_AT to a point name (comma-separated for several).
When the driver reaches that point it writes <state dir>/paused-at-<point>
and sleeps, which gives a crash test a deterministic moment for kill -9.
Unset (always, outside tests) every call is a dictionary lookup and returns.

Points: volume-temp (image written, not yet renamed), volume-renamed (image in
place, row not committed), and the same two for snapshot-.
"""

from __future__ import annotations

import os
import pathlib
import time

ENV_VAR = "CSI_VM_LOCALDRIVER_PAUSE_AT"
POINTS = ("volume-temp", "volume-renamed", "snapshot-temp", "snapshot-renamed")
#: the pause ends by itself so a forgotten variable cannot hang a driver for good
PAUSE_S = 120.0


class PauseHooks:
    def __init__(self, state_dir: pathlib.Path, *, points: frozenset[str]) -> None:
        self._state_dir = state_dir
        self._points = points

    @classmethod
    def from_environment(cls, state_dir: pathlib.Path) -> PauseHooks:
        raw = os.environ.get(ENV_VAR, "")
        return cls(state_dir, points=frozenset(p for p in raw.split(",") if p))

    def marker(self, point: str) -> pathlib.Path:
        return self._state_dir / f"paused-at-{point}"

    def clear_markers(self) -> None:
        for point in POINTS:
            self.marker(point).unlink(missing_ok=True)

    def reached(self, point: str) -> None:
        if point not in self._points:
            return
        self.marker(point).write_text(f"{os.getpid()}\n")
        time.sleep(PAUSE_S)
