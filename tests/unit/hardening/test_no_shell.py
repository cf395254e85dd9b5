"""No shell is ever invoked: an AST scan of every Python file the project ships or runs.

Names are validated before use, so shell injection through a name cannot be
tried end to end; the guarantee that matters is structural: no call anywhere
hands a string to a shell.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCANNED = ("csi_vm", "capabilities", "launcher", "scripts", "bench")
#: calls that run a command line through /bin/sh
SHELL_CALLS = {
    ("os", "system"),
    ("os", "popen"),
    ("subprocess", "getoutput"),
    ("subprocess", "getstatusoutput"),
}


def _python_files() -> list[pathlib.Path]:
    files = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "pb" not in path.parts and _is_python(path):
                files.append(path)
    return files


def _is_python(path: pathlib.Path) -> bool:
    if path.suffix == ".py":
        return True
    head = path.read_bytes()[:64]
    return head.startswith(b"#!") and b"python" in head.splitlines()[0]


def _problems(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        owner = (
            func.value.id
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            else ""
        )
        if isinstance(func, ast.Attribute) and (owner, func.attr) in SHELL_CALLS:
            found.append(f"line {node.lineno}: {owner}.{func.attr}()")
        for kw in node.keywords:
            if kw.arg == "shell" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                found.append(f"line {node.lineno}: shell={ast.unparse(kw.value)}")
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    bad = "import os, subprocess\nos.system('x')\nsubprocess.run('x', shell=True)\n"
    assert len(_problems(ast.parse(bad))) == 2


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shell_calls(path: pathlib.Path) -> None:
    assert _problems(ast.parse(path.read_text(encoding="utf-8"))) == []
