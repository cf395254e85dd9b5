"""Plain click commands that read and answer exactly like csi-vm's typer commands.

A command that must start fast (`image copy`, timed against qemu-img as a
whole process) cannot afford typer: importing it costs more than the rest of
the command's start-up. Its users must not see the difference, so this module
gives click what typer adds or words otherwise: an Arguments section in
`--help`, argument help, and typer's wording of usage errors and of rejected
values (which typer's own checks, through pydantic, word).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import click

from csi_vm.cli import helpfmt

#: what pydantic's lax int takes from text: ASCII digits, an optional sign,
#: single underscores between digits and a fraction of zeros, inside blanks
_INT = re.compile(r"\s*([+-]?[0-9]+(?:_[0-9]+)*)(?:\.0+)?\s*")


def help_of(function: Callable[..., Any]) -> str:
    """A command's help from its function's docstring, examples kept as typer keeps them."""
    return helpfmt.keep_layout(inspect.getdoc(function) or "")


class Argument(click.Argument):
    """A positional argument listed as typer lists it: ``SOURCE PATH  help  [required]``."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str]:
        word = self.type.get_metavar(param=self, ctx=ctx) or self.type.name.upper()
        extra = "  [required]" if self.required else ""
        return f"{self.make_metavar(ctx)} {word}", f"{self.help or ''}{extra}"


class Choice(click.Choice[str]):
    """Choices shown as a|b|c, a wrong one refused in typer's words."""

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "|".join(self.choices)

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        return "Value error, " + super().get_invalid_choice_message(value, ctx)


class IntRange(click.IntRange):
    """An integer in [low, high] (shown in --help as click shows it), refused in typer's words."""

    def __init__(self, low: int, high: int) -> None:
        super().__init__(low, high)
        self.low, self.high = low, high

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "INTEGER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and (found := _INT.fullmatch(value)):
            number = int(found.group(1))
        else:
            self.fail("Input should be a valid integer, unable to parse string as an integer")
        if number < self.low:
            self.fail(f"Input should be greater than or equal to {self.low}")
        if number > self.high:
            self.fail(f"Input should be less than or equal to {self.high}")
        return number


class _TyperWords(click.Command):
    """Usage errors worded as typer's copy of click words them."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as err:
            message = f"No such option: {err.option_name}"
            if err.possibilities:
                message += f" (Possible options: {', '.join(sorted(err.possibilities))})"
            raise click.UsageError(message, ctx) from None


class Group(_TyperWords, click.Group):
    """A click group that answers like a typer group."""


class Command(_TyperWords):
    """A click command with typer's help sections and typer's wording of usage errors."""

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [p.get_help_record(ctx) for p in self.get_params(ctx) if isinstance(p, Argument)]
        if rows:
            with formatter.section("Arguments"):
                formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        allowed, ctx.allow_extra_args = ctx.allow_extra_args, True
        try:
            rest = super().parse_args(ctx, args)
        finally:
            ctx.allow_extra_args = allowed
        if rest and not allowed:
            ctx.fail(f"Got unexpected extra argument(s) ({' '.join(rest)})")
        return rest
