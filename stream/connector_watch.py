"""The connector watch of ``ddbridge stream``: Kafka Connect never restarts a FAILED task by itself, so
a registry or broker that was briefly unreachable would stop the capture until someone noticed. The
watch checks the connector every ``connect.watch_interval_s`` and restarts a failed task with backoff
(doubling, at most 10 minutes; ``connect.max_restarts`` in a row). A failure that needs a person (a
schema the registry refused) is reported with what to do and never restarted. Nothing here can stop
the bridge: an unreachable Connect is logged once and checked again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bridge import metrics
from bridge.config import ConnectSettings
from bridge.errors import DdbridgeError
from stream.ports import ConnectorControl

log = logging.getLogger("ddbridge.connector")

MAX_BACKOFF_S = 600.0


class ConnectorWatch:
    """Restarts the connector's FAILED tasks with backoff; ``check`` is one look, ``run`` loops."""

    def __init__(
        self,
        control: ConnectorControl,
        settings: ConnectSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.control = control
        self.name = settings.connector_name
        self.interval_s = settings.watch_interval_s
        self.first_backoff_s = settings.restart_backoff_s
        self.max_restarts = settings.max_restarts
        self.enabled = settings.restart_failed_tasks
        self.clock = clock
        self.restarts = 0  # in a row: reset after MAX_BACKOFF_S of RUNNING
        self.failed_since: float | None = None
        self.running_since: float | None = None
        self.reported: str | None = None  # the last problem logged, so a lasting one is logged once

    def check(self) -> str:
        """Look at the connector once and act; returns what it found (for tests and logs)."""
        now = self.clock()
        try:
            status = self.control.status(self.name)
        except DdbridgeError as exc:
            return self._report("unreachable", f"cannot check connector {self.name}: {exc}")
        if status is None:
            metrics.CONNECTOR_RUNNING.set(0)
            return self._report(
                "missing", f"connector {self.name} is not registered: run `ddbridge connector register`"
            )
        if not status.failed:
            metrics.CONNECTOR_RUNNING.set(1 if status.running else 0)
            self.failed_since = None
            self.running_since = self.running_since if self.running_since is not None else now
            if self.restarts and now - self.running_since >= MAX_BACKOFF_S:
                self.restarts = 0
            if self.reported is not None:
                log.info("connector %s is %s again", self.name, status.state)
                self.reported = None
            return "running" if status.running else status.state.lower()
        metrics.CONNECTOR_RUNNING.set(0)
        self.running_since = None
        self.failed_since = self.failed_since if self.failed_since is not None else now
        advice = status.advice()
        if advice is not None:
            return self._report("needs a person", f"connector {self.name} FAILED: {advice}")
        if not self.enabled:
            return self._report(
                "failed", f"connector {self.name} FAILED: {status.cause()}; fix it, then `ddbridge connector restart`"
            )
        if self.restarts >= self.max_restarts:
            return self._report(
                "gave up",
                f"connector {self.name} FAILED again after {self.restarts} restarts: {status.cause()}; fix the "
                "cause (`ddbridge connector status` shows the trace), then `ddbridge connector restart`",
            )
        if now - self.failed_since < min(MAX_BACKOFF_S, self.first_backoff_s * 2**self.restarts):
            return "waiting"
        try:
            restarted = self.control.restart(self.name, only_failed=True)
        except DdbridgeError as exc:
            return self._report("unreachable", f"cannot restart connector {self.name}: {exc}")
        self.restarts += 1
        self.failed_since = None
        metrics.CONNECTOR_RESTARTS.inc()
        log.warning(
            "connector %s FAILED (%s); restarted its failed tasks (restart %d of at most %d in a row); it resumes "
            "from its last committed offset",
            self.name,
            status.cause(),
            self.restarts,
            self.max_restarts,
        )
        self.reported = None
        return "restarted" if restarted else "missing"

    def _report(self, outcome: str, message: str) -> str:
        if message != self.reported:
            log.log(logging.ERROR if outcome in ("needs a person", "gave up", "failed") else logging.WARNING, message)
            self.reported = message
        return outcome

    def run(self, stop: threading.Event) -> None:
        """Check every ``interval_s`` until ``stop`` is set."""
        while not stop.wait(self.interval_s):
            try:
                self.check()
            except Exception as exc:  # a bug here must not pass silently, nor stop the stream
                log.error(
                    "the connector watch stopped on an unexpected %s: %s; the stream goes on, watch the "
                    "connector with `ddbridge connector status`",
                    type(exc).__name__,
                    exc,
                )
                return

    def start(self, stop: threading.Event) -> threading.Thread:
        """Run in a daemon thread (REST calls never hold up the stream)."""
        thread = threading.Thread(target=self.run, args=(stop,), name="ddbridge-connector-watch", daemon=True)
        thread.start()
        return thread
