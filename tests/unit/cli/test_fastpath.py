"""`csi-vm vm show` answers from the console script's fast path exactly as from the full CLI.

Both run as real processes on the same real stores: the console script's
entry (csi_vm/cli/fastpath.py, `python -m csi_vm`) and the full click CLI
(csi_vm.cli.main.run). Every command line must give the same exit code,
output and errors to the byte; the lines the fast path is for must be
answered by it, without click, and every other line left to the full CLI.
"""

from __future__ import annotations

import io
import os
import pathlib
import subprocess
import sys
import tomllib

import pytest

import csi_vm
from csi_vm import errors
from csi_vm.cli import fastpath, fastshow, paths, vmenv
from csi_vm.store import db
from tests.support import fleet

pytestmark = pytest.mark.timeout(180)

FAST = [sys.executable, "-m", "csi_vm"]
FULL = [sys.executable, "-c", "from csi_vm.cli.main import run; run()"]
CONFIG = """\
drivers:
  local:
    endpoint: unix:///run/csi/x.sock
    secrets: {password: s3cret-value}
"""
GIB = 1024 * 1024 * 1024


def _settled(path: pathlib.Path, text: str) -> None:
    """Write a config whose times a later write could not reproduce (see check_config)."""
    path.write_text(text)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))


def _add_vm(
    store: db.Store, name: str, *, spec: str, disks: list[tuple[str, int, str, str]]
) -> None:
    with store.transaction() as cur:
        cur.execute("INSERT INTO vms (name, spec, created) VALUES (?, ?, 1.0)", (name, spec))
        cur.executemany(
            "INSERT INTO disks (vm, name, driver, mode, size, volume_id)"
            " VALUES (?, ?, 'local', ?, ?, ?)",
            [(name, disk, mode, size, volume) for disk, size, mode, volume in disks],
        )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("fastpath")
    _settled(tmp / "config.yaml", CONFIG)
    _settled(tmp / "bad.yaml", "drivers: [\n")
    store = db.Store(tmp / "fleet.db")
    fleet.seed(store, count=12)
    _add_vm(
        store,
        "big-1",
        spec='{"vcpus": 8, "memory_mib": 3072}',
        disks=[("root", 3 * GIB // 2, "filesystem", "pvc-1"), ("data", 5 * GIB, "block", "pvc-2")],
    )
    _add_vm(store, "broken-1", spec='{"vcpus": 1, "memory_mib": 100}', disks=[])
    # Text rich would rewrite in a table, and JSON and YAML escape.
    _add_vm(
        store,
        "odd-1",
        spec='{"vcpus": 2, "memory_mib": 512}',
        disks=[("root", 1024, "block", "vol-\u00e9t\u00e9"), ("tab", 1, "block", "a\tb")],
    )
    _add_vm(store, "float-1", spec='{"vcpus": 2.0, "memory_mib": 512}', disks=[])
    _add_vm(store, "empty-1", spec='{"vcpus": 1, "memory_mib": 1}', disks=[])
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO running (vm, node, uri, domain, boot, started)"
            " VALUES ('big-1', 'node-b', 'qemu:///system', 'big-1', '{\"kernel\": \"k\"}', 1.0)"
        )
        # A running row the full CLI cannot read: it fails, and so must the fast path.
        cur.execute(
            "INSERT INTO running (vm, node, uri, domain, boot, started)"
            " VALUES ('broken-1', 'node-b', 'qemu:///system', 'broken-1', '{', 1.0)"
        )
    store.close()
    flows = db.Store(tmp / "flows.db")
    fleet.seed(flows, count=3)
    with flows.transaction() as cur:
        # A flow whose process is gone: the full CLI warns of it.
        cur.execute(
            "INSERT INTO flows (id, kind, vm, args, state, pid, started, updated)"
            " VALUES ('clone-gone', 'clone', 'vm-000001', '{}', 'running', 2147483646, 1.0, 1.0)"
        )
    flows.close()
    blob = db.Store(tmp / "blob.db")
    _add_vm(blob, "blob-1", spec='{"vcpus": 1, "memory_mib": 1}', disks=[])
    with blob.transaction() as cur:
        # A node that is not text: the full CLI prints what Python makes of it.
        cur.execute(
            "INSERT INTO running (vm, node, uri, domain, boot, started)"
            " VALUES ('blob-1', X'6e6f6465', 'qemu:///system', 'blob-1', '{}', 1.0)"
        )
    blob.close()
    newer = db.Store(tmp / "newer.db")
    newer.connection().execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    newer.close()
    files = {
        "cfg": str(tmp / "config.yaml"),
        "bad": str(tmp / "bad.yaml"),
        "db": str(tmp / "fleet.db"),
        "flows": str(tmp / "flows.db"),
        "newer": str(tmp / "newer.db"),
        "blob": str(tmp / "blob.db"),
        "fresh": str(tmp / "fresh" / "csi-vm.db"),
        "state": str(tmp / "state"),
    }
    # The config as the full CLI checks it, remembered: the state of any
    # host where csi-vm has run once since the config last changed.
    done = subprocess.run(
        [*FULL, "vm", "list"], env=_env(files, {}), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return files


def _env(files: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "CSI_VM_CONFIG": files["cfg"],
        "CSI_VM_DB": files["db"],
        "CSI_VM_STATE_DIR": files["state"],
    }
    return {**env, **{key: value.format(**files) for key, value in extra.items()}}


#: command line, environment beside the fleet's, answered by the fast path
LINES: dict[str, tuple[list[str], dict[str, str], bool]] = {
    "running": (["vm-000000"], {}, True),
    "stopped": (["vm-000001"], {}, True),
    "wide": (["vm-000000", "-o", "wide"], {}, True),
    "json": (["vm-000000", "-o", "json"], {}, True),
    "json-stopped": (["vm-000001", "-o", "json"], {}, True),
    "yaml": (["vm-000000", "-o", "yaml"], {}, True),
    "name": (["vm-000002", "-o", "name"], {}, True),
    "table-long": (["vm-000002", "--output", "table"], {}, True),
    "no-headers": (["vm-000002", "--no-headers"], {}, True),
    "wide-no-headers": (["--no-headers", "vm-000002", "-o", "wide"], {}, True),
    "options-first": (["-o", "json", "vm-000003"], {}, True),
    "sizes": (["big-1", "-o", "wide"], {}, True),
    "sizes-json": (["big-1", "-o", "json"], {}, True),
    "sizes-yaml": (["big-1", "-o", "yaml"], {}, True),
    "no-disks": (["empty-1"], {}, True),
    "no-disks-wide": (["empty-1", "-o", "wide"], {}, True),
    "no-disks-yaml": (["empty-1", "-o", "yaml"], {}, True),
    "broken-running-row": (["broken-1"], {}, False),
    "node-not-text": (["blob-1"], {"CSI_VM_DB": "{blob}"}, False),
    "node-not-text-json": (["blob-1", "-o", "json"], {"CSI_VM_DB": "{blob}"}, False),
    "odd-table": (["odd-1"], {}, True),
    "odd-wide": (["odd-1", "-o", "wide"], {}, False),
    "odd-json": (["odd-1", "-o", "json"], {}, True),
    "odd-yaml": (["odd-1", "-o", "yaml"], {}, True),
    "float-spec": (["float-1"], {}, False),
    "terminal-table": (["vm-000001"], {"FORCE_COLOR": "1"}, False),
    "terminal-json": (["vm-000001", "-o", "json"], {"FORCE_COLOR": "1"}, True),
    "unknown-vm": (["web-1"], {}, False),
    "unknown-vm-json": (["web-1", "-o", "json"], {}, False),
    "help": (["vm-000001", "--help"], {}, False),
    "debug": (["vm-000001", "--debug"], {}, False),
    "config-option": (["vm-000001", "-c", "{cfg}"], {}, False),
    "unknown-option": (["vm-000001", "-x"], {}, False),
    "bad-output": (["vm-000001", "-o", "toml"], {}, False),
    "output-case": (["vm-000001", "-o", "JSON"], {}, False),
    "no-output-value": (["vm-000001", "-o"], {}, False),
    "twice": (["vm-000001", "-o", "json", "-o", "yaml"], {}, False),
    "extra": (["vm-000001", "vm-000002"], {}, False),
    "no-name": ([], {}, False),
    "unfinished-flow": (["vm-000001"], {"CSI_VM_DB": "{flows}"}, False),
    "newer-store": (["vm-000001"], {"CSI_VM_DB": "{newer}"}, False),
    "bad-config": (["vm-000001"], {"CSI_VM_CONFIG": "{bad}"}, False),
    "no-config": (["vm-000001"], {"CSI_VM_CONFIG": "{state}/none.yaml"}, False),
    "no-store": (["vm-000001"], {"CSI_VM_DB": "{fresh}"}, False),
}


@pytest.mark.parametrize(("args", "extra", "answered"), LINES.values(), ids=LINES.keys())
def test_answers_as_the_full_cli_does(
    args: list[str],
    extra: dict[str, str],
    answered: bool,
    files: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = ["vm", "show", *(arg.format(**files) for arg in args)]
    env = _env(files, extra)
    # The fast path first: where it leaves the line, the full CLI may change
    # the store (create it) after it has looked.
    fast = subprocess.run([*FAST, *line], env=env, capture_output=True, timeout=60, check=False)
    full = subprocess.run([*FULL, *line], env=env, capture_output=True, timeout=60, check=False)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        full.returncode,
        full.stdout,
        full.stderr,
    )
    assert full.stdout or full.stderr  # every line answers something
    for key in ("CSI_VM_CONFIG", "CSI_VM_DB", "CSI_VM_STATE_DIR", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(key, raising=False)
        if key in env:
            monkeypatch.setenv(key, env[key])
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # a pipe, as above
    said = fastpath.answer(line)
    assert (said is not None) == answered
    assert said is None or said.encode() == full.stdout


def test_the_answered_lines_never_import_click_or_the_config(files: dict[str, str]) -> None:
    for fmt, more in (("table", set()), ("json", set()), ("yaml", {"yaml"})):
        done = subprocess.run(
            [*FAST[:1], "-X", "importtime", *FAST[1:], "vm", "show", "vm-000001", "-o", fmt],
            env=_env(files, {}),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        imported = {
            line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in done.stderr.splitlines()
            if line.startswith("import time:")
        }
        assert "csi_vm" in imported  # the check sees the command's imports
        assert imported & {"click", "yaml", "typer", "rich", "platformdirs", "typing"} == more


def test_other_lines_pay_for_nothing_of_vm_shows(files: dict[str, str]) -> None:
    done = subprocess.run(
        [*FAST[:1], "-X", "importtime", *FAST[1:], "version"],
        env=_env(files, {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert {"csi_vm.cli.fastpath", "click"} <= imported  # the check sees the command's imports
    assert imported & {"csi_vm.cli.fastshow", "sqlite3", "json"} == set()


def test_a_reader_that_stops_reading_ends_both_quietly(files: dict[str, str]) -> None:
    for command in (FAST, FULL):
        read, write = os.pipe()
        os.close(read)  # gone before anything is written
        with subprocess.Popen(
            [*command, "vm", "show", "vm-000001", "-o", "json"],
            env=_env(files, {}),
            stdout=write,
            stderr=subprocess.PIPE,
        ) as proc:
            os.close(write)
            _, err = proc.communicate(timeout=60)
        assert (proc.returncode, err) == (0, b"")


def test_an_interrupt_is_reported_as_the_full_cli_reports_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fastpath, "answer", interrupted)
    with pytest.raises(SystemExit) as done:
        fastpath.answered(["vm", "show", "x"])
    assert done.value.code == 130
    assert capsys.readouterr() == ("", "interrupted\n")


# -- the config it remembers ---------------------------------------------------


@pytest.fixture
def state(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv("CSI_VM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CSI_VM_CONFIG", str(tmp_path / "config.yaml"))
    return tmp_path


def _check(path: pathlib.Path) -> None:
    from csi_vm import config  # noqa: PLC0415 - what the full CLI checks with

    fastpath.check_config(path, config.load)


def test_a_checked_config_is_remembered_without_its_values(state: pathlib.Path) -> None:
    cfg = state / "config.yaml"
    _settled(cfg, CONFIG)
    assert not fastpath._config_checked()
    _check(cfg)
    assert fastpath._config_checked()
    remembered = (state / "state" / fastpath.STAMP).read_text()
    assert "s3cret" not in remembered
    assert "unix" not in remembered


def test_a_config_written_again_is_checked_again(state: pathlib.Path) -> None:
    cfg = state / "config.yaml"
    _settled(cfg, CONFIG)
    _check(cfg)
    # Same size, same mtime: only the write itself tells them apart.
    broken = CONFIG.replace("drivers:", "drivers[")
    assert len(broken) == len(CONFIG)
    cfg.write_text(broken)
    os.utime(cfg, ns=(1_000_000_000, 1_000_000_000))
    assert not fastpath._config_checked()
    with pytest.raises(errors.InvalidInput):
        _check(cfg)
    assert not fastpath._config_checked()


def test_a_config_just_written_is_remembered_once_settled(
    state: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = state / "config.yaml"
    cfg.write_text(CONFIG)  # its times are now's: another write could repeat them
    _check(cfg)
    assert not fastpath._config_checked()
    monkeypatch.setattr(fastpath, "_SETTLED_NS", 0)
    _check(cfg)
    assert fastpath._config_checked()


def test_another_release_checks_the_config_again(
    state: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = state / "config.yaml"
    _settled(cfg, CONFIG)
    _check(cfg)
    monkeypatch.setattr(csi_vm, "__version__", "99.0.0")
    assert not fastpath._config_checked()


def test_a_state_dir_that_cannot_be_written_only_costs_speed(
    state: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (state / "file").write_text("")
    monkeypatch.setenv("CSI_VM_STATE_DIR", str(state / "file" / "state"))
    cfg = state / "config.yaml"
    _settled(cfg, CONFIG)
    _check(cfg)
    assert not fastpath._config_checked()


# -- what it finds as the full CLI finds it ------------------------------------


@pytest.mark.parametrize("given", [True, False], ids=["environment", "defaults"])
def test_paths_are_the_full_clis(
    given: bool, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("CSI_VM_CONFIG", "CSI_VM_DB", "CSI_VM_STATE_DIR"):
        if given:
            monkeypatch.setenv(key, str(tmp_path / key))
        else:
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert fastpath._config_path() == str(vmenv.config_path(None))
    assert fastpath._db_path() == str(vmenv.db_path(None))
    assert fastpath._state_dir() == str(paths.state_dir())


def test_the_schema_is_the_stores() -> None:
    assert fastshow.SCHEMA_VERSION == db.SCHEMA_VERSION


def test_the_console_script_is_the_fast_entry() -> None:
    pyproject = pathlib.Path(__file__).parents[3] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    assert scripts["csi-vm"] == "csi_vm.cli.fastpath:run"


PARSED = {
    "plain": (["vm", "show", "a"], ("a", "table", True)),
    "output": (["vm", "show", "a", "-o", "yaml"], ("a", "yaml", True)),
    "long": (["vm", "show", "--output", "name", "a"], ("a", "name", True)),
    "no-headers": (["vm", "show", "--no-headers", "a"], ("a", "table", False)),
    "list": (["vm", "list"], None),
    "attached": (["vm", "show", "a", "-ojson"], None),
    "equals": (["vm", "show", "a", "--output=json"], None),
    "dash": (["vm", "show", "-"], None),
    "end-of-options": (["vm", "show", "--", "a"], None),
    "empty": (["vm", "show", ""], None),
    "global-first": (["-v", "vm", "show", "a"], None),
}


@pytest.mark.parametrize(("args", "parsed"), PARSED.values(), ids=PARSED.keys())
def test_only_the_plain_forms_are_parsed(
    args: list[str], parsed: tuple[str, str, bool] | None
) -> None:
    assert fastpath._parse(args) == parsed
