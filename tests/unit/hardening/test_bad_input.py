"""Property tests: any VM spec, config file or CLI argument validates or is refused cleanly.

Refused means `errors.InvalidInput` (or the CLI's exit code 2) with a
one-line message that names the field; never another exception, never a
traceback, never a change to the store. CSI_VM_HYPOTHESIS_EXAMPLES raises the
number of examples per property (150 in CI) for a longer hunt.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import signal
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csi_vm import config, errors, spec
from csi_vm.cli import main
from tests.support import reliability

pytestmark = pytest.mark.timeout(120)

EXAMPLES = int(os.environ.get("CSI_VM_HYPOTHESIS_EXAMPLES", "150"))
_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

#: names at and past every edge: separators, control characters, length 63/64, case
EDGE_NAMES = [
    "a/b",
    "../x",
    "a\x00b",
    "a\nb",
    "tab\there",
    "x" * 63,
    "x" * 64,
    "x" * 300,
    "",
    "-a",
    "a-",
    "A",
    "ünï",
    "a b",
    "$(id)",
    "`id`",
    "a;b",
    ".",
    "..",
    "a",
]
names = st.one_of(
    st.sampled_from(EDGE_NAMES),
    st.text(max_size=80),
    st.from_regex(config.NAME_PATTERN, fullmatch=True),
)
EDGE_SIZES: list[Any] = [
    0,
    1,
    -1,
    2**63,
    2**64,
    spec.MAX_DISK_BYTES,
    spec.MAX_DISK_BYTES + 1,
    "64TiB",
    "65TiB",
    "1.5G",
    "-1M",
    " 1 G ",
    "9" * 40,
    "0B",
    "1KiB",
    True,
    None,
    1.5,
    [],
    {},
]
sizes = st.one_of(
    st.sampled_from(EDGE_SIZES),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=12),
)

_tally: dict[str, dict[str, int]] = {}


def _count(fault: str, outcome: str) -> None:
    _tally.setdefault(fault, {}).setdefault(outcome, 0)
    _tally[fault][outcome] += 1


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    for fault, outcomes in _tally.items():
        for outcome, count in outcomes.items():
            reliability.record(fault, outcome, count=count)


def _one_line_naming(err: errors.CsiVmError, fields: tuple[str, ...]) -> None:
    text = str(err)
    assert "\n" not in text and "\r" not in text, f"not one line: {text!r}"
    # Either a field the test knows, or the "file: where: problem" form that
    # names a key the user wrote (e.g. a null key at the top level).
    named = any(f in text for f in fields) or len(text.split(": ", 2)) == 3
    assert named, f"no field named in: {text}"


def _write(text: str) -> pathlib.Path:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as handle:
        handle.write(text)
    return pathlib.Path(handle.name)


disks = st.fixed_dictionaries(
    {"name": names, "size": sizes, "driver": names},
    optional={
        "mode": st.sampled_from(["block", "filesystem", "BLOCK", "", "tape"]),
        "source": st.one_of(
            st.fixed_dictionaries({"image": st.text(max_size=40)}),
            st.fixed_dictionaries({"snapshot": names}),
            st.fixed_dictionaries({"vm": names, "disk": names}),
            st.dictionaries(st.sampled_from(["image", "snapshot", "vm", "disk", "x"]), names),
        ),
    },
)
vm_specs = st.fixed_dictionaries(
    {"name": names, "disks": st.lists(disks, max_size=18)},
    optional={
        "vcpus": st.one_of(st.integers(-5, 70), st.text(max_size=4)),
        "memory_mib": st.one_of(st.integers(-5, 2**21), st.none()),
        "colour": st.text(max_size=5),
    },
)
SPEC_FIELDS = (
    "name",
    "disks",
    "size",
    "driver",
    "mode",
    "source",
    "vcpus",
    "memory_mib",
    "colour",
    "VM spec",
)


@_SETTINGS
@given(vm_specs)
def test_vm_specs_validate_or_name_the_field(data: dict[str, Any]) -> None:
    path = _write(yaml.safe_dump(data))
    try:
        loaded = spec.load(path)
        _count("bad-vm-spec", reliability.COMPLETED)
        assert config.check_name(loaded.name, what="VM name") == loaded.name
    except errors.InvalidInput as err:
        _count("bad-vm-spec", reliability.REFUSED)
        _one_line_naming(err, SPEC_FIELDS)
    finally:
        path.unlink()


plain_names = st.from_regex(config.NAME_PATTERN, fullmatch=True)
valid_disks = st.lists(
    st.fixed_dictionaries(
        {
            "size": st.integers(1, spec.MAX_DISK_BYTES),
            "driver": plain_names,
            "mode": st.sampled_from([m.value for m in spec.Mode]),
        }
    ),
    min_size=1,
    max_size=16,
)


@_SETTINGS
@given(plain_names, valid_disks, st.integers(1, 64))
def test_valid_vm_specs_validate(name: str, disks: list[dict[str, Any]], vcpus: int) -> None:
    # The other side of the property: what is within every limit is accepted as is.
    named = [{**d, "name": f"d{i}"} for i, d in enumerate(disks)]
    path = _write(yaml.safe_dump({"name": name, "vcpus": vcpus, "disks": named}))
    try:
        loaded = spec.load(path)
    finally:
        path.unlink()
    assert loaded.name == name and [d.size for d in loaded.disks] == [d["size"] for d in disks]
    _count("bad-vm-spec", reliability.COMPLETED)


drivers = st.fixed_dictionaries(
    {"endpoint": st.one_of(st.text(max_size=30), st.just("unix:///run/x.sock"))},
    optional={
        "timeout": st.one_of(st.floats(allow_nan=True), st.integers(-1, 5000), st.text(max_size=4)),
        "nodes": st.dictionaries(names, st.text(max_size=10), max_size=3),
        "assert": st.lists(st.text(max_size=10), max_size=3),
        "secrets": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=2),
        "typo": st.integers(),
    },
)
configs = st.fixed_dictionaries(
    {"drivers": st.dictionaries(names, drivers, max_size=3)},
    optional={
        "node": names,
        "nodes": st.dictionaries(
            names, st.fixed_dictionaries({"libvirt": st.text(max_size=20)}), max_size=3
        ),
        "extra": st.text(max_size=5),
    },
)
CONFIG_FIELDS = (
    "drivers",
    "endpoint",
    "timeout",
    "nodes",
    "assert",
    "secrets",
    "typo",
    "node",
    "extra",
    "libvirt",
    "config file",
    "top level",
    "YAML",
)


@_SETTINGS
@given(st.one_of(configs.map(yaml.safe_dump), st.text(max_size=200)))
def test_config_files_validate_or_name_the_field(text: str) -> None:
    path = _write(text)
    try:
        config.load(path)
        _count("bad-config-file", reliability.COMPLETED)
    except errors.InvalidInput as err:
        _count("bad-config-file", reliability.REFUSED)
        _one_line_naming(err, CONFIG_FIELDS)
    finally:
        path.unlink()


# -- the command line -------------------------------------------------------------

_CLI_CASES = {
    "clone": lambda a, b, s: ["clone", a, b],
    "expand": lambda a, b, s: ["disk", "expand", a, b, s],
    "snapshot": lambda a, b, s: ["snapshot", "create", a, "--name", b],
    "delete": lambda a, b, s: ["vm", "delete", a],
    "restore": lambda a, b, s: ["snapshot", "restore", a, "--as", b],
}


@pytest.fixture(scope="module")
def cli_files() -> Iterator[tuple[pathlib.Path, pathlib.Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = pathlib.Path(tmp) / "config.yaml"
        # Never reached: every argument is refused or names a VM that does not exist.
        cfg.write_text(yaml.safe_dump({"drivers": {"local": {"endpoint": "unix:///nonexistent"}}}))
        db = pathlib.Path(tmp) / "csi-vm.db"
        _cli(["vm", "list", "--config", str(cfg), "--db", str(db)])
        yield cfg, db


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    code = 0
    old = sys.argv
    # main.run() sets SIGINT/SIGTERM handlers (and ignores both on its way
    # out): restore them, or later tests and their children inherit SIG_IGN.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    sys.argv = ["csi-vm", *argv]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main.run()
    except SystemExit as done:
        code = int(done.code or 0)
    finally:
        sys.argv = old
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return code, err.getvalue()


def _dump(db: pathlib.Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.iterdump())


@_SETTINGS
@given(st.sampled_from(sorted(_CLI_CASES)), names, names, sizes.map(str))
def test_cli_arguments_are_refused_cleanly(
    cli_files: tuple[pathlib.Path, pathlib.Path], command: str, first: str, second: str, size: str
) -> None:
    cfg, db = cli_files
    if "\x00" in first + second + size:
        # execve cannot pass a NUL in an argument: the shell never hands one over.
        first, second, size = (v.replace("\x00", "") for v in (first, second, size))
    before = _dump(db)
    argv = [*_CLI_CASES[command](first, second, size), "--config", str(cfg), "--db", str(db)]
    code, err = _cli(argv)
    assert code == errors.Rejected.exit_code, (argv, code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    assert _dump(db) == before
    _count("bad-cli-arguments", reliability.REFUSED)
