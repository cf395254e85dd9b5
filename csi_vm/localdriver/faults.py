"""Driver-side refinements of the project's error tree, for answers CSI needs.

The shared tree (`csi_vm.errors`) is grouped by what a caller does next; a CSI
driver must also tell apart a few cases that tree folds together. Each class
here stays under the branch that says what the caller should do, and the gRPC
layer maps every class to exactly one status code (see `rpc_status`).

    errors.Rejected
    ├── FailedPrecondition   the object is in the wrong state (in use, not staged)
    ├── ResourceExhausted    no room: topology cannot be met, disk full
    └── InvalidToken         a pagination token this driver did not issue
    errors.OperationFailed
    └── BrokenOnPurpose      --advertise-broken made this RPC fail (tests only)
"""

from __future__ import annotations

from csi_vm import errors


class FailedPrecondition(errors.Rejected):
    """The request is well formed but the object is not in a state that allows it."""


class ResourceExhausted(errors.Rejected):
    """The request cannot be met with the space or topology available."""


class InvalidToken(errors.Rejected):
    """A list call's starting_token was not issued by this driver (CSI says ABORTED)."""


class BrokenOnPurpose(errors.OperationFailed):
    """The feature is advertised but deliberately broken by --advertise-broken."""
