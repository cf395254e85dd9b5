"""qemu-img, for qcow2: the only module that runs it.

``check`` and ``info`` refuse images that are truncated, corrupt, or that
would read other host files (a backing file or an external data file);
``convert`` turns qcow2 into raw and back; ``compare`` verifies a conversion.
Every failure becomes one line naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import threading
from collections.abc import Callable
from typing import Any

from csi_vm import errors
from csi_vm.copy import model, process

# qemu-img check exit codes (qemu-img(1)): 2 = corruptions found, 3 = only
# leaked clusters, which waste space but lose nothing.
_CHECK_OK = (0, 3)
# qemu-img compare: 0 identical, 1 different, anything else an error.
_SAME, _DIFFERENT = 0, 1
#: "-p" progress lines: "    (42.00/100%)\r"
_PERCENT = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")
_CORRUPT = 2
#: qcow2's default cluster size, for an `info` that does not name it
_DEFAULT_CLUSTER = 65536


@dataclasses.dataclass(frozen=True, kw_only=True)
class Info:
    virtual_size: int
    #: bytes the image file takes on its filesystem
    actual_size: int


class QemuImg:
    def __init__(self, *, runner: process.Runner = process.run, binary: str = "qemu-img") -> None:
        self._run = runner
        self._binary = binary

    def inspect(self, path: pathlib.Path, *, file_size: int) -> Info:
        """Check a qcow2 image and return its sizes; InvalidInput if it is unusable."""
        report = self._check(path)
        info = self._json(["info", "-f", "qcow2", "--output=json", str(path)], path, ok=(0,))
        end = int(report.get("image-end-offset", 0))
        # image-end-offset is the end of the last allocated cluster, but the
        # file may stop inside it: qemu-img writes its tables (the L1 table of
        # a fresh `qemu-img create` image) without padding to a whole cluster.
        cluster = int(info.get("cluster-size", _DEFAULT_CLUSTER))
        if end - cluster >= file_size:
            raise errors.InvalidInput(
                f"{path} is a truncated qcow2 image: {file_size} bytes, it needs "
                f"more than {end - cluster}"
            )
        data = info.get("format-specific", {}).get("data", {})
        if info.get("backing-filename") or data.get("data-file"):
            raise errors.InvalidInput(
                f"{path} is a qcow2 image that reads other files (backing or data file)",
                hint="flatten it first: qemu-img convert -O qcow2 IMAGE FLAT",
            )
        return Info(virtual_size=int(info["virtual-size"]), actual_size=int(info["actual-size"]))

    def convert(
        self,
        source: pathlib.Path,
        target: pathlib.Path,
        *,
        formats: tuple[model.Format, model.Format],
        existing: bool,
        target_zeroed: bool,
        on_percent: Callable[[float], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Convert; ``existing`` writes into the target (a device) instead of creating it."""
        src_fmt, dst_fmt = formats
        args = ["convert", "-p", "-f", src_fmt, "-O", dst_fmt, "-m", "16"]
        if dst_fmt is model.Format.RAW:
            # Out-of-order writes only suit raw targets: they fragment qcow2 files.
            args.append("-W")
        if existing:
            args.append("-n")
            if target_zeroed:
                args.append("--target-is-zero")
        args += [str(source), str(target)]
        done = self._call(args, source, on_output=_percent_parser(on_percent), cancel=cancel)
        if done.returncode != 0:
            raise _failure(done, what=f"converting {source} to {dst_fmt} at {target}")

    def same(
        self,
        first: pathlib.Path,
        second: pathlib.Path,
        *,
        formats: tuple[model.Format, model.Format],
        cancel: threading.Event | None = None,
    ) -> bool:
        """Whether two images hold the same guest-visible content."""
        args = ["compare", "-f", formats[0], "-F", formats[1], str(first), str(second)]
        done = self._call(args, first, on_output=None, cancel=cancel)
        if done.returncode not in (_SAME, _DIFFERENT):
            raise _failure(done, what=f"comparing {first} with {second}")
        return done.returncode == _SAME

    def _check(self, path: pathlib.Path) -> dict[str, Any]:
        args = ["check", "-f", "qcow2", "--output=json", str(path)]
        done = self._call(args, path, on_output=None, cancel=None)
        if done.returncode == _CORRUPT:
            count = _parse(done, args, path).get("corruptions", "some")
            raise errors.InvalidInput(
                f"{path} is a corrupt or truncated qcow2 image "
                f"(qemu-img check found {count} corruptions)",
                hint="get an intact copy of the image; qemu-img check shows details",
            )
        return self._json(args, path, ok=_CHECK_OK, done=done)

    def _json(
        self,
        args: list[str],
        path: pathlib.Path,
        *,
        ok: tuple[int, ...],
        done: process.Completed | None = None,
    ) -> dict[str, Any]:
        if done is None:
            done = self._call(args, path, on_output=None, cancel=None)
        if done.returncode not in ok:
            reason = _last_line(done.stderr) or f"qemu-img {args[0]} exited {done.returncode}"
            raise errors.InvalidInput(
                f"{path} is not a usable qcow2 image: {reason}",
                hint="it may be truncated or corrupt; qemu-img check shows details",
            )
        return _parse(done, args, path)

    def _call(
        self,
        args: list[str],
        path: pathlib.Path,
        *,
        on_output: Callable[[str], None] | None,
        cancel: threading.Event | None,
    ) -> process.Completed:
        try:
            return self._run([self._binary, *args], on_output=on_output, cancel=cancel)
        except FileNotFoundError as err:
            raise errors.Unsupported(
                f"qemu-img is needed for qcow2 ({path}) but is not installed",
                hint="install qemu-utils",
            ) from err
        except process.Cancelled as err:
            raise model.Interrupted(f"interrupted while qemu-img worked on {path}") from err


def _parse(done: process.Completed, args: list[str], path: pathlib.Path) -> dict[str, Any]:
    try:
        parsed = json.loads(done.stdout)
    except ValueError as err:
        raise errors.OperationFailed(f"qemu-img {args[0]} {path}: unreadable output") from err
    if not isinstance(parsed, dict):
        raise errors.OperationFailed(f"qemu-img {args[0]} {path}: unexpected output")
    return parsed


def _percent_parser(on_percent: Callable[[float], None] | None) -> Callable[[str], None] | None:
    if on_percent is None:
        return None
    report = on_percent

    def parse(text: str) -> None:
        found = _PERCENT.findall(text)
        if found:
            report(float(found[-1]))

    return parse


def _failure(done: process.Completed, *, what: str) -> errors.CsiVmError:
    reason = _last_line(done.stderr) or f"exit status {done.returncode}"
    if "No space left" in reason:
        return errors.OutOfRange(f"no space left while {what}", hint="free some space")
    return errors.OperationFailed(f"qemu-img failed {what}: {reason}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("qemu-img: ") if lines else ""
