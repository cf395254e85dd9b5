"""What the real `csi-vm` prints: kubectl's -o formats, plain tables in a pipe, boxes on a tty.

The terminal case runs the command on a real pseudo-terminal: rich decides
from isatty() and the terminal's size, which captured pipes never show.
"""

from __future__ import annotations

import fcntl
import json
import os
import pathlib
import pty
import struct
import subprocess
import sys
import termios
from collections.abc import Callable

import pytest
import yaml

from tests.integration.flows.conftest import MIB, Lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BOX = set("┏━┃┡│└─╭╮╰╯")


def _run(
    env: dict[str, str], *args: str, cwd: pathlib.Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csi_vm", *args],
        env={**env, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def _run_on_tty(env: dict[str, str], *args: str, columns: int) -> str:
    """stdout of the command on a pseudo-terminal `columns` wide."""
    main, sub = pty.openpty()
    # The kernel's window size of the terminal, as a terminal emulator sets it.
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    tty_env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "csi_vm", *args],
        env={**tty_env, "TERM": "xterm-256color"},
        stdin=sub,
        stdout=sub,
        stderr=subprocess.PIPE,
    )
    os.close(sub)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the command closed the terminal's last writer
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return b"".join(chunks).decode()


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    lab = lab_factory()
    spec_file = lab.tmp / "vm1.yaml"
    disks = [
        {"name": "root", "size": "4Mi", "driver": "local"},
        {"name": "data", "size": "8MiB", "driver": "local", "mode": "filesystem"},
    ]
    spec_file.write_text(yaml.safe_dump({"name": "vm1", "memory_mib": 512, "disks": disks}))
    done = _run(lab.cli_env(), "vm", "create", "-f", str(spec_file))
    assert done.returncode == 0, done.stderr
    return lab


def test_a_piped_table_is_plain_columns_never_wrapped(lab: Lab) -> None:
    done = _run(lab.cli_env(), "vm", "list", "-o", "wide")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert not BOX & set(done.stdout)
    assert lines[0].split() == ["NAME", "RUNNING", "ON", "VCPUS", "MEMORY", "DISKS", "VOLUMES"]
    # One line per row, however long: wide rows pass 80 columns unwrapped.
    assert len(lines) == 2
    assert len(lines[1]) > 80
    row = lines[1]
    assert row.startswith("vm1   ")
    assert "512 MiB" in row and "root (4 MiB block on local)" in row
    assert "data (8 MiB filesystem on local)" in row
    assert row.index("512 MiB") == lines[0].index("MEMORY")


def test_no_headers_and_wide(lab: Lab) -> None:
    narrow = _run(lab.cli_env(), "vm", "list", "--no-headers").stdout.splitlines()
    assert len(narrow) == 1 and narrow[0].startswith("vm1 ")
    assert "root=" not in narrow[0]
    wide = _run(lab.cli_env(), "vm", "list", "-o", "wide", "--no-headers").stdout
    assert "root=" in wide and "data=" in wide


def test_name_lines_like_kubectl(lab: Lab) -> None:
    assert _run(lab.cli_env(), "vm", "list", "-o", "name").stdout == "vm/vm1\n"
    assert _run(lab.cli_env(), "vm", "show", "vm1", "--output", "name").stdout == "vm/vm1\n"
    snap = _run(lab.cli_env(), "snapshot", "create", "vm1", "--name", "s1", "-o", "name")
    assert snap.stdout == "snapshot/s1\n", snap.stderr
    assert _run(lab.cli_env(), "snapshot", "list", "-o", "name").stdout == "snapshot/s1\n"
    # Without --name the snapshot is named for the user, and -o name says how.
    auto = _run(lab.cli_env(), "snapshot", "create", "vm1", "-o", "name")
    listed = _run(lab.cli_env(), "snapshot", "list", "-o", "name").stdout.splitlines()
    assert auto.stdout.startswith("snapshot/") and auto.stdout.strip() in listed, auto.stderr
    assert auto.stdout.strip() != "snapshot/s1"


def test_vm_show_defaults_to_a_table(lab: Lab) -> None:
    shown = _run(lab.cli_env(), "vm", "show", "vm1")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split()[:2] == ["NAME", "RUNNING"]
    assert lines[1].startswith("vm1 ")
    as_yaml = yaml.safe_load(_run(lab.cli_env(), "vm", "show", "vm1", "-o", "yaml").stdout)
    assert as_yaml["name"] == "vm1"


