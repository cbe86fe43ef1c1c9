"""A circuit breaker per (tenant, provider), held by each worker process (DESIGN.md §7 rule 5).

CLOSED: calls flow; consecutive transient failures are counted and a success resets the count.
The circuit OPENs after `threshold` of them in a row, or at once when our own credentials are
refused. After `cooldown_s` it is HALF_OPEN: one probe call is let through; its success closes
the circuit, its failure opens it for another cool-down. Each worker process learns on its own
(no shared state to write on every send); with several copies, each opens after its own run of
failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog

log = structlog.get_logger(__name__)


class CircuitState(StrEnum):
    """Where one circuit stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreaker:
    """Tracks every (tenant, provider) circuit of this process."""

    def __init__(
        self,
        *,
        threshold: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._circuits: dict[tuple[str, str], _Circuit] = {}

    def state(self, key: tuple[str, str]) -> CircuitState:
        """The circuit's state now."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - circuit.opened_at < self._cooldown_s:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def acquire(self, key: tuple[str, str]) -> bool:
        """May a call go through now? In HALF_OPEN only one probe at a time may."""
        state = self.state(key)
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.OPEN:
            return False
        circuit = self._circuits[key]
        if circuit.probing:
            return False
        circuit.probing = True
        return True

    def retry_in(self, key: tuple[str, str]) -> float:
        """Seconds until the circuit lets a probe through (0 when it already would)."""
        circuit = self._circuits.get(key)
        if circuit is None or circuit.opened_at is None:
            return 0.0
        return max(0.0, circuit.opened_at + self._cooldown_s - self._clock())

    def success(self, key: tuple[str, str]) -> None:
        """The provider answered (delivered, or refused the message itself): close."""
        circuit = self._circuits.get(key)
        if circuit is None:
            return
        if circuit.opened_at is not None:
            log.info("circuit_closed", tenant_id=key[0], provider=key[1])
        self._circuits.pop(key, None)

    def failure(self, key: tuple[str, str], *, open_now: bool = False) -> bool:
        """A transient failure (or refused credentials, `open_now`); True if it opened."""
        circuit = self._circuits.setdefault(key, _Circuit())
        was_probe = circuit.probing
        circuit.probing = False
        circuit.failures += 1
        if open_now or was_probe or circuit.failures >= self._threshold:
            reopened = circuit.opened_at is not None
            circuit.opened_at = self._clock()
            if not reopened or was_probe:
                log.warning(
                    "circuit_opened",
                    tenant_id=key[0],
                    provider=key[1],
                    failures=circuit.failures,
                    cooldown_s=self._cooldown_s,
                )
            return True
        return False

    def release(self, key: tuple[str, str]) -> None:
        """A call let through ended without a verdict on the provider (e.g. it crashed)."""
        circuit = self._circuits.get(key)
        if circuit is not None:
            circuit.probing = False
