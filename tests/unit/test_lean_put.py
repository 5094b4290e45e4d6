"""The lean PutItem caller: its SigV4 signature is botocore's, its errors have botocore's shapes."""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, HTTPClientError

from bridge.lean_put import LeanPutItem
from bridge.sink import _cause

WHEN = datetime(2026, 11, 25, 9, 58, 7, tzinfo=UTC)
BODY = json.dumps({"TableName": "Payments", "Item": {"PaymentId": {"N": "1"}}}).encode()


@pytest.mark.parametrize("token", [None, "session-token"])
@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:58000", "https://dynamodb.eu-west-1.amazonaws.com"])
def test_signature_is_the_one_botocore_computes(
    token: str | None, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    lean = LeanPutItem(endpoint, "eu-west-1", credentials, pool_size=1)
    ours = lean.signed_headers(BODY, WHEN)

    request = AWSRequest(method="POST", url=endpoint + "/", data=BODY, headers={})
    for name in ("content-type", "x-amz-target"):
        request.headers[name] = ours[name]
    signer = SigV4Auth(credentials, "dynamodb", "eu-west-1")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    signer.add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")
    lean.close()


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


def _lean(url: str) -> LeanPutItem:
    return LeanPutItem(url, "us-east-1", Credentials("a", "b"), pool_size=1)


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
    assert _cause(failed.value) is None

    replies.append((400, b'{"__type":"x#ProvisionedThroughputExceededException","Message":"slow"}', None))
    with pytest.raises(ClientError) as throttled:
        put(TableName="t", Item={})
    assert _cause(throttled.value) == "throttle"

    replies.append((502, b"<html>bad gateway</html>", None))
    with pytest.raises(ClientError) as gateway:
        put(TableName="t", Item={})
    assert gateway.value.response["Error"]["Code"] == "InternalServerError"
    assert _cause(gateway.value) == "server"


def test_a_corrupted_response_is_a_retryable_network_error(
    server: tuple[str, list[Reply]],
) -> None:
    url, replies = server
    replies.append((200, b"{}", str(zlib.crc32(b"{}") ^ 1)))
    with pytest.raises(HTTPClientError) as corrupted:
        _lean(url)(TableName="t", Item={})
    assert "CRC32" in str(corrupted.value)
    assert _cause(corrupted.value) == "network"


def test_an_unreachable_endpoint_is_a_retryable_network_error() -> None:
    with pytest.raises(HTTPClientError) as down:
        _lean("http://127.0.0.1:9")(TableName="t", Item={})
    assert _cause(down.value) == "network"
