"""The lean DynamoDB caller against a scripted HTTP server on loopback: its errors have botocore's shapes,
network failures are retryable. (Sockets: not a unit test.)"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, HTTPClientError

from bridge.config import DynamoSettings
from bridge.dynamo import make_scan, retry_cause
from bridge.lean_call import LeanCall
from tests.conftest import LOCAL_KEYS

WHEN = datetime(2026, 11, 25, 9, 58, 7, tzinfo=UTC)
BODY = json.dumps({"TableName": "Payments", "Item": {"PaymentId": {"N": "1"}}}).encode()


Reply = tuple[int, bytes, str | None]


class _Server(ThreadingHTTPServer):
    replies: list[Reply]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        status, body, crc = self.server.replies.pop(0)
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        if crc is not None:
            self.send_header("x-amz-crc32", crc)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[Reply]]]:
    replies: list[Reply] = []
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.replies = replies
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", replies
    httpd.shutdown()


def _lean(url: str) -> LeanCall:
    return LeanCall(url, "us-east-1", Credentials("a", "b"), operation="PutItem", pool_size=1)


def test_errors_have_botocore_shapes(server: tuple[str, list[Reply]]) -> None:
    url, replies = server
    put = _lean(url)
    ok = b"{}"
    replies.append((200, ok, str(zlib.crc32(ok))))
    assert put(TableName="t", Item={}) == {}

    conditional = b'{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"no"}'
    replies.append((400, conditional, None))
    with pytest.raises(ClientError) as failed:
        put(TableName="t", Item={})
    assert failed.value.response["Error"] == {"Code": "ConditionalCheckFailedException", "Message": "no"}
    assert retry_cause(failed.value) is None

    replies.append((400, b'{"__type":"x#ProvisionedThroughputExceededException","Message":"slow"}', None))
    with pytest.raises(ClientError) as throttled:
        put(TableName="t", Item={})
    assert retry_cause(throttled.value) == "throttle"

    replies.append((502, b"<html>bad gateway</html>", None))
    with pytest.raises(ClientError) as gateway:
        put(TableName="t", Item={})
    assert gateway.value.response["Error"]["Code"] == "InternalServerError"
    assert retry_cause(gateway.value) == "server"


def test_a_corrupted_response_is_a_retryable_network_error(
    server: tuple[str, list[Reply]],
) -> None:
    url, replies = server
    replies.append((200, b"{}", str(zlib.crc32(b"{}") ^ 1)))
    with pytest.raises(HTTPClientError) as corrupted:
        _lean(url)(TableName="t", Item={})
    assert "CRC32" in str(corrupted.value)
    assert retry_cause(corrupted.value) == "network"


def test_an_unreachable_endpoint_is_a_retryable_network_error() -> None:
    with pytest.raises(HTTPClientError) as down:
        _lean("http://127.0.0.1:9")(TableName="t", Item={})
    assert retry_cause(down.value) == "network"


def test_the_scan_caller_retries_throttling_and_server_errors_then_returns_the_page(
    server: tuple[str, list[Reply]],
) -> None:
    url, replies = server
    page = b'{"Items":[{"Id":{"B":"AAE="}}],"Count":1}'
    replies += [
        (400, b'{"__type":"x#ThrottlingException","message":"slow down"}', None),
        (503, b"unavailable", None),
        (200, page, str(zlib.crc32(page))),
    ]
    scan_page = make_scan(DynamoSettings(**LOCAL_KEYS, endpoint_url=url), pool_size=1, attempts=3)
    assert scan_page(TableName="t") == {"Items": [{"Id": {"B": "AAE="}}], "Count": 1}  # wire form: base64 text
    assert replies == []


def test_the_scan_caller_gives_up_after_its_attempts_and_never_retries_a_client_error(
    server: tuple[str, list[Reply]],
) -> None:
    url, replies = server
    throttled = (400, b'{"__type":"x#ThrottlingException","message":"slow down"}', None)
    replies += [throttled, throttled]
    with pytest.raises(ClientError, match="ThrottlingException"):
        make_scan(DynamoSettings(**LOCAL_KEYS, endpoint_url=url), pool_size=1, attempts=2)(TableName="t")
    replies.append((400, b'{"__type":"x#ResourceNotFoundException","message":"no table"}', None))
    replies.append((200, b"{}", None))
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        make_scan(DynamoSettings(**LOCAL_KEYS, endpoint_url=url), pool_size=1, attempts=2)(TableName="t")
    assert len(replies) == 1  # not retried
