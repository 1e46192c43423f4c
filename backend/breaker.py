"""A small circuit breaker: after repeated failures, skip a dependency for a while, then probe."""

import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("devora.breaker")


class CircuitBreaker:
    """Closed → open after `threshold` consecutive failures; one probe after `cooldown_s`."""

    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        cooldown_s: float,
        on_change: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._on_change = on_change
        self._clock = clock
        self._failures = 0
        self._open_until = 0.0
        self.is_open = False

    def allows(self) -> bool:
        """Whether to try the dependency now (always while closed; once per cooldown while open)."""
        if not self.is_open:
            return True
        now = self._clock()
        if now < self._open_until:
            return False
        self._open_until = now + self.cooldown_s  # this caller is the probe
        return True

    def succeeded(self) -> None:
        self._failures = 0
        if self.is_open:
            self.is_open = False
            log.info("dependency_recovered", dependency=self.name)
            if self._on_change:
                self._on_change(False)

    def failed(self, error: BaseException) -> None:
        self._failures += 1
        if self.is_open:
            self._open_until = self._clock() + self.cooldown_s
            return
        if self._failures >= self.threshold:
            self.is_open = True
            self._open_until = self._clock() + self.cooldown_s
            log.warning("dependency_degraded", dependency=self.name, error=repr(error))
            if self._on_change:
                self._on_change(True)
