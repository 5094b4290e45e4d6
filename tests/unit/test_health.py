"""The probes Kubernetes reads: live while the loop turns, ready only while partitions are assigned and
nothing is failing; served as /livez and /readyz beside /metrics (the WSGI app, called directly)."""

from __future__ import annotations

from typing import Any
from wsgiref.util import setup_testing_defaults

from bridge.health import Health
from bridge.metrics import endpoints


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _get(app: Any, path: str) -> tuple[str, str]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: list[str] = []
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    return seen[0], body.decode()


def test_live_until_the_loop_stops_turning_for_longer_than_the_limit() -> None:
    clock = Clock()
    health = Health(stall_limit_s=60, clock=clock)
    health.turned()
    clock.now += 60
    assert health.liveness().ok
    clock.now += 1
    verdict = health.liveness()
    assert not verdict.ok and verdict.reason == "the loop has not turned for 61 s (limit 60 s)"
    health.turned()
    assert health.liveness().ok


def test_ready_only_once_turning_with_partitions_and_nothing_failing() -> None:
    clock = Clock()
    health = Health(stall_limit_s=60, clock=clock)
    assert health.readiness().reason == "starting"
    health.assigned(3)
    assert health.readiness().reason == "starting"  # assigned, but the loop has not gone round yet
    health.turned()
    assert health.readiness().ok and health.readiness().reason == "3 partition(s) assigned"
    health.assigned(0)
    assert not health.readiness().ok and "no partitions assigned" in health.readiness().reason
    health.assigned(1)
    health.failing("Kafka refused the login")
    assert health.readiness() == health.readiness() and health.readiness().reason == "failing: Kafka refused the login"
    health.failing(None)
    assert health.readiness().ok
    clock.now += 61
    assert not health.readiness().ok and "has not turned" in health.readiness().reason


def test_the_endpoints_answer_200_or_503_with_the_reason_and_serve_the_metrics() -> None:
    clock = Clock()
    health = Health(stall_limit_s=60, clock=clock)
    app = endpoints(health)
    assert _get(app, "/readyz") == ("503 Service Unavailable", "starting\n")
    health.turned()
    health.assigned(2)
    assert _get(app, "/readyz") == ("200 OK", "2 partition(s) assigned\n")
    assert _get(app, "/livez")[0] == "200 OK"
    clock.now += 120
    assert _get(app, "/livez") == ("503 Service Unavailable", "the loop has not turned for 120 s (limit 60 s)\n")
    status, body = _get(app, "/metrics")
    assert status == "200 OK" and "ddbridge_events_consumed" in body


def test_without_health_only_the_metrics_are_served() -> None:
    status, body = _get(endpoints(None), "/readyz")
    assert status == "200 OK" and "ddbridge_writes_applied" in body
