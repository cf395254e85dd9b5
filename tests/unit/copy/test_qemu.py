"""qemu-img behind a fake runner: arguments built, outputs read, failures named."""

from __future__ import annotations

import json
import pathlib
import threading
from collections.abc import Callable, Sequence

import pytest

from csi_vm import errors
from csi_vm.copy import model, process, qemu

IMG = pathlib.Path("/images/disk.qcow2")
GOOD_CHECK = {"image-end-offset": 1000, "check-errors": 0, "format": "qcow2"}
GOOD_INFO = {"virtual-size": 1 << 30, "actual-size": 4096, "format": "qcow2"}


class FakeRunner:
    """Answers each qemu-img sub-command with a canned result; records the calls."""

    def __init__(self, answers: dict[str, process.Completed | Exception]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(
        self,
        args: Sequence[str],
        *,
        on_output: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> process.Completed:
        self.calls.append(list(args))
        answer = self.answers[args[1]]
        if isinstance(answer, Exception):
            raise answer
        if on_output is not None:
            on_output(answer.stdout)
        return answer


def _ok(data: object = "", rc: int = 0, stderr: str = "") -> process.Completed:
    text = data if isinstance(data, str) else json.dumps(data)
    return process.Completed(rc, text, stderr)


def test_inspect_returns_sizes() -> None:
    runner = FakeRunner({"check": _ok(GOOD_CHECK), "info": _ok(GOOD_INFO)})
    info = qemu.QemuImg(runner=runner).inspect(IMG, file_size=1000)
    assert info == qemu.Info(virtual_size=1 << 30, actual_size=4096)
    assert runner.calls[0] == ["qemu-img", "check", "-f", "qcow2", "--output=json", str(IMG)]


def test_a_file_that_ends_inside_its_last_cluster_is_whole() -> None:
    """qemu-img leaves the last table unpadded: a fresh image ends mid-cluster."""
    check = {**GOOD_CHECK, "image-end-offset": 4 * 65536}
    runner = FakeRunner({"check": _ok(check), "info": _ok({**GOOD_INFO, "cluster-size": 65536})})
    info = qemu.QemuImg(runner=runner).inspect(IMG, file_size=3 * 65536 + 8)
    assert info.virtual_size == 1 << 30


def test_leaked_clusters_are_accepted() -> None:
    runner = FakeRunner({"check": _ok({**GOOD_CHECK, "leaks": 3}, rc=3), "info": _ok(GOOD_INFO)})
    assert qemu.QemuImg(runner=runner).inspect(IMG, file_size=1000).virtual_size == 1 << 30


@pytest.mark.parametrize(
    ("check", "file_size", "match"),
    [
        (_ok({**GOOD_CHECK, "corruptions": 101}, rc=2), 1000, "corrupt or truncated.*101"),
        (
            _ok(rc=1, stderr="qemu-img: Could not open 'x': qcow2 header too short\n"),
            1000,
            "not a usable qcow2 image: Could not open 'x': qcow2 header too short",
        ),
        (
            _ok({**GOOD_CHECK, "image-end-offset": 5 * 65536}),
            4 * 65536,
            "truncated qcow2 image: 262144 bytes, it needs more than 262144",
        ),
    ],
    ids=["corruptions", "unreadable", "short-of-its-last-cluster"],
)
def test_inspect_refuses_damaged_images(
    check: process.Completed, file_size: int, match: str
) -> None:
    runner = FakeRunner({"check": check, "info": _ok(GOOD_INFO)})
    with pytest.raises(errors.InvalidInput, match=match):
        qemu.QemuImg(runner=runner).inspect(IMG, file_size=file_size)


@pytest.mark.parametrize(
    "extra",
    [
        {"backing-filename": "/etc/base.img"},
        {"format-specific": {"type": "qcow2", "data": {"data-file": "/dev/sda"}}},
    ],
    ids=["backing-file", "data-file"],
)
def test_inspect_refuses_images_that_read_other_files(extra: dict[str, object]) -> None:
    runner = FakeRunner({"check": _ok(GOOD_CHECK), "info": _ok({**GOOD_INFO, **extra})})
    with pytest.raises(errors.InvalidInput, match="reads other files"):
        qemu.QemuImg(runner=runner).inspect(IMG, file_size=1000)


@pytest.mark.parametrize(
    ("formats", "existing", "zeroed", "flags"),
    [
        ((model.Format.QCOW2, model.Format.RAW), False, False, ["-W"]),
        ((model.Format.QCOW2, model.Format.RAW), True, True, ["-W", "-n", "--target-is-zero"]),
        ((model.Format.QCOW2, model.Format.RAW), True, False, ["-W", "-n"]),
        ((model.Format.RAW, model.Format.QCOW2), False, False, []),
    ],
    ids=["to-raw-file", "to-fresh-device", "to-used-device", "to-qcow2"],
)
def test_convert_arguments(
    formats: tuple[model.Format, model.Format], existing: bool, zeroed: bool, flags: list[str]
) -> None:
    runner = FakeRunner({"convert": _ok()})
    qemu.QemuImg(runner=runner).convert(
        IMG, pathlib.Path("/t"), formats=formats, existing=existing, target_zeroed=zeroed
    )
    src, dst = formats
    assert runner.calls == [
        ["qemu-img", "convert", "-p", "-f", src, "-O", dst, "-m", "16", *flags, str(IMG), "/t"]
    ]


def test_convert_reports_percent() -> None:
    seen: list[float] = []
    runner = FakeRunner({"convert": _ok("    (0.00/100%)\r    (42.50/100%)\r")})
    qemu.QemuImg(runner=runner).convert(
        IMG,
        pathlib.Path("/t"),
        formats=(model.Format.QCOW2, model.Format.RAW),
        existing=False,
        target_zeroed=False,
        on_percent=seen.append,
    )
    assert seen == [42.5]


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (
            _ok(rc=1, stderr="qemu-img: error while writing at byte 0: No space left on device\n"),
            errors.OutOfRange,
            "no space left while converting",
        ),
        (_ok(rc=1, stderr="qemu-img: something odd\n"), errors.OperationFailed, "something odd"),
        (FileNotFoundError(2, "qemu-img"), errors.Unsupported, "not installed"),
        (process.Cancelled(), model.Interrupted, "interrupted"),
    ],
    ids=["no-space", "other", "missing-tool", "cancelled"],
)
def test_convert_failures(
    answer: process.Completed | Exception, error: type[Exception], match: str
) -> None:
    runner = FakeRunner({"convert": answer})
    with pytest.raises(error, match=match):
        qemu.QemuImg(runner=runner).convert(
            IMG,
            pathlib.Path("/t"),
            formats=(model.Format.QCOW2, model.Format.RAW),
            existing=False,
            target_zeroed=False,
        )


@pytest.mark.parametrize(("rc", "same"), [(0, True), (1, False)], ids=["same", "different"])
def test_compare(rc: int, same: bool) -> None:
    runner = FakeRunner({"compare": _ok(rc=rc)})
    formats = (model.Format.QCOW2, model.Format.RAW)
    assert qemu.QemuImg(runner=runner).same(IMG, pathlib.Path("/t"), formats=formats) is same


def test_compare_error_is_not_a_difference() -> None:
    runner = FakeRunner({"compare": _ok(rc=2, stderr="qemu-img: Could not open '/t'\n")})
    formats = (model.Format.QCOW2, model.Format.RAW)
    with pytest.raises(errors.OperationFailed, match="Could not open"):
        qemu.QemuImg(runner=runner).same(IMG, pathlib.Path("/t"), formats=formats)
