"""Liveness and readiness of a ddbridge process, for Kubernetes probes (served beside /metrics).

Live while the loop turns: the main loop marks every turn; a loop stuck longer than the stall limit (a
hung call, a deadlock) is not live, and the orchestrator restarts the process. Ready only while the
process has work assigned and nothing is failing: a stream member without partitions (more replicas
than partitions, or mid-rebalance) or one whose Kafka access was refused is not ready.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """One probe's answer: ``ok`` and a one-line reason a person can act on."""

    ok: bool
    reason: str


class Health:
    """Thread-safe state the probes read; the loop writes it."""

    def __init__(self, stall_limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_limit_s = stall_limit_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_turn = clock()
        self._assigned = 0
        self._failing: str | None = None
        self._started = False

    def turned(self) -> None:
        """The loop went round once."""
        with self._lock:
            self._last_turn = self._clock()
            self._started = True

    def assigned(self, partitions: int) -> None:
        """How many partitions (or segments) this process now owns."""
        with self._lock:
            self._assigned = partitions

    def failing(self, reason: str | None) -> None:
        """Something retrying cannot fix is wrong (``reason``), or it cleared (``None``)."""
        with self._lock:
            self._failing = reason

    def liveness(self) -> Verdict:
        with self._lock:
            stalled = self._clock() - self._last_turn
        if stalled > self.stall_limit_s:
            return Verdict(False, f"the loop has not turned for {stalled:.0f} s (limit {self.stall_limit_s:.0f} s)")
        return Verdict(True, f"the loop turned {stalled:.1f} s ago")

    def readiness(self) -> Verdict:
        live = self.liveness()
        with self._lock:
            failing, assigned, started = self._failing, self._assigned, self._started
        if not live.ok:
            return live
        if failing is not None:
            return Verdict(False, f"failing: {failing}")
        if not started:
            return Verdict(False, "starting")
        if assigned == 0:
            return Verdict(False, "no partitions assigned (more members than partitions, or a rebalance)")
        return Verdict(True, f"{assigned} partition(s) assigned")
