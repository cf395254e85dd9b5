"""The one exception tree of csi-vm, grouped by what the caller does next.

    CsiVmError
    ├── Unsupported          the driver (or host) lacks the feature: take the fallback
    ├── Rejected             this request cannot work as asked: change the input
    │   ├── InvalidInput     a value given by the user or a config file is wrong
    │   ├── NotFound         the named object does not exist
    │   ├── AlreadyExists    an object of that name exists with other properties
    │   └── OutOfRange       a size or count outside what the driver can do
    ├── Transient            may work later: retried, then reported
    │   ├── Busy             an operation on the same object is in flight
    │   └── Unreachable      the endpoint did not answer (down, hung, deadline hit)
    ├── OperationFailed      a step failed for a reason not listed above: roll back
    └── DataSafetyError      continuing could lose or corrupt data: stop now

Foreign errors (gRPC status codes, OS errors, libvirt errors) are mapped into
this tree once, at the adapter that talks to the foreign system, with
``raise ... from err``. Fallbacks key on these classes, never on message text.
"""

from __future__ import annotations


class CsiVmError(Exception):
    """Base of every error csi-vm raises on purpose."""

    #: process exit code the CLI uses for this kind of error
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class Unsupported(CsiVmError):
    """The driver or host does not offer this; the caller takes a fallback."""

    exit_code = 3


class Rejected(CsiVmError):
    """This request cannot work as asked; retrying it unchanged will not help."""

    exit_code = 2


class InvalidInput(Rejected):
    """A value given by the user, a spec or a config file is wrong."""


class NotFound(Rejected):
    """The named object does not exist."""


class AlreadyExists(Rejected):
    """An object of that name exists with incompatible properties."""


class OutOfRange(Rejected):
    """A size or count is outside what the driver or host can do."""


class Transient(CsiVmError):
    """Might work later; callers retry with backoff before giving up."""

    exit_code = 4


class Busy(Transient):
    """Another operation on the same object is in flight."""


class Unreachable(Transient):
    """The endpoint did not answer in time or is not there."""


class OperationFailed(CsiVmError):
    """A step failed for a reason not covered above; the flow rolls back."""

    exit_code = 5


class DataSafetyError(CsiVmError):
    """Going on could lose or corrupt data; stop and leave things as they are."""

    exit_code = 6
