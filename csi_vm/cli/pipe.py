"""Whether standard output is a pipe that rich would write plain lines to.

Its own module, on the standard library alone: tables decides with it how
to print, and so does `vm show`'s fast path (fastpath) before it imports
anything that prints tables.
"""

from __future__ import annotations

import os
import sys


def plain_pipe() -> bool:
    """Standard output is a pipe that rich would write plain lines to.

    rich's Console.is_terminal is False, whatever else it checks, when stdout
    is not a tty and neither TTY_COMPATIBLE nor FORCE_COLOR is set.
    """
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return False
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
