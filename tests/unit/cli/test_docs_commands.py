"""Every `csi-vm` command line quoted in docs/*.md parses with the CLI as it is.

Each distinct line runs as a real process with `--help` appended: the parser
stops at an unknown sub-command or option before `--help` prints anything,
so a page that names a command or flag that no longer exists fails here.
(Option values and the number of arguments are not checked this way.)
"""

from __future__ import annotations

import pathlib
import re
import shlex
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[3] / "docs"
_FENCE = re.compile(r"^(```|~~~)\s*(\w*)")
_SHELL = {"sh", "bash", "shell", "console"}
_SPAN = re.compile(r"`(csi-vm [^`]+)`")

pytestmark = pytest.mark.timeout(300)


def _fenced(text: str) -> list[str]:
    """Commands of fenced blocks: every `csi-vm` line of a shell block, and
    `$ csi-vm` lines of any block (a transcript); not synopses or diagrams."""
    found: list[str] = []
    shell: bool | None = None  # None: outside a block
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if fence := _FENCE.match(line):
            shell = (fence.group(2) in _SHELL) if shell is None else None
            continue
        if shell is None:
            continue
        prompted = line.startswith("$ ")
        if not (pending or prompted or shell):
            continue
        line = pending + line.removeprefix("$ ").removeprefix("sudo ")
        if line.endswith("\\"):  # a command continued on the next line
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith("csi-vm "):
            found.append(line)
    return found


def _inline(text: str) -> list[str]:
    # Inline code may wrap in the source; only fenced blocks are skipped.
    prose = re.sub(r"^(```|~~~).*?^(```|~~~)", "", text, flags=re.MULTILINE | re.DOTALL)
    return [" ".join(match.split()) for match in _SPAN.findall(prose)]


def _args(line: str) -> tuple[str, ...]:
    words = shlex.split(line, comments=True)
    words = [w for w in words if w != "&"]
    return tuple(words[1:])


def _quoted() -> dict[tuple[str, ...], str]:
    found: dict[tuple[str, ...], str] = {}
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for line in _fenced(text) + _inline(text):
            found.setdefault(_args(line), f"{page.name}: {line}")
    # A line that another one extends ("vm create -f x" and "... --dry-run")
    # parses when the longer one does: one process for both.
    return {
        args: where
        for args, where in found.items()
        if not any(len(other) > len(args) and other[: len(args)] == args for other in found)
    }


QUOTED = _quoted()


def test_the_pages_quote_commands() -> None:
    # The walk-through pages quote dozens; a broken extractor would find none.
    assert len(QUOTED) >= 30
    assert ("vm", "create", "-f", "vm.yaml", "--dry-run") in QUOTED


@pytest.mark.parametrize("args", sorted(QUOTED), ids=[QUOTED[a] for a in sorted(QUOTED)])
def test_quoted_command_parses(args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "csi_vm", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{QUOTED[args]}\n{done.stderr}"
    assert "Usage:" in done.stdout or "usage:" in done.stdout, done.stdout


def test_troubleshooting_explains_every_exit_code() -> None:
    from csi_vm.cli import main  # noqa: PLC0415 - only this test needs the CLI's table

    assert main.__doc__ is not None
    documented = re.findall(r"^\s+(\d+)\s{2,}\S", main.__doc__, re.MULTILINE)
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    explained = re.findall(r"^\| (\d+) \|", page, re.MULTILINE)
    assert documented and explained == documented
