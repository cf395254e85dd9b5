"""Retry with backoff for transient failures, in one place for all of csi-vm."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from csi_vm import errors

T = TypeVar("T")

log = logging.getLogger("csi_vm.retry")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a transient failure.

    The defaults give up after about 1.4 s of waiting (0.2 + 0.4 + 0.8): long
    enough to ride out a driver restart's socket gap, short enough that a
    user sees a dead endpoint quickly.
    """

    attempts: int = 4
    first_delay: float = 0.2
    max_delay: float = 2.0

    def never(self) -> RetryPolicy:
        return dataclasses.replace(self, attempts=1)


NO_RETRY = RetryPolicy(attempts=1)


def call(
    func: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``func``, retrying on `errors.Transient` as the policy says."""
    # Nearly every call succeeds at once, and on a local socket tenacity's
    # bookkeeping cost more CPU than the RPC: it takes over only after a
    # transient failure, which it is handed as its own first attempt.
    try:
        return func()
    except errors.Transient as err:
        if policy.attempts <= 1:
            raise
        first: errors.Transient | None = err

    def again() -> T:
        nonlocal first
        if first is not None:
            failed, first = first, None
            raise failed
        return func()

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=tenacity.wait_exponential(
            multiplier=policy.first_delay, min=policy.first_delay, max=policy.max_delay
        ),
        retry=tenacity.retry_if_exception_type(errors.Transient),
        before_sleep=_logger(what, policy),
        sleep=sleep,
        reraise=True,
    )
    return retrying(again)


def _logger(what: str, policy: RetryPolicy) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action else 0.0
        outcome = state.outcome
        reason = outcome.exception() if outcome is not None else None
        # INFO, not WARNING: a retry that then succeeds needs no action, and
        # one that fails ends in an error that says the same; `-v` shows them.
        log.info(
            "%s: attempt %d/%d failed (%s), retrying in %.1f s",
            what,
            state.attempt_number,
            policy.attempts,
            reason,
            delay,
        )

    return before_sleep
