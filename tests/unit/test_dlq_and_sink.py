"""Dead-letter limits and the sink's pure helpers (no servers)."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from bridge.dlq import DeadLetter, DeadLetterQueue
from bridge.dynamo import retry_cause
from bridge.errors import DeadLetterLimit
from bridge.sink import MAX_ITEM_BYTES, item_size
from tests.unit.stream_fakes import RecordingProducer


def _letter() -> DeadLetter:
    return DeadLetter(MagicMock(), "public.t", "CodecError", "bad")


def _queue(max_errors: int = 100, ratio: float = 0.5, window: int = 10) -> DeadLetterQueue:
    return DeadLetterQueue(MagicMock(), "dlq", max_errors=max_errors, max_ratio=ratio, window=window)


def test_max_errors_breaker_trips_before_producing() -> None:
    queue = _queue(max_errors=2, ratio=1.0)
    queue.admit([_letter()], 5)
    queue.total = 1
    with pytest.raises(DeadLetterLimit, match=r"max_errors=2"):
        queue.admit([_letter(), _letter()], 5)


def test_ratio_limit_needs_a_full_window() -> None:
    queue = _queue(ratio=0.5, window=10)
    queue.admit([_letter()] * 4, 4)  # 4 of 4 dead, window not full yet
    with pytest.raises(DeadLetterLimit, match="of the last 10 events"):
        queue.admit([_letter()] * 4, 6)  # 8 dead of 10


def test_healthy_stream_never_trips() -> None:
    queue = _queue(ratio=0.2, window=10)
    for _ in range(50):
        queue.admit([], 100)
        queue.admit([_letter()], 20)


class _HeaderedRecord:
    """A record with the given headers (librdkafka gives a list; a dict is allowed by the client's types)."""

    def __init__(self, headers: Any) -> None:
        self._headers = headers

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return "ddbridge.public.t"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 17

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> Any:
        return self._headers


@pytest.mark.parametrize("original", [[("trace", b"abc")], {"trace": b"abc"}])
def test_a_dead_letter_keeps_the_record_and_its_headers_and_says_why(original: Any) -> None:
    producer = RecordingProducer()
    queue = DeadLetterQueue(producer, "dlq", max_errors=10, max_ratio=1.0, window=10)
    queue.send([DeadLetter(_HeaderedRecord(original), "public.t", "CodecError", "column c: bad")])
    [sent] = producer.produced
    assert (sent["topic"], sent["key"], sent["value"]) == ("dlq", b"k", b"v")
    headers = dict(sent["headers"])
    assert headers["trace"] == b"abc"
    assert headers["ddbridge.error.class"] == b"CodecError" and headers["ddbridge.error.message"] == b"column c: bad"
    assert (headers["ddbridge.source.topic"], headers["ddbridge.source.partition"]) == (b"ddbridge.public.t", b"2")
    assert headers["ddbridge.source.offset"] == b"17" and queue.total == 1


def _client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutItem"
    )


def test_retry_causes() -> None:
    assert retry_cause(_client_error("ProvisionedThroughputExceededException")) == "throttle"
    assert retry_cause(_client_error("ThrottlingException")) == "throttle"
    assert retry_cause(_client_error("InternalServerError", 500)) == "server"
    assert retry_cause(_client_error("Whatever", 503)) == "server"
    assert retry_cause(EndpointConnectionError(endpoint_url="http://x")) == "network"
    assert retry_cause(_client_error("ConditionalCheckFailedException")) is None
    assert retry_cause(_client_error("ValidationException")) is None


def test_item_size_counts_names_and_values() -> None:
    item: dict[str, Any] = {"a": {"S": "xyz"}, "bb": {"N": "12345"}, "c": {"L": [{"S": "q"}, {"BOOL": True}]}}
    assert item_size(item) == (1 + 3) + (2 + 2 + 2) + (1 + 3 + (1 + 1) + (1 + 1))
    assert item_size({"big": {"S": "x" * MAX_ITEM_BYTES}}) > MAX_ITEM_BYTES


class _StubClient:
    """Answers PutItem from a script of outcomes (an exception to raise, or None for success)."""

    def __init__(self, script: list[Exception | None]) -> None:
        self.script = list(script)
        self.calls = 0

    def put_item(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        return {}


def _sink(script: list[Exception | None], attempts: int = 4) -> tuple[Any, _StubClient]:
    from bridge.config import load_settings
    from bridge.mapping import RowMapper
    from bridge.rules import WriteRules
    from bridge.sink import DynamoSink
    from tests.conftest import PAYMENTS_CONFIG

    settings = load_settings(PAYMENTS_CONFIG)
    rules = WriteRules(RowMapper(settings.mapping()), settings.bookkeeping, 60)
    client = _StubClient(script)
    row: dict[str, dict[str, Any] | None] = {
        "payment_id": {"N": "1"},
        "customer_id": {"N": "2"},
        "payment_date": {"S": "2024-01-01"},
    }
    sink = DynamoSink(client, rules, concurrency=1, retry_attempts=attempts, backoff_ms=1)  # type: ignore[arg-type]
    return (sink, rules.cdc_put(row, 10)), client


def test_throttling_is_retried_until_it_succeeds() -> None:
    from bridge import metrics

    before = metrics.RETRIES.labels("throttle")._value.get()
    (sink, action), client = _sink([_client_error("ProvisionedThroughputExceededException")] * 2 + [None])
    assert sink.put(action).outcome == "applied"
    assert client.calls == 3
    assert metrics.RETRIES.labels("throttle")._value.get() == before + 2


def test_persistent_throttling_stops_without_dropping() -> None:
    from bridge.errors import TransientError

    (sink, action), client = _sink([_client_error("ThrottlingException")] * 10, attempts=3)
    with pytest.raises(TransientError, match="nothing was committed"):
        sink.put(action)
    assert client.calls == 3


def test_condition_failure_is_stale_and_validation_is_dead() -> None:
    (sink, action), _ = _sink([_client_error("ConditionalCheckFailedException")])
    assert sink.put(action).outcome == "stale"
    (sink, action), client = _sink([_client_error("ValidationException")])
    result = sink.put(action)
    assert result.outcome == "dead" and "rejected" in result.reason and client.calls == 1
