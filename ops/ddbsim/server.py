"""The service-like DynamoDB layer as an HTTP server in front of dynalite (``python -m ops.ddbsim.server``).

DynamoDB's JSON protocol on ``POST /`` (the ``X-Amz-Target`` header names the operation), answered by
:class:`ops.ddbsim.service.Service` after the profile's latency; answers carry the headers the service
sends (``x-amzn-RequestId``, ``x-amz-crc32``, and ``x-amzn-ErrorType`` on errors). A lost answer is a
connection closed without a response, after the call was applied. The admin API:

- ``GET /_ddbsim``: the profile and the statistics (units consumed, throttles by reason, faults);
- ``POST /_ddbsim/profile``: a partial profile as JSON, applied at once (400 with the reason if invalid);
- ``POST /_ddbsim/reset``: the default profile plus the JSON given, statistics and buckets anew.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import socket
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from ops.ddbsim.service import Answer, Profile, Service

log = logging.getLogger("ddbsim")
TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazonaws.dynamodb.v20120810/"


class UpstreamDown(Exception):
    """dynalite did not answer: the client sees a dropped connection, as from a dead endpoint."""


class Upstream:
    """Calls to dynalite over one keep-alive connection per thread."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout_s = timeout_s
        self.local = threading.local()

    def __call__(self, operation: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = json.dumps(request).encode()
        headers = {
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": TARGET_PREFIX + operation,
            # dynalite wants a signature's shape, not a valid one
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host;x-amz-date;x-amz-target, Signature=0",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        }
        for attempt in (1, 2):  # a kept-alive connection dynalite closed: reconnect once
            conn = self._connection()
            try:
                conn.request("POST", "/", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                return response.status, json.loads(data) if data else {}
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise UpstreamDown(f"{operation}: {exc}") from exc
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        return conn


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs use it
    server: DdbsimServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes: without this, Nagle's algorithm holds the body until
        # the client's delayed ACK of the headers, 40 ms on every keep-alive call
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/_ddbsim":
            service = self.server.service
            self._send_json(200, {"profile": service.profile.model_dump(), "stats": service.stats.as_json()})
        else:
            self._send_json(404, {"message": f"no such path {self.path}; try GET /_ddbsim"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/_ddbsim"):
            self._admin(body)
            return
        started = time.perf_counter()
        service = self.server.service
        target = self.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX)
        delay = service.latency_s()
        try:
            request = json.loads(body or b"{}")
            answer = service.handle(operation, request)
        except UpstreamDown as exc:
            log.warning("dynalite is not answering (%s): dropping the connection", exc)
            self.close_connection = True
            return
        except ValueError as exc:
            answer = Answer(400, {"__type": "com.amazon.coral.service#SerializationException", "message": str(exc)})
        time.sleep(max(0.0, delay - (time.perf_counter() - started)))
        if answer.lose:
            self.close_connection = True  # applied; the client never hears of it
            return
        self._send_json(answer.status, answer.body, aws=True)

    def _admin(self, body: bytes) -> None:
        service = self.server.service
        path = self.path.rstrip("/")
        if path not in ("/_ddbsim/profile", "/_ddbsim/reset"):
            self._send_json(404, {"message": f"no such path {self.path}; POST /_ddbsim/profile or /_ddbsim/reset"})
            return
        try:
            changes = json.loads(body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError(f"a profile is a JSON object, not {type(changes).__name__}")
            profile = service.configure(changes) if path.endswith("/profile") else service.reset(changes)
        except (ValueError, ValidationError) as exc:
            self._send_json(400, {"message": str(exc)})
            return
        log.info("%s: %s", path, profile.model_dump(exclude_defaults=True))
        self._send_json(200, profile.model_dump())

    def _send_json(self, status: int, payload: dict[str, Any], *, aws: bool = False) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE if aws else "application/json")
        self.send_header("Content-Length", str(len(data)))
        if aws:
            self.send_header("x-amzn-RequestId", uuid.uuid4().hex.upper())
            self.send_header("x-amz-crc32", str(zlib.crc32(data)))
            if status >= 300:
                code = str(payload.get("__type", "")).rpartition("#")[2]
                self.send_header("x-amzn-ErrorType", code + ERROR_TYPE_SUFFIX)
        self.end_headers()
        self.wfile.write(data)


class DdbsimServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], service: Service) -> None:
        super().__init__(address, Handler)
        self.service = service


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ddbsim", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="dynalite's URL, e.g. http://127.0.0.1:58000")
    parser.add_argument("--profile", default="{}", help="the starting profile as JSON (see ops/ddbsim/service.py)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        profile = Profile.model_validate_json(args.profile)
    except ValidationError as exc:
        print(f"error: --profile: {exc}", file=sys.stderr)
        return 2
    server = DdbsimServer((args.host, args.port), Service(Upstream(args.upstream), profile))
    log.info("ddbsim on %s:%d in front of %s", args.host, args.port, args.upstream)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
