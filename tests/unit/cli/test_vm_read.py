"""`vm list` and `vm show` answer as plain click commands exactly as their typer twins.

The registry runs the plain commands (csi_vm/cli/vm_read.py); vm_cmd still
declares them to typer for `vm --help`. Both are run on the same command
lines against a real store: help, usage errors, rejected values, output in
every format, warnings of unfinished flows, errors and exit codes must match
to the byte.
"""

from __future__ import annotations

import pathlib
from typing import Any

import click
import pytest

from csi_vm.cli import registry, vm_read
from csi_vm.store import db
from tests.support import fleet

pytestmark = pytest.mark.timeout(120)

VM = registry.ENTRIES[[e.name for e in registry.ENTRIES].index("vm")]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("vm-read")
    (tmp / "config.yaml").write_text("drivers: {}\n")
    (tmp / "bad.yaml").write_text("drivers: [\n")
    store = db.Store(tmp / "fleet.db")
    fleet.seed(store, count=12)
    with store.transaction() as cur:
        # A flow whose process is gone: read-only commands warn of it.
        cur.execute(
            "INSERT INTO flows (id, kind, vm, args, state, pid, started, updated)"
            " VALUES ('clone-gone', 'clone', 'vm-000003', '{}', 'running', 2147483646, 1.0, 1.0)"
        )
    store.close()
    db.Store(tmp / "empty.db").close()
    return {
        "cfg": str(tmp / "config.yaml"),
        "bad": str(tmp / "bad.yaml"),
        "db": str(tmp / "fleet.db"),
        "empty": str(tmp / "empty.db"),
        "missing": str(tmp / "none" / "config.yaml"),
        "nodir": str(tmp / "none" / "x.db"),
    }


STORE = ["-c", "{cfg}", "--db", "{db}"]
LINES = {
    "list": ["list", *STORE],
    "list-wide": ["list", "-o", "wide", *STORE],
    "list-json": ["list", "-o", "json", *STORE],
    "list-yaml": ["list", "--output=yaml", *STORE],
    "list-name": ["list", "-o", "name", *STORE],
    "list-no-headers": ["list", "--no-headers", *STORE],
    "list-empty": ["list", "--config", "{cfg}", "--db", "{empty}"],
    "list-empty-json": ["list", "-o", "json", "-c", "{cfg}", "--db", "{empty}"],
    "list-empty-yaml": ["list", "-o", "yaml", "-c", "{cfg}", "--db", "{empty}"],
    "list-help": ["list", "--help"],
    "list-help-later": ["list", "-o", "wide", "--help"],
    "list-bad-output": ["list", "-o", "xml", *STORE],
    "list-output-case": ["list", "-o", "JSON", *STORE],
    "list-no-value": ["list", *STORE, "-o"],
    "list-typo": ["list", "--no-header", *STORE],
    "list-unknown-short": ["list", "-x"],
    "list-extra": ["list", "vm-000001", *STORE],
    "list-flag-value": ["list", "--no-headers=1", *STORE],
    "list-config-missing": ["list", "-c", "{missing}", "--db", "{db}"],
    "list-config-bad": ["list", "-c", "{bad}", "--db", "{db}"],
    "list-db-unopenable": ["list", "-c", "{cfg}", "--db", "{nodir}"],
    "show": ["show", "vm-000000", *STORE],
    "show-stopped": ["show", "vm-000001", *STORE],
    "show-wide": ["show", "vm-000002", "-o", "wide", *STORE],
    "show-json": ["show", "vm-000002", "-o", "json", *STORE],
    "show-yaml": ["show", "vm-000000", "-o", "yaml", *STORE],
    "show-name": ["show", "vm-000002", "-o", "name", *STORE],
    "show-no-headers": ["show", "vm-000002", "--no-headers", *STORE],
    "show-options-first": ["show", *STORE, "-o", "wide", "vm-000002"],
    "show-unknown": ["show", "web-1", *STORE],
    "show-missing-arg": ["show", *STORE],
    "show-extra": ["show", "vm-000001", "vm-000002", *STORE],
    "show-help": ["show", "--help"],
    "show-help-after-arg": ["show", "vm-000001", "--help"],
    "show-bad-output": ["show", "vm-000001", "-o", "toml", *STORE],
    "show-config-missing": ["show", "vm-000001", "-c", "{missing}", "--db", "{db}"],
}


def _run(command: click.Command, args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    """Exit code, standard output and error; a csi-vm error as main would word it."""
    try:
        command.main(args=["vm", *args], prog_name="csi-vm")
        code: object = None
    except SystemExit as done:
        code = done.code
    except Exception as err:  # compared, not handled
        code = (type(err).__name__, str(err), getattr(err, "hint", None))
    said = capsys.readouterr()
    return code, said.out, said.err


@pytest.mark.parametrize("args", LINES.values(), ids=LINES.keys())
def test_answers_as_typer_does(
    args: list[str], files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    filled = [arg.format(**files) for arg in args]
    sub = filled[0] if filled[0] in vm_read.PLAIN else "show"
    by_typer = _run(registry.load(VM), filled, capsys)
    by_click = _run(registry.load_plain(VM, sub), filled, capsys)
    assert by_click == by_typer
    # every line answers something: output, or an error that main words
    assert by_typer[1] or by_typer[2] or isinstance(by_typer[0], tuple)


def test_the_registry_runs_the_plain_commands() -> None:
    assert VM.plain_commands == vm_read.PLAIN
    for name in VM.plain_commands:
        (group,) = registry.load_plain(VM, name).commands.values()
        assert isinstance(group, click.Group)
        assert list(group.commands) == [name]


def test_the_warning_of_an_unfinished_flow_is_printed(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # The comparison above holds only if this path runs at all.
    args = [arg.format(**files) for arg in LINES["list"]]
    _, out, err = _run(registry.load_plain(VM, "list"), args, capsys)
    assert "clone flow clone-gone of VM 'vm-000003' is unfinished" in err
    assert out.count("\n") == 13


def test_a_terminal_boxes_a_list_longer_than_the_first_page_of_a_pipe(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pipe's first page is short, for its first line's sake; a terminal's
    # stays a page of 500, whose list it draws as one boxed table.
    count = vm_read.FIRST_PAGE + 10
    store = db.Store(tmp_path / "fleet.db")
    fleet.seed(store, count=count)
    store.close()
    (tmp_path / "config.yaml").write_text("drivers: {}\n")
    args = ["list", "-c", str(tmp_path / "config.yaml"), "--db", str(tmp_path / "fleet.db")]
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = _run(registry.load_plain(VM, "list"), args, capsys)
    assert code == 0
    assert f"{count} VMs" in out
    assert fleet.name(count - 1) in out
