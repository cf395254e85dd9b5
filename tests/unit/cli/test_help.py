"""`--help` of every command teaches: an example, described arguments, readable types."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout

import pytest

from csi_vm.cli import helpfmt, registry
from csi_vm.localdriver import config as localdriver_config

pytestmark = pytest.mark.timeout(120)


def _leaves() -> Iterator[tuple[list[str], object]]:
    """(path, command) of every command `csi-vm` runs, loaded as it loads them."""
    for entry in registry.ENTRIES:
        if entry.name == "localdriver":  # its options are the driver's: argparse, below
            continue
        root = registry.load(entry)
        command = root.commands[entry.name]  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        if not subs:
            yield [entry.name], root
            continue
        for name in subs:
            yield [entry.name, name], root


LEAVES = list(_leaves())


def _help(root: object, path: list[str]) -> str:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as done:
        root.main(args=[*path, "--help"], prog_name="csi-vm")  # type: ignore[attr-defined]
    assert done.value.code == 0
    return out.getvalue()


@pytest.mark.parametrize(("path", "root"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_command_has_an_example(path: list[str], root: object) -> None:
    text = _help(root, path)
    assert re.search(rf"(sudo )?csi-vm {' '.join(path)}( |$)", text, re.MULTILINE), text


@pytest.mark.parametrize(("path", "root"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_types_read_as_words(path: list[str], root: object) -> None:
    text = _help(root, path)
    assert not re.search(r"<(str|bool|int|float|path|list\[)", text), text


@pytest.mark.parametrize(("path", "root"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_positional_argument_is_described(path: list[str], root: object) -> None:
    command = root.commands[path[0]]  # type: ignore[attr-defined]
    if len(path) > 1:
        command = command.commands[path[1]]
    for param in command.params:
        if param.param_type_name == "argument":
            assert param.help, f"csi-vm {' '.join(path)}: argument {param.name} has no help"


def test_positional_arguments_read_as_in_man_pages() -> None:
    usage = {
        " ".join(p): next(line for line in _help(r, p).splitlines() if "Usage:" in line)
        for p, r in LEAVES
    }
    assert "csi-vm disk expand [OPTIONS] VM DISK SIZE" in usage["disk expand"]
    assert "csi-vm snapshot list [OPTIONS] [VM]" in usage["snapshot list"]
    assert not any("{" in line for line in usage.values()), usage


@pytest.mark.parametrize(("path", "root"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_examples_keep_their_lines(path: list[str], root: object) -> None:
    """An example is printed as written, never broken where click would wrap it."""
    command = root.commands[path[0]]  # type: ignore[attr-defined]
    if len(path) > 1:
        command = command.commands[path[1]]
    shown = _help(root, path).splitlines()
    written = [line.strip() for line in command.help.splitlines() if line.startswith("    ")]
    assert written, f"csi-vm {' '.join(path)} has no indented example"
    for line in written:
        assert any(s.strip() == line for s in shown), (path, line)


def test_keep_layout_marks_only_examples_and_list_items() -> None:
    text = "Some prose\nthat wraps.\n\n    csi-vm image copy a b\n\n- one item\n  of a list"
    assert helpfmt.keep_layout(text).split("\n\n") == [
        "Some prose\nthat wraps.",
        "\b\n    csi-vm image copy a b",
        "\b\n- one item\n  of a list",
    ]


@pytest.mark.parametrize(
    ("label", "shown"),
    [
        ("<str>", "TEXT"),
        ("<list[str]>", "TEXT (repeatable)"),
        ("<float range>", "NUMBER"),
        ("<path>", "PATH"),
        ("<table|json|yaml>", "table|json|yaml"),
    ],
    ids=["str", "list", "range", "path", "choices"],
)
def test_readable_labels(label: str, shown: str) -> None:
    assert helpfmt.readable(label) == shown


def test_localdriver_help_lists_without_values_and_an_example() -> None:
    text = localdriver_config._build_parser().format_help()
    for feature in localdriver_config.Feature:
        assert feature.value in text.split("--without FEATURE[,...]")[-1]
    assert "csi-vm localdriver --endpoint unix:///run/csi-vm/local.sock \\\n" in text


def test_output_means_the_same_everywhere() -> None:
    """-o and --output name one option, a format, on every command that has either."""
    for path, root in LEAVES:
        command = root.commands[path[0]]  # type: ignore[attr-defined]
        if len(path) > 1:
            command = command.commands[path[1]]
        for param in command.params:
            names = set(param.opts)
            if names & {"-o", "--output"}:
                assert names == {"-o", "--output"}, (path, names)
                assert str(param.default) == "table", path
            assert "--output-format" not in names


def test_the_exit_code_table_stays_a_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "csi_vm", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
        timeout=60,
        check=True,
    )
    lines = [line.strip() for line in done.stdout.splitlines()]
    for code in ("0", "1", "2", "3", "4", "5", "6", "130"):
        assert any(re.fullmatch(rf"{code} +\S.*", line) for line in lines), done.stdout


# The README promises --dry-run on every command that changes something.
CHANGING = [
    "vm create", "vm delete", "vm start", "vm stop", "clone", "migrate",
    "disk import", "disk export", "disk expand",
    "snapshot create", "snapshot restore", "snapshot delete", "image copy",
]  # fmt: skip


@pytest.mark.parametrize("path", CHANGING)
def test_every_changing_command_takes_dry_run(path: str) -> None:
    words = path.split()
    root = next(r for p, r in LEAVES if p == words)
    command = root.commands[words[0]]  # type: ignore[attr-defined]
    if len(words) > 1:
        command = command.commands[words[1]]
    assert any("--dry-run" in param.opts for param in command.params), path


def test_version_as_a_command_and_as_an_option() -> None:
    said = [
        subprocess.run(
            [sys.executable, "-m", "csi_vm", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        for args in (["version"], ["--version"])
    ]
    assert said[0] == said[1]
    assert re.fullmatch(r"csi-vm \d+\.\d+\.\d+\S*\n", said[0]), said
