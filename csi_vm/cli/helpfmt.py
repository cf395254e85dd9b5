"""Option types in `--help` as people read them: TEXT, PATH, NUMBER, a|b|c.

typer shows each option's Python annotation (`<list[str]>`, `<float range>`,
`<bool>` on a flag). Here a flag shows no type, a repeatable option says so,
choices are listed and the rest read as click's own help always has.
"""

from __future__ import annotations

import re
from typing import Any

# typer's label (without its angle brackets) -> the word shown instead
_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "NUMBER",
    "int range": "INTEGER",
    "float range": "NUMBER",
    "path": "PATH",
    "file": "FILE",
    "directory": "DIRECTORY",
    "bool": "BOOLEAN",
}
_LIST = re.compile(r"^list\[(.*)\]$")
#: a paragraph printed as written: an indented example, an item of a list
_AS_WRITTEN = re.compile(r"^( {4}|- )")
#: click's mark of a paragraph it must not rewrap
_NO_REWRAP = "\b\n"


def readable(label: str) -> str:
    """`<list[str]>` -> `TEXT (repeatable)`, `<float range>` -> `NUMBER`, choices kept."""
    bare = label.removeprefix("<").removesuffix(">")
    repeated = _LIST.match(bare)
    inner = repeated.group(1) if repeated else bare
    word = _WORDS.get(inner, inner)
    return f"{word} (repeatable)" if repeated else word


def keep_layout(text: str) -> str:
    """Examples and list items keep their lines: click rewraps every other paragraph.

    An example rewrapped would break a command line in two where a user
    copies it whole.
    """
    paragraphs = text.split("\n\n")
    return "\n\n".join(_NO_REWRAP + p if _AS_WRITTEN.match(p) else p for p in paragraphs)


def keep_layouts(command: Any) -> None:
    """keep_layout on the help of ``command`` and of every command under it."""
    if command.help:
        command.help = keep_layout(command.help)
    for sub in (getattr(command, "commands", None) or {}).values():
        keep_layouts(sub)


def install() -> None:
    """Show readable types in the help of every typer command from now on.

    Positional arguments read as click and man pages write them: `VM DISK
    [SIZE]`, where typer writes `{vm} {disk}`.
    """
    from typer import core  # noqa: PLC0415 - loaded with the command, never at start-up

    for cls in (core.TyperOption, core.TyperArgument):
        if getattr(cls, "_csi_vm_readable", False):
            continue
        original = cls.display_type_rich
        cls.display_type_rich = _wrap(original)  # type: ignore[method-assign]
        setattr(cls, "_csi_vm_readable", True)  # noqa: B010 - a mark on typer's class
    core.TyperArgument.display_name_raw = property(_argument_name)  # type: ignore[method-assign,assignment]
    core.TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign]


def _argument_name(self: Any) -> str:
    return str(self.metavar) if self.metavar is not None else str(self.name).upper()


def _usage_name(self: Any) -> str:
    name = _argument_name(self) + ("..." if self.nargs != 1 else "")
    return name if self.required else f"[{name}]"


def _wrap(original: Any) -> Any:
    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False):
            return None  # a flag takes no value: a type would only confuse
        if self.metavar:
            return str(self.metavar)
        label = original(self, ctx)
        return None if label is None else readable(str(label))

    return display_type_rich
