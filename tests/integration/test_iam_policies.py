"""Each command runs with its own IAM policy (ops/iam/<command>.json): every DynamoDB call a real run
of the command makes is one its policy allows, on the resource it names. The calls are seen by a
recording proxy in front of dynalite (operation from ``X-Amz-Target``, table and index from the body,
the command from the access key it signs with: each command runs with its own, as it would with its own
role), for init, stream, backfill (and its status), validate, reconcile and tombstones purge."""

from __future__ import annotations

import fnmatch
import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from pydantic import SecretStr

from bridge.config import Settings
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from tests.conftest import ROOT
from tests.integration.pipeline import BridgeProcess, Cli, assert_converged

Call = tuple[str, str]  # (dynamodb:Action, resource ARN as the policies write it)


class RecordingProxy:
    """Forwards DynamoDB calls to ``upstream`` and records, per access key, the action and resource."""

    def __init__(self, upstream: str, rename: dict[str, str]) -> None:
        self.upstream = urlsplit(upstream)
        self.rename = rename  # the test's table names -> the names the policies use
        self.calls: dict[str, set[Call]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _record(self, authorization: str, target: str, body: dict[str, Any]) -> None:
        key = authorization.split("Credential=", 1)[-1].split("/", 1)[0]
        action = "dynamodb:" + target.rsplit(".", 1)[-1]
        tables = list(body.get("RequestItems", {})) or [body.get("TableName", "*")]
        for table in tables:
            arn = f"arn:aws:dynamodb:REGION:ACCOUNT_ID:table/{self.rename.get(table, table)}"
            if "IndexName" in body:
                arn += f"/index/{body['IndexName']}"
            self.calls.setdefault(key, set()).add((action, arn))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signed, target = self.headers.get("Authorization", ""), self.headers.get("X-Amz-Target", "")
                proxy._record(signed, target, json.loads(body or b"{}"))
                upstream = http.client.HTTPConnection(proxy.upstream.hostname or "", proxy.upstream.port, timeout=60)
                try:
                    upstream.request("POST", self.path, body, dict(self.headers.items()))
                    answer = upstream.getresponse()
                    payload = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def __enter__(self) -> RecordingProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()


def _allowed(policy: dict[str, Any], call: Call) -> bool:
    action, arn = call
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if action in actions and any(fnmatch.fnmatchcase(arn, r) for r in resources):
            return True
    return False


@pytest.fixture
def proxy(isolated: Settings) -> Iterator[tuple[RecordingProxy, Settings]]:
    upstream = isolated.dynamodb.endpoint_url
    assert upstream is not None
    rename = {isolated.mapping().target: "Payments", isolated.dynamodb.control_table: "ddbridge_control"}
    with RecordingProxy(upstream, rename) as recording:
        dynamodb = isolated.dynamodb.model_copy(update={"endpoint_url": recording.url})
        stream = isolated.stream.model_copy(update={"metrics_port": 0})
        migration = isolated.migration.model_copy(update={"tombstone_grace_days": 1e-5})  # purge sees them
        yield recording, isolated.model_copy(update={"dynamodb": dynamodb, "stream": stream, "migration": migration})


def _as(settings: Settings, command: str) -> Settings:
    """``settings`` signing with the access key ``command`` (the proxy tells the commands apart by it)."""
    dynamodb = settings.dynamodb.model_copy(update={"access_key_id": SecretStr(command)})
    return settings.model_copy(update={"dynamodb": dynamodb})


def test_every_dynamodb_call_of_each_command_is_allowed_by_its_policy(
    proxy: tuple[RecordingProxy, Settings], tmp_path: Path
) -> None:
    recording, settings = proxy
    dsn = settings.source.dsn.get_secret_value()
    load_payments(dsn, rows=300)

    def run(command: str, *args: str) -> None:
        workdir = tmp_path / command
        workdir.mkdir(exist_ok=True)
        done = Cli(_as(settings, command), workdir).run(*args)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"

    run("init", "init")
    wait_until_streaming(settings)
    bridge = BridgeProcess(_as(settings, "stream"), tmp_path).start()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("UPDATE payments SET payment_status = 'Reversed' WHERE payment_id <= 20")
            conn.execute("DELETE FROM payments WHERE payment_id BETWEEN 21 AND 25")  # tombstones
        run("backfill", "backfill", "--migration-id", "iam")
        run("backfill", "status", "--migration-id", "iam")
        assert_converged(settings)  # the test's own reads, with the example's key
    finally:
        assert bridge.stop() == 0, bridge.output()[-2000:]
    run("reconcile", "validate")
    run("reconcile", "reconcile")
    run("maintenance", "tombstones", "purge")

    own_key = settings.dynamodb.access_key_id
    assert own_key is not None
    recording.calls.pop(own_key.get_secret_value())
    assert set(recording.calls) == {"init", "stream", "backfill", "reconcile", "maintenance"}, recording.calls
    refused = {}
    for command, calls in recording.calls.items():
        policy = json.loads((ROOT / "ops" / "iam" / f"{command}.json").read_text())
        missing = sorted(call for call in calls if not _allowed(policy, call))
        if missing:
            refused[command] = missing
    assert not refused, f"calls the command's policy does not allow: {refused}"
