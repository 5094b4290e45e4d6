"""A lean DynamoDB caller for the hot paths: the JSON protocol, SigV4 and one pool.

botocore spends about 0.85 ms of CPU on every call (event hooks, parameter validation, user-agent
building, generic signing, header parsing), three times what a PutItem itself needs; on the
backfill and the bridge, where every row is one conditional PutItem, that overhead was the
bottleneck (bench/results/backfill.md). Its response parser walks the item shapes value by value,
which made a Scan page cost six times its orjson parse (bench/results/reconcile.md). This caller does
what one call needs and nothing else: JSON of the request (binary as base64, as the wire format
wants), a SigV4 signature (signing key cached per day), one POST through a urllib3 pool, the
response CRC32 check, orjson of the response. Responses stay in wire form: binary values (B, BS)
are base64 text, sets are lists. Errors
keep botocore's shapes so callers handle both alike: an API error raises ``ClientError`` (same
``Error.Code``/``HTTPStatusCode``), a network failure ``HTTPClientError``. Credentials come from
botocore's chain and are re-read on every call, so refreshing credentials (roles, SSO) keep
working. Retries are the caller's (the sink's tenacity).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import zlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
import urllib3
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, HTTPClientError

TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class LeanCall:
    """One DynamoDB operation (``operation="PutItem"``, ``"Scan"``...) called like boto3's client
    method, ``call(**request)``, for one endpoint and region."""

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        credentials: Credentials,
        *,
        operation: str,
        pool_size: int,
        connect_timeout: float = 5,
        read_timeout: float = 30,
    ) -> None:
        parts = urlsplit(endpoint_url)
        self.host = parts.netloc
        self.path = parts.path or "/"
        self.region = region
        self.operation = operation
        self.target = TARGET_PREFIX + operation
        self.credentials = credentials
        self.pool = urllib3.connection_from_url(
            endpoint_url,
            maxsize=pool_size,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(total=2, connect=2, read=0, status=0, redirect=0, other=0),
        )
        self._signing_key: tuple[str, str, bytes] = ("", "", b"")

    def __call__(self, **request: Any) -> dict[str, Any]:
        body = orjson.dumps(request, default=_wire)
        try:
            response = self.pool.urlopen(
                "POST", self.path, body=body, headers=self.signed_headers(body), preload_content=True
            )
        except urllib3.exceptions.HTTPError as exc:
            raise HTTPClientError(error=exc) from exc
        data: bytes = response.data
        crc = response.headers.get("x-amz-crc32")
        if crc is not None and int(crc) != zlib.crc32(data):
            raise HTTPClientError(error=f"{self.operation} response CRC32 mismatch ({crc}): a corrupted response")
        parsed = _json(data)
        if response.status >= 300:
            raise ClientError(_error_response(response.status, parsed), self.operation)
        return parsed

    def signed_headers(self, body: bytes, now: datetime | None = None) -> dict[str, str]:
        """The request headers with an AWS Signature Version 4 ``Authorization`` header."""
        creds = self.credentials.get_frozen_credentials()
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {"content-type": CONTENT_TYPE, "host": self.host, "x-amz-date": stamp, "x-amz-target": self.target}
        if creds.token:
            headers["x-amz-security-token"] = creds.token
        names = sorted(headers)
        signed = ";".join(names)
        canonical = "\n".join(
            [
                "POST",
                self.path,
                "",
                *(f"{name}:{headers[name]}" for name in names),
                "",
                signed,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{self.region}/dynamodb/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key(day, creds.secret_key), to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    def _key(self, day: str, secret: str) -> bytes:
        cached_day, cached_secret, key = self._signing_key
        if cached_day != day or cached_secret != secret:
            key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), day), self.region), "dynamodb"), "aws4_request")
            self._signing_key = (day, secret, key)
        return key

    def close(self) -> None:
        self.pool.close()


def _wire(value: Any) -> Any:
    """JSON for what ``json`` cannot encode: binary as base64 (B, BS), sets as lists (SS, NS, BS)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot be sent to DynamoDB")


def _json(data: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _error_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """botocore's error dict from a JSON-protocol error (``__type`` ends in ``#Code``)."""
    code = str(body.get("__type", "")).rpartition("#")[2] or ("InternalServerError" if status >= 500 else str(status))
    message = body.get("message") or body.get("Message") or ""
    return {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
