"""The circuit breaker's state machine and the retry backoff, with a clock the test moves."""

from __future__ import annotations

import random

import pytest

from shared.settings import RetryPolicy
from workers.circuit import CircuitBreaker, CircuitState
from workers.delivery.policy import backoff_s

KEY = ("tenant-a", "sg-primary")


class Clock:
    """A monotonic clock the test advances by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker(threshold=threshold, cooldown_s=30, clock=clock)


def test_opens_after_threshold_consecutive_failures_only() -> None:
    clock = Clock()
    b = breaker(clock)
    assert not b.failure(KEY)
    assert not b.failure(KEY)
    b.success(KEY)  # a success in between resets the run
    assert not b.failure(KEY)
    assert not b.failure(KEY)
    assert b.state(KEY) is CircuitState.CLOSED
    assert b.failure(KEY)
    assert b.state(KEY) is CircuitState.OPEN
    assert not b.acquire(KEY)
    assert b.retry_in(KEY) == pytest.approx(30)


def test_refused_credentials_open_at_once() -> None:
    clock = Clock()
    b = breaker(clock)
    assert b.failure(KEY, open_now=True)
    assert b.state(KEY) is CircuitState.OPEN
    assert b.state(("tenant-b", "sg-primary")) is CircuitState.CLOSED  # per tenant


def test_half_open_lets_one_probe_through_and_its_answer_decides() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1)
    b.failure(KEY)
    clock.now += 29.9
    assert not b.acquire(KEY)
    clock.now += 0.2
    assert b.state(KEY) is CircuitState.HALF_OPEN
    assert b.acquire(KEY)  # the probe
    assert not b.acquire(KEY)  # nobody else while it is out
    b.failure(KEY)  # the probe failed: open for another cool-down
    assert b.state(KEY) is CircuitState.OPEN
    assert b.retry_in(KEY) == pytest.approx(30)
    clock.now += 30
    assert b.acquire(KEY)
    b.success(KEY)
    assert b.state(KEY) is CircuitState.CLOSED
    assert b.acquire(KEY)
    assert b.acquire(KEY)


def test_a_probe_without_verdict_frees_the_slot() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1)
    b.failure(KEY)
    clock.now += 31
    assert b.acquire(KEY)
    b.release(KEY)
    assert b.acquire(KEY)


def test_backoff_grows_with_full_jitter_and_is_capped() -> None:
    random.seed(7)
    policy = RetryPolicy(max_attempts=10, base_s=2, max_backoff_s=60)
    first = [backoff_s(failures=1, policy=policy, retry_after_s=None) for _ in range(200)]
    fifth = [backoff_s(failures=5, policy=policy, retry_after_s=None) for _ in range(200)]
    tenth = [backoff_s(failures=10, policy=policy, retry_after_s=None) for _ in range(200)]
    assert set(first) <= {1, 2}
    assert max(fifth) <= 32
    assert min(fifth) == 1
    assert len(set(fifth)) > 10
    assert max(tenth) <= 60
    assert max(tenth) > 40


def test_backoff_never_comes_before_retry_after() -> None:
    policy = RetryPolicy(max_attempts=5, base_s=1, max_backoff_s=4)
    assert all(backoff_s(failures=1, policy=policy, retry_after_s=3.2) == 4 for _ in range(50))
    assert backoff_s(failures=1, policy=policy, retry_after_s=0) >= 1
