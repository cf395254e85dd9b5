"""The `csi-vm` console script: `vm show NAME` answered before click is imported.

Why it exists: scripts run `vm show` once per VM, and its work is one indexed
read of the store, well under a millisecond in a fleet of 100,000 VMs. The
rest was start-up: click, the YAML config and the command's modules took
three times as long as the interpreter's own start. This entry point
answers the plain forms

    csi-vm vm show NAME [-o table|wide|json|yaml|name] [--no-headers]

with the standard library alone (and PyYAML for -o yaml, platformdirs
where no CSI_VM_* variable names the files), where it can print exactly
what the click command prints: a config this csi-vm read whole and found
valid (see `check_config`), a store of the current schema without
unfinished flows, a VM that is there, a table only into a pipe. Everything
else (help, other options, errors, a config not seen yet, a terminal) goes
to the full CLI in `csi_vm.cli.main`, before anything is printed, and is
answered there as always; such lines pay for nothing more than this module
(the store's read and the output are fastshow's, imported only for vm show).
tests/unit/cli/test_fastpath.py runs both on the same stores and compares
every byte.
"""

from __future__ import annotations

import os
import sys

import csi_vm
from csi_vm.cli import pipe

# Not typing.TYPE_CHECKING: typing is a module this command spares too.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import pathlib
    from collections.abc import Callable, Sequence

#: `-o` values, as vmenv.Output names them
FORMATS = ("table", "wide", "json", "yaml", "name")
#: in the state directory: the identity of the config file last read whole and found valid
STAMP = "config-checked"


def run() -> None:
    """Console-script entry point."""
    if not answered(sys.argv[1:]):
        from csi_vm.cli import main  # noqa: PLC0415 - the full CLI costs what this module spares

        main.run()


def answered(args: Sequence[str]) -> bool:
    """Print the answer to `args` and say True, or print nothing and say False."""
    if _parse(args) is None:
        return False  # the full CLI sets up everything for itself
    import signal  # noqa: PLC0415 - only for the lines answered here

    # As in the full CLI (main.run): SIGTERM ends the command as Ctrl-C does,
    # and either one is reported, never a traceback.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        text = answer(args)
        if text is not None:
            _write(text)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    if text is not None:
        # Done: a signal now would only turn a clean exit into a signal death.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return text is not None


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # As vmenv.reader_may_leave: a reader that stopped reading is no
        # error, and Python would report the failed flush again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def answer(args: Sequence[str]) -> str | None:
    """What `csi-vm ARGS` prints, where this module can tell; None where it cannot."""
    asked = _parse(args)
    if asked is None or not _config_checked():
        return None
    name, fmt, headers = asked
    if fmt in ("table", "wide") and not pipe.plain_pipe():
        return None  # a terminal gets rich's boxed table
    # Imported here: every other command line starts without sqlite3 and json.
    from csi_vm.cli import fastshow  # noqa: PLC0415

    return fastshow.show(_db_path(), name, fmt=fmt, headers=headers)


def _parse(args: Sequence[str]) -> tuple[str, str, bool] | None:
    """(name, format, headers) of `vm show NAME [-o FORMAT] [--no-headers]`, in any order."""
    if list(args[:2]) != ["vm", "show"]:
        return None
    name, fmt, headers = "", "", True
    rest = iter(args[2:])
    for arg in rest:
        if arg in ("-o", "--output") and not fmt:
            fmt = next(rest, "")
            if fmt not in FORMATS:
                return None
        elif arg == "--no-headers" and headers:
            headers = False
        elif arg.startswith("-") or name or not arg:
            return None
        else:
            name = arg
    return (name, fmt or "table", headers) if name else None


# -- the config ------------------------------------------------------------------


def check_config(path: pathlib.Path, load: Callable[[pathlib.Path], object]) -> None:
    """`load(path)`, the full CLI's check of the config, remembered once it passes.

    What is remembered is the file's identity (inode, size, times) and the
    csi-vm version (a release may check more), never a value of the config:
    it holds CSI secrets. The identity is taken before the file is read, so
    a change during the read makes it differ.
    """
    import time  # noqa: PLC0415 - the full CLI's side: not for `vm show`

    seen = _stat(str(path))
    load(path)
    # A write sets both times to the file system clock's tick, which may
    # still be the same tick as now: a second write of the same size would
    # leave every time as it is (git's "racy" files). Such a file is
    # remembered once it has settled; one whose times differ (its mtime set
    # by a tool) cannot come out of a write as it is.
    if seen is None or (
        seen.st_mtime_ns == seen.st_ctime_ns and time.time_ns() - seen.st_ctime_ns < _SETTLED_NS
    ):
        return
    if _identity(seen) != _stamp():
        _remember(_identity(seen))


#: how long ago a config file must have changed for its identity to be remembered
_SETTLED_NS = 2_000_000_000


def _remember(identity: str) -> None:
    state = _state_dir()
    try:
        os.makedirs(state, exist_ok=True)
        part = os.path.join(state, f".{STAMP}.{os.getpid()}")
        with open(part, "w", encoding="utf-8") as out:
            out.write(identity)
        os.replace(part, os.path.join(state, STAMP))
    except OSError:
        pass  # a state directory that cannot be written only costs speed


def _config_checked() -> bool:
    """The config file is, unchanged, the one `check_config` last found valid."""
    seen = _stat(_config_path())
    return seen is not None and _identity(seen) == _stamp()


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _identity(st: os.stat_result) -> str:
    # Every write changes the ctime, which no user call can set back; a
    # replaced file has another inode.
    found = (csi_vm.__version__, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return " ".join(map(str, found))


def _stamp() -> str | None:
    try:
        with open(os.path.join(_state_dir(), STAMP), encoding="utf-8") as stamp:
            return stamp.read()
    except (OSError, ValueError):
        return None


# The paths as vmenv.config_path, vmenv.db_path and paths.state_dir find them
# (a test holds them equal), without pathlib: platformdirs only for defaults.


def _config_path() -> str:
    return os.environ.get("CSI_VM_CONFIG") or os.path.join(_user_dir("config"), "config.yaml")


def _db_path() -> str:
    return os.environ.get("CSI_VM_DB") or os.path.join(_user_dir("data"), "csi-vm.db")


def _state_dir() -> str:
    return os.environ.get("CSI_VM_STATE_DIR") or _user_dir("state")


def _user_dir(kind: str) -> str:
    import platformdirs  # noqa: PLC0415 - a command given its paths by environment starts without it

    dirs = {
        "config": platformdirs.user_config_dir,
        "data": platformdirs.user_data_dir,
        "state": platformdirs.user_state_dir,
    }
    return dirs[kind]("csi-vm")
