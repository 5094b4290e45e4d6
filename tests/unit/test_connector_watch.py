"""The connector watch of `ddbridge stream`: a FAILED task is restarted with doubling backoff, a failure
that needs a person is never restarted, a lasting problem is logged once, and nothing it meets (an
unreachable Connect, a missing connector) raises."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from bridge.config import ConnectSettings
from bridge.errors import ConnectorError
from connectors.debezium import ConnectClient, ConnectorStatus
from stream.connector_watch import ConnectorWatch

REGISTRY_DOWN = (  # the head of a real trace: Apicurio's converter could not reach the registry
    "org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\n"
    "\tat org.apache.kafka.connect.runtime.errors.RetryWithToleranceOperator.execAndHandleError(X.java:259)\n"
    "Caused by: io.apicurio.registry.rest.client.exception.RestClientException\n"
)
REFUSED = (
    "org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler\n"
    "Caused by: io.apicurio.registry.rest.client.exception.RuleViolationException: Incompatible artifact: "
    "t1.public.payments-value [AVRO]\n"
)


def running() -> ConnectorStatus:
    return ConnectorStatus("src", "RUNNING", "w", [{"id": 0, "state": "RUNNING"}])


def failed(trace: str = REGISTRY_DOWN) -> ConnectorStatus:
    return ConnectorStatus("src", "RUNNING", "w", [{"id": 0, "state": "FAILED", "trace": trace}])


class FakeConnect:
    """Answers the scripted statuses in turn (the last one repeats) and records restarts."""

    def __init__(self, *statuses: ConnectorStatus | Exception | None) -> None:
        self.statuses = list(statuses)
        self.restarts: list[tuple[str, bool]] = []

    def status(self, name: str) -> ConnectorStatus | None:
        answer = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def restart(self, name: str, *, only_failed: bool = True) -> bool:
        self.restarts.append((name, only_failed))
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(connect: FakeConnect, clock: Clock, **settings: Any) -> ConnectorWatch:
    options = {"connector_name": "src", "restart_backoff_s": 10.0, "max_restarts": 3} | settings
    return ConnectorWatch(connect, ConnectSettings(**options), clock)


def test_a_failed_task_is_restarted_after_the_backoff_which_doubles() -> None:
    connect, clock = FakeConnect(failed()), Clock()
    w = watch(connect, clock)
    assert w.check() == "waiting"  # first seen failed at t=1000
    clock.now = 1009.9
    assert w.check() == "waiting"
    clock.now = 1010.0
    assert w.check() == "restarted"
    assert connect.restarts == [("src", True)]
    clock.now = 1011.0  # failed again: 20 s from now
    assert w.check() == "waiting"
    clock.now = 1030.9
    assert w.check() == "waiting"
    clock.now = 1031.0
    assert w.check() == "restarted"
    clock.now = 1032.0  # then 40 s
    w.check()
    clock.now = 1071.9
    assert w.check() == "waiting"
    clock.now = 1072.0
    assert w.check() == "restarted"
    assert len(connect.restarts) == 3


def test_after_max_restarts_in_a_row_the_watch_gives_up_and_says_what_to_do(
    caplog: pytest.LogCaptureFixture,
) -> None:
    connect, clock = FakeConnect(failed()), Clock()
    w = watch(connect, clock, max_restarts=2)
    for _ in range(200):
        clock.now += 5
        w.check()
    assert len(connect.restarts) == 2
    gave_up = [r for r in caplog.records if "after 2 restarts" in r.getMessage()]
    assert len(gave_up) == 1 and gave_up[0].levelno == logging.ERROR  # logged once, not every check
    assert "RestClientException" in gave_up[0].getMessage()
    assert "`ddbridge connector restart`" in gave_up[0].getMessage()


def test_ten_minutes_running_between_failures_resets_the_count() -> None:
    connect, clock = FakeConnect(failed(), failed(), running(), running(), failed(), failed()), Clock()
    w = watch(connect, clock, max_restarts=1)
    w.check()
    clock.now += 10
    assert w.check() == "restarted"
    assert w.check() == "running"
    clock.now += 600
    assert w.check() == "running"  # running 10 minutes: the next failure starts a new series
    assert w.check() == "waiting"
    clock.now += 10
    assert w.check() == "restarted"
    assert len(connect.restarts) == 2


def test_a_short_run_between_failures_keeps_the_count() -> None:
    connect, clock = FakeConnect(failed(), failed(), running(), failed()), Clock()
    w = watch(connect, clock, max_restarts=1)
    w.check()
    clock.now += 10
    assert w.check() == "restarted"
    clock.now += 60
    assert w.check() == "running"
    clock.now += 1000
    assert w.check() == "gave up"
    assert len(connect.restarts) == 1


def test_a_schema_the_registry_refused_is_reported_never_restarted(caplog: pytest.LogCaptureFixture) -> None:
    connect, clock = FakeConnect(failed(REFUSED)), Clock()
    w = watch(connect, clock)
    for _ in range(50):
        clock.now += 60
        assert w.check() == "needs a person"
    assert connect.restarts == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "the schema registry refused a new schema of t1.public.payments-value" in errors[0]


def test_with_restarts_off_a_failure_is_only_reported() -> None:
    connect, clock = FakeConnect(failed()), Clock()
    w = watch(connect, clock, restart_failed_tasks=False)
    clock.now += 3600
    assert w.check() == "failed"
    assert connect.restarts == []


def test_an_unreachable_connect_or_a_missing_connector_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ddbridge.connector")
    down = ConnectorError("Kafka Connect at http://c:8083 did not answer GET /connectors/src/status")
    connect, clock = FakeConnect(down, down, None, running()), Clock()
    w = watch(connect, clock)
    assert [w.check() for _ in range(4)] == ["unreachable", "unreachable", "missing", "running"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "did not answer" in warnings[0] and "not registered" in warnings[1]
    assert any("is RUNNING again" in r.getMessage() for r in caplog.records)


def test_the_cause_names_the_first_line_and_the_innermost_cause() -> None:
    assert failed().cause() == (
        "org.apache.kafka.connect.errors.ConnectException: Tolerance exceeded in error handler "
        "(Caused by: io.apicurio.registry.rest.client.exception.RestClientException)"
    )
    assert ConnectorStatus("src", "FAILED", "w", []).cause() == "connector FAILED"
    assert ConnectorStatus("src", "FAILED", "w", []).failed
    assert not running().failed


def test_restart_asks_connect_for_the_failed_tasks_only_unless_told() -> None:
    seen: list[tuple[str, str]] = []

    class Recording(BaseAdapter):
        def send(  # type: ignore[override]  # only what requests passes
            self, request: requests.PreparedRequest, **kwargs: Any
        ) -> requests.Response:
            seen.append((str(request.method), str(request.url)))
            response = requests.Response()
            response.status_code, response._content, response.request = 202, b"{}", request
            return response

        def close(self) -> None:
            return

    client = ConnectClient(ConnectSettings(url="http://connect:8083"))
    client.session.mount("http://", Recording())
    assert client.restart("src")
    assert client.restart("src", only_failed=False)
    assert seen == [
        ("POST", "http://connect:8083/connectors/src/restart?includeTasks=true&onlyFailed=true"),
        ("POST", "http://connect:8083/connectors/src/restart?includeTasks=true&onlyFailed=false"),
    ]
