"""A write budget shared by one process's writer threads: table write units a second, adapting to throttling.

A token bucket at the current rate, from which each write reserves its estimated units before it is
sent (a caller whose reservation runs ahead of the bucket sleeps until it is covered) and settles the
difference once DynamoDB reports what the write consumed. The rate starts at the budget. When
DynamoDB throttles it drops (at most once per ``cooldown_s``, so one burst of throttled calls counts
once) by ``decrease``, and at once to what DynamoDB served since the last drop if that is lower — the
capacity it found — then climbs back additively while nothing is throttled, by ``probe`` of the new
rate (of at least a fifth of the budget) each second, never above the budget. With a budget below the
table's capacity nothing is throttled, and the capacity above it stays free for the live stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CLIMB_FLOOR = 0.2
"""After a deep drop the climb is reckoned on at least this share of the budget (recovery in minutes,
not hours, once a throttling storm is over)."""


@dataclass(frozen=True)
class PacerState:
    """What the pacer has done so far (for the progress line and metrics)."""

    rate: float
    budget: float
    units: float
    throttles: int


class WritePacer:
    """Up to ``budget`` write units a second (AIMD under throttling)."""

    def __init__(
        self,
        budget: float,
        *,
        decrease: float = 0.7,
        probe: float = 0.05,
        floor: float = 0.05,
        cooldown_s: float = 1.0,
        burst_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``probe``: the climb a second, as a share of the rate after the last drop; ``floor``: the lowest
        rate, as a share of the budget; ``burst_s``: how many seconds of unused budget may be spent at once."""
        if budget <= 0:
            raise ValueError(f"a write budget must be positive, not {budget}")
        self.budget = budget
        self.rate = budget
        self.decrease, self.probe, self.floor = decrease, probe, floor
        self.cooldown_s, self.burst_s = cooldown_s, burst_s
        self.climb = 0.0  # units a second more, each second, since the last throttle
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()
        self.at = clock()
        self.tokens = 0.0
        self.last_decrease = float("-inf")
        self.served, self.served_since = 0.0, self.at  # units DynamoDB accepted since the last drop
        self.units = 0.0
        self.throttles = 0

    def _advance(self, now: float) -> None:
        elapsed = max(0.0, now - self.at)
        climbing = max(0.0, now - max(self.at, self.last_decrease + self.cooldown_s))  # not while cooling down
        self.at = now
        self.rate = min(self.budget, self.rate + self.climb * climbing)
        self.tokens = min(self.rate * self.burst_s, self.tokens + elapsed * self.rate)

    def acquire(self, units: float) -> None:
        """Reserve ``units`` for one write, sleeping until the budget covers them."""
        with self.lock:
            self._advance(self.clock())
            self.tokens -= units
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)

    def settle(self, reserved: float, consumed: float) -> None:
        """A write that reserved ``reserved`` units consumed ``consumed`` (as DynamoDB reported it)."""
        with self.lock:
            self.tokens -= consumed - reserved
            self.units += consumed
            self.served += consumed

    def throttled(self) -> None:
        """DynamoDB throttled a write: slow down (once per cool-down)."""
        with self.lock:
            now = self.clock()
            self._advance(now)
            self.throttles += 1
            if now - self.last_decrease >= self.cooldown_s:
                measured = now - self.served_since
                served = self.served / measured if measured >= self.cooldown_s else float("inf")
                self.rate = max(self.budget * self.floor, min(self.rate * self.decrease, served))
                self.climb = max(self.rate, self.budget * CLIMB_FLOOR) * self.probe
                self.last_decrease, self.served, self.served_since = now, 0.0, now

    def state(self) -> PacerState:
        with self.lock:
            return PacerState(self.rate, self.budget, self.units, self.throttles)