def test_json_and_yaml_give_sizes_in_bytes(lab: Lab) -> None:
    listed = json.loads(_run(lab.cli_env(), "vm", "list", "-o", "json").stdout)
    assert [d["size"] for d in listed[0]["disks"]] == [4 * MIB, 8 * MIB]
    shown = yaml.safe_load(_run(lab.cli_env(), "vm", "show", "vm1", "-o", "yaml").stdout)
    assert [d["size"] for d in shown["disks"]] == [4 * MIB, 8 * MIB]


def test_a_terminal_gets_a_boxed_table(lab: Lab) -> None:
    screen = _run_on_tty(lab.cli_env(), "vm", "list", columns=160)
    assert BOX & set(screen)
    assert "1 VMs" in screen
    assert "root (4 MiB block on local)" in screen
    # --no-headers drops the title and the header row on a terminal too.
    bare = _run_on_tty(lab.cli_env(), "vm", "list", "--no-headers", columns=160)
    assert "1 VMs" not in bare and "running on" not in bare and "vm1" in bare


def test_debug_after_the_command(lab: Lab) -> None:
    for args in (["vm", "list", "--debug"], ["--debug", "vm", "list"]):
        done = _run(lab.cli_env(), *args, "-o", "name")
        assert done.returncode == 0, done.stderr
        assert done.stdout == "vm/vm1\n"


def test_output_names_a_format_and_output_file_a_file(lab: Lab, tmp_path: pathlib.Path) -> None:
    probe = ["capabilities", "probe", "-e", lab.driver.endpoint, "--declared-only"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = _run(lab.cli_env(), *probe, "--output", "json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["mode"] == "declared-only"
    assert list(cwd.iterdir()) == []  # no file named "json"
    out = tmp_path / "report.yaml"
    done = _run(lab.cli_env(), *probe, "-o", "yaml", "--output-file", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert yaml.safe_load(out.read_text())["mode"] == "declared-only"
    named = _run(lab.cli_env(), *probe, "-o", "name")
    assert named.stdout == f"driver/{lab.driver.endpoint}\n"


def test_a_file_name_given_as_format_is_refused(lab: Lab, tmp_path: pathlib.Path) -> None:
    probe = ["capabilities", "probe", "-e", lab.driver.endpoint, "--declared-only"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = _run(lab.cli_env(), *probe, "--output", "report.json", cwd=cwd)
    assert done.returncode == 2
    assert "'report.json' is not one of" in done.stderr, done.stderr
    assert list(cwd.iterdir()) == []


def test_gb_reads_as_decimal_with_a_note(lab: Lab) -> None:
    done = _run(lab.cli_env(), "disk", "expand", "vm1", "root", "8MB", "--dry-run", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert "note: size '8MB' is read as decimal" in done.stderr
    assert "8000000 bytes; write 8Mi for powers of 1024" in done.stderr
    assert json.loads(done.stdout)["dry_run"] is True


def test_a_piped_report_is_plain_columns_too(lab: Lab) -> None:
    probe = ["capabilities", "probe", "-e", lab.driver.endpoint, "--declared-only"]
    done = _run(lab.cli_env(), *probe)
    assert done.returncode == 0, done.stderr
    assert not BOX & set(done.stdout)
    lines = done.stdout.splitlines()
    assert lines[lines.index("Plan") + 1].split() == ["operation", "strategy", "why"]
    # A row of the plan is one line, its reason whole, past 80 columns.
    (row,) = [line for line in lines if line.startswith("vm_clone ")]
    assert row.endswith("(clone declared)") and len(row) > 80
    screen = _run_on_tty(lab.cli_env(), *probe, columns=160)
    assert "━" in screen or "─" in screen


def test_cleanup_answers_in_json_too(lab: Lab) -> None:
    args = ["capabilities", "cleanup", "-e", lab.driver.endpoint]
    done = _run(lab.cli_env(), *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    # The VM's own volumes are not a probe's: nothing to remove.
    assert json.loads(done.stdout) == {"removed": [], "failed": [], "journals": 0}
    assert _run(lab.cli_env(), *args).stdout.endswith("0 removed, 0 failed (0 probe journals)\n")


def test_resume_answers_in_json_and_names(lab: Lab) -> None:
    done = _run(lab.cli_env(), "resume", "-o", "json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["handled"] == []
    assert [(f["kind"], f["vm"]) for f in got["recent"]] == [("create", "vm1")]
    named = _run(lab.cli_env(), "resume", "-o", "name").stdout
    assert named == f"flow/{got['recent'][0]['id']}\n"
