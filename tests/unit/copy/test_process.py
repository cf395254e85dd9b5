"""The child-process runner on small real children."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from csi_vm.copy import process


def test_output_is_collected_and_streamed() -> None:
    seen: list[str] = []
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    done = process.run([sys.executable, "-c", code], on_output=seen.append)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    assert "".join(seen) == "out\n"


def test_cancel_kills_the_child() -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(process.Cancelled):
        process.run([sys.executable, "-c", "import time; time.sleep(30)"], cancel=cancel)
    assert time.monotonic() - started < 10


def test_missing_tool() -> None:
    with pytest.raises(FileNotFoundError):
        process.run(["csi-vm-no-such-tool"])
