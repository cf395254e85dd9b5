"""The retry door: attempts, delays and messages, with a recorded sleep."""

from __future__ import annotations

import logging

import pytest

from csi_vm import errors
from csi_vm.csi import retry

POLICY = retry.RetryPolicy(attempts=4, first_delay=0.2)


class Flaky:
    """Fails with ``error`` the first ``failures`` times, then answers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.calls = 0
        self.failures = failures
        self.error = error or errors.Unreachable("driver socket refused the connection")

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "answer"


def test_a_call_that_works_runs_once_and_never_sleeps() -> None:
    flaky, slept = Flaky(0), list[float]()
    assert retry.call(flaky, what="Probe", policy=POLICY, sleep=slept.append) == "answer"
    assert (flaky.calls, slept) == (1, [])


def test_transient_failures_are_retried_with_growing_delays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky, slept = Flaky(2), list[float]()
    with caplog.at_level(logging.INFO, logger="csi_vm.retry"):
        assert retry.call(flaky, what="Probe", policy=POLICY, sleep=slept.append) == "answer"
    assert flaky.calls == 3
    assert slept == [0.2, 0.4]
    assert "Probe: attempt 1/4 failed (driver socket refused the connection)" in caplog.text
    assert "attempt 2/4 failed" in caplog.text and "retrying in 0.4 s" in caplog.text


def test_the_last_failure_is_raised_after_every_attempt() -> None:
    flaky, slept = Flaky(10), list[float]()
    with pytest.raises(errors.Unreachable):
        retry.call(flaky, what="Probe", policy=POLICY, sleep=slept.append)
    assert flaky.calls == 4
    assert slept == [0.2, 0.4, 0.8]


def test_other_failures_and_single_attempt_policies_are_not_retried() -> None:
    refused = Flaky(1, errors.InvalidInput("volume name is empty"))
    with pytest.raises(errors.InvalidInput):
        retry.call(refused, what="CreateVolume", policy=POLICY, sleep=_never)
    assert refused.calls == 1
    once = Flaky(1)
    with pytest.raises(errors.Unreachable):
        retry.call(once, what="Probe", policy=retry.NO_RETRY, sleep=_never)
    assert once.calls == 1


def _never(seconds: float) -> None:
    pytest.fail(f"slept {seconds} s for a failure that is not retried")
