"""Collecting verification outcomes feature by feature, with timing and budget."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator

from capabilities import model
from csi_vm import errors


class Interrupted(Exception):
    """The probe was asked to stop (signal, matrix timeout); cleanup still runs."""


@dataclasses.dataclass(kw_only=True)
class Outcome:
    verified: bool | None = None
    evidence: str = ""
    seconds: float = 0.0
    inferred: bool | None = None


class Results:
    """Verified outcomes, filled in by the checks."""

    def __init__(self, *, budget: float, cancel: threading.Event) -> None:
        self.outcomes: dict[model.Feature, Outcome] = {}
        self._deadline = time.monotonic() + budget
        self._budget = budget
        self._cancel = cancel

    def set(
        self,
        feature: model.Feature,
        verified: bool | None,
        evidence: str,
        *,
        seconds: float | None = None,
    ) -> None:
        old = self.outcomes.get(feature, Outcome())
        self.outcomes[feature] = Outcome(
            verified=verified,
            evidence=evidence,
            seconds=old.seconds if seconds is None else seconds,
            inferred=old.inferred,
        )

    def infer(self, feature: model.Feature, inferred: bool | None, evidence: str) -> None:
        self.outcomes[feature] = Outcome(verified=None, inferred=inferred, evidence=evidence)

    def get(self, feature: model.Feature) -> bool | None:
        outcome = self.outcomes.get(feature)
        return outcome.verified if outcome else None

    def checkpoint(self) -> None:
        """Stop between steps when cancelled or out of time."""
        if self._cancel.is_set():
            raise Interrupted("probe interrupted")
        if time.monotonic() > self._deadline:
            raise Interrupted(f"probe budget of {self._budget:.0f} s used up")

    @contextlib.contextmanager
    def attempt(self, *features: model.Feature) -> Iterator[None]:
        """Time a check; a csi-vm error inside marks its features as failed."""
        started = time.monotonic()
        try:
            yield
        except errors.CsiVmError as err:
            for feature in features:
                if self.get(feature) is None:
                    self.set(feature, False, _short(err))
        finally:
            spent = time.monotonic() - started
            for feature in features:
                outcome = self.outcomes.setdefault(feature, Outcome())
                outcome.seconds += spent


def _short(err: errors.CsiVmError) -> str:
    text = str(err)
    return text if len(text) <= 240 else text[:237] + "..."
