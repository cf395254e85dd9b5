"""A plainclick command answers exactly as the same command written with typer.

The two are built side by side from one description (an argument, a choice,
a bounded integer, a flag) and run on the same command lines; help, usage
errors, rejected values and exit codes must match to the byte.
"""

from __future__ import annotations

import enum
import pathlib
from typing import Any

import click
import pydantic
import pytest
import typer

from csi_vm.cli import coercion, helpfmt, plainclick

pytestmark = pytest.mark.timeout(60)

DOC = """Paint a wall.

    Only walls that exist are painted.

    Example:

        csi-vm walls paint north --coats 3
    """


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


WALL = typer.Argument(..., help="The wall to paint.")
COLOR = typer.Option(Color.RED, "--color", help="The paint.")
COATS = typer.Option(2, "--coats", min=1, max=5, help="How many coats.")
FORCE = typer.Option(False, "--force", help="Paint over a painted wall.")


def _typer_root() -> Any:
    """As registry.load builds the root of a typer command."""
    helpfmt.install()
    coercion.install()
    walls = typer.Typer(help="Paint walls.", no_args_is_help=True)

    def paint(
        wall: pathlib.Path = WALL,
        color: Color = COLOR,
        coats: int = COATS,
        force: bool = FORCE,
    ) -> None:
        typer.echo(f"{wall} {color.value} {coats} {force}")

    paint.__doc__ = DOC
    walls.command("paint")(paint)
    root = typer.Typer(name="csi-vm", add_completion=False, rich_markup_mode=None)
    root.add_typer(walls, name="walls")
    command = typer.main.get_command(root)
    helpfmt.keep_layouts(command)
    return command


def _click_root() -> click.Group:
    def paint(wall: pathlib.Path, color: str, coats: int, force: bool) -> None:
        click.echo(f"{wall} {color} {coats} {force}")

    paint.__doc__ = DOC

    params: list[click.Parameter] = [
        plainclick.Argument(
            ["wall"], help="The wall to paint.", type=click.Path(path_type=pathlib.Path)
        ),
        click.Option(
            ["--color"],
            type=plainclick.Choice([c.value for c in Color]),
            default="red",
            show_default=True,
            help="The paint.",
        ),
        click.Option(
            ["--coats"],
            type=plainclick.IntRange(1, 5),
            default=2,
            show_default=True,
            help="How many coats.",
        ),
        click.Option(["--force"], is_flag=True, help="Paint over a painted wall."),
    ]
    walls = plainclick.Group("walls", help="Paint walls.", no_args_is_help=True)
    help_text = plainclick.help_of(paint)
    walls.add_command(plainclick.Command("paint", callback=paint, params=params, help=help_text))
    return click.Group("csi-vm", commands=[walls])


LINES = {
    "group-bare": [],
    "group-help": ["--help"],
    "group-short-help": ["-h"],
    "group-unknown": ["paint-it"],
    "help": ["paint", "--help"],
    "help-after-arg": ["paint", "north", "--help"],
    "ok": ["paint", "north", "--color", "blue", "--coats", "3", "--force"],
    "ok-eq": ["paint", "north", "--coats=04"],
    "missing-arg": ["paint"],
    "extra-args": ["paint", "north", "south", "east"],
    "bad-choice": ["paint", "north", "--color", "green"],
    "choice-case": ["paint", "north", "--color", "RED"],
    "above-max": ["paint", "north", "--coats", "6"],
    "below-min": ["paint", "north", "--coats", "0"],
    "not-int": ["paint", "north", "--coats", "two"],
    "zero-fraction": ["paint", "north", "--coats", "3.0"],
    "no-value": ["paint", "north", "--coats"],
    "typo": ["paint", "north", "--forse"],
    "unknown-short": ["paint", "north", "-x"],
    "flag-value": ["paint", "north", "--force=1"],
}


def _run(command: Any, args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, ...]:
    with pytest.raises(SystemExit) as done:
        command.main(args=["walls", *args], prog_name="csi-vm")
    said = capsys.readouterr()
    return done.value.code, said.out, said.err


@pytest.mark.parametrize("args", LINES.values(), ids=LINES.keys())
def test_answers_as_typer_does(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    by_typer = _run(_typer_root(), args, capsys)
    assert _run(_click_root(), args, capsys) == by_typer


NUMBERS = ["3", " 3 ", "+3", "007", "1_0", "1__0", "_1", "3.0", "3.5", "3.", "1e1", "0x10",
           "-0", "", "٣", "inf", "65", "64.0", "x"]  # fmt: skip


@pytest.mark.parametrize("text", NUMBERS)
def test_integers_read_as_typers_check_reads_them(text: str) -> None:
    adapter = pydantic.TypeAdapter(int)
    try:
        expected: object = adapter.validate_python(text)
        if not 1 <= expected <= 64:  # type: ignore[operator]
            expected = "out of range"
    except pydantic.ValidationError:
        expected = "refused"
    try:
        got: object = plainclick.IntRange(1, 64).convert(text, None, None)
    except click.BadParameter as err:
        got = "refused" if "valid integer" in err.message else "out of range"
    assert got == expected
