"""Helpers for end-to-end tests through the real pipeline: a bridge in its own OS process (so it
can be killed with SIGKILL), the source's expected items and DynamoDB's live items."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Consumer
from psycopg import sql

from bridge import pgrows
from bridge.codec import AttributeValue
from bridge.config import BookkeepingAttributes, Settings, write_config
from bridge.dynamo import make_client
from bridge.mapping import RowMapper
from bridge.postgres import connect
from examples.payments import traffic
from tests.conftest import ROOT

Items = dict[tuple[tuple[str, str], ...], dict[str, AttributeValue]]


class Cli:
    """``ddbridge`` commands against one test's settings, as child processes."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.config = write_config(settings, workdir / "ddbridge.json")
        self.workdir = workdir

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "ddbridge", "--config", str(self.config), *args]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, cwd=self.workdir, timeout=timeout, check=False
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.workdir
        )


class BridgeProcess:
    """``ddbridge stream`` as a child process."""

    def __init__(self, settings: Settings, workdir: Path, *extra: str) -> None:
        self.config = write_config(settings, workdir / f"bridge-{time.monotonic_ns()}.json")
        self.log = workdir / "bridge.log"
        self.argv = [sys.executable, "-m", "ddbridge", "--config", str(self.config), "stream", *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BridgeProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DDBRIDGE_")}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM and wait: the bridge drains, commits and exits."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout_s)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def source_items(settings: Settings) -> Items:
    """What DynamoDB must hold: every source row through the shared codec and mapping."""
    mapping = settings.mapping()
    mapper = RowMapper(mapping)
    with connect(settings) as conn:
        pgrows.configure(conn)
        types = pgrows.column_types(conn, mapping.schema_name, mapping.table_name, mapping.exclude_columns)
        columns = list(types)
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(mapping.schema_name, mapping.table_name)
        )
        cur = pgrows.text_cursor(conn).execute(query)
        items: Items = {}
        for record in cur:
            key, item = mapper.item(pgrows.to_row(columns, [types[c] for c in columns], record))
            items[tuple((name, text) for name, _, text in key.parts)] = item
    return items


def dynamo_items(settings: Settings, *, live_only: bool = True) -> Items:
    """DynamoDB's items keyed like ``source_items``: tombstones dropped, bookkeeping stripped."""
    mapping = settings.mapping()
    book: BookkeepingAttributes = settings.bookkeeping
    client = make_client(settings.dynamodb)
    keys = [mapping.partition_key] + ([mapping.sort_key] if mapping.sort_key else [])
    items: Items = {}
    kwargs: dict[str, Any] = {"TableName": mapping.target, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        for item in page["Items"]:
            if live_only and book.deleted in item:
                continue
            key = tuple((k.name, str(next(iter(item[k.name].values())))) for k in keys)
            items[key] = {
                n: dict(v)
                for n, v in item.items()
                if not live_only or n not in (book.source, book.lsn, book.ttl, book.deleted)
            }
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def consume_values(
    settings: Settings, topic: str, want: int, want_nulls: int = 0, timeout_s: float = 90.0
) -> list[bytes | None]:
    """Record values of a topic from the start (None for Kafka tombstones), until ``want`` non-null
    values and ``want_nulls`` null ones arrived."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.kafka.consumer_group}-reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes | None] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and (
            len(values) - values.count(None) < want or values.count(None) < want_nulls
        ):
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                values.append(msg.value())
    finally:
        consumer.close()
    return values


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def assert_converged(settings: Settings, timeout_s: float = 90) -> int:
    """Wait until DynamoDB (tombstones ignored) equals PostgreSQL exactly; returns the row count."""
    last: dict[str, Any] = {}

    def same() -> bool:
        src, dst = source_items(settings), dynamo_items(settings)
        last.update(src=src, dst=dst)
        return src == dst

    try:
        wait_until(same, timeout_s, "DynamoDB to equal PostgreSQL", interval_s=1.0)
    except AssertionError:
        src, dst = last["src"], last["dst"]
        missing = [k for k in src if k not in dst][:5]
        extra = [k for k in dst if k not in src][:5]
        different = [(k, src[k], dst[k]) for k in src if k in dst and src[k] != dst[k]][:3]
        raise AssertionError(
            f"not converged: {len(src)} source rows, {len(dst)} live items; missing {missing}; extra {extra}; "
            f"different {different}"
        ) from None
    return len(last["src"])


def dead_letters(settings: Settings, want: int, timeout_s: float = 60.0) -> list[dict[str, bytes]]:
    """The headers of the first ``want`` records of the dead-letter topic (each has the error class and
    message, and the source topic, partition and offset)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"dlq-reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )
    consumer.subscribe([settings.kafka.dead_letter_topic])
    found: list[dict[str, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(found) < want and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                headers = cast(list[tuple[str, bytes | None]], msg.headers() or [])
                found.append({k: v or b"" for k, v in headers})
    finally:
        consumer.close()
    return found


def live_traffic(settings: Settings, stop: threading.Event, *, rate: float, seed: int) -> threading.Thread:
    """The application writing while a test runs (the example's traffic: inserts, settlements,
    failures, refunds, amount and date corrections that move items, deletes) until ``stop``; a thread
    for the caller to start."""
    thread = threading.Thread(
        target=traffic.run,
        args=(settings.source.dsn.get_secret_value(), stop),
        kwargs={"rate": rate, "seed": seed},
        daemon=True,
    )
    return thread
