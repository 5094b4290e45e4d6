"""Streaming: latency from PostgreSQL commit to the item in DynamoDB, the bridge's ceiling, CPU per
event, and one versus two ``ddbridge stream`` processes, through the real pipeline.

1. **One conditional PutItem round trip** (the lean caller, sequential): the yardstick of the
   bridge's own latency.
2. **Ceiling (drain)**: a backlog of change events (inserts, then updates of the same rows) is
   captured into Kafka first; then ``ddbridge stream`` processes, each in its own OS process and
   consumer group starting at the earliest offset and writing into a fresh table, drain it. The rate
   and CPU (``/proc/<pid>/stat``) are counted from the moment every partition has its first commit
   (start-up and group join excluded) to the moment the group's commits reach the end of the log.
   Run with one process, then two.
3. **Latency**: single-row transactions at a steady rate (half the one-process ceiling) for
   ``--seconds``, with the bridge in this process (its writes timed at the PutItem's return). The
   topic is switched to ``LogAppendTime`` first, so a record's timestamp is the moment the broker
   appended it. Per event: commit (client clock after COMMIT) -> Kafka (appended: Debezium's and
   Connect's part) -> DynamoDB (the conditional PutItem returned: ddbridge's part, consumer fetch
   included), the latter split at the moment the bridge started the event's batch.

Machines here are noisy: read the ratios, not the absolute figures.

    python -m bench.stream_bench --seconds 60 --backlog 20000   # writes bench/results/stream.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import OFFSET_END, TIMESTAMP_LOG_APPEND_TIME, Consumer, Message, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType  # type: ignore[attr-defined]

from bench.backfill_bench import RESULTS
from bench.sandbox import sandbox
from bridge.config import Settings, write_config
from bridge.dlq import Record
from bridge.dynamo import make_put_item
from bridge.kafka_config import admin_client, client_config
from bridge.mapping import RowMapper
from bridge.rules import WriteRules
from bridge.sink import DynamoSink
from bridge.topics import topic_for
from connectors.debezium import wait_until_streaming
from ops.initialize import initialize
from stream.loop import BatchResult, Bridge

INSERT = (
    "INSERT INTO payments (customer_id, loan_id, payment_number, payment_date, payment_amount, principal_amount, "
    "interest_amount, payment_method, payment_status) "
    "SELECT 7, 9000000 + g, 1, DATE '2024-01-01' + (g %% 28)::int, 100.00, 90.00, 10.00, 'ACH', 'Pending' "
    "FROM generate_series(%s::bigint, %s::bigint) g"
)
SETTLE = "UPDATE payments SET payment_status = 'Completed', updated_date = now() WHERE loan_id BETWEEN %s AND %s"
INSERT_ONE = (
    "INSERT INTO payments (customer_id, loan_id, payment_number, payment_date, payment_amount, principal_amount, "
    "interest_amount, payment_method, payment_status) VALUES (8, %s, 1, DATE '2024-02-01', 50.00, 45.00, 5.00, "
    "'CARD', 'Pending') RETURNING payment_id"
)


@dataclass
class Drain:
    processes: int
    events: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_ms_per_event(self) -> float:
        return 1000 * self.cpu_seconds / self.events


def quantiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of ``samples`` (seconds) in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": 1000 * cuts[49], "p95": 1000 * cuts[94], "p99": 1000 * cuts[98], "max": 1000 * max(samples)}


# -- 1. one PutItem --------------------------------------------------------------------------------


def _payment_put(settings: Settings) -> Callable[[int], float]:
    """A function that writes payment ``n`` (a fresh item) with the bridge's conditional PutItem
    through the lean caller and returns the round trip in seconds."""
    rules = WriteRules(RowMapper(settings.mapping()), settings.bookkeeping, 0)
    put = make_put_item(settings.dynamodb, pool_size=1)
    table = settings.tables[0].target

    def one(n: int) -> float:
        row: dict[str, Any] = {
            "payment_id": {"N": str(n)},
            "customer_id": {"N": "1"},
            "loan_id": {"N": str(n)},
            "payment_number": {"N": "1"},
            "payment_date": {"S": "2024-03-01"},
            "payment_amount": {"N": "10.00"},
            "principal_amount": {"N": "9.00"},
            "interest_amount": {"N": "1.00"},
            "payment_method": {"S": "ACH"},
            "payment_status": {"S": "Pending"},
            "transaction_reference": None,
            "processed_date": None,
            "created_date": {"S": "2024-03-01T00:00:00Z"},
            "updated_date": {"S": "2024-03-01T00:00:00Z"},
        }
        action = rules.cdc_put(row, 1)
        started = time.perf_counter()
        put(TableName=table, Item=action.item, **rules.condition(action))
        return time.perf_counter() - started

    return one


def putitem_round_trip(settings: Settings, n: int = 500) -> dict[str, float]:
    """Back-to-back conditional PutItems of fresh items on a quiet stack: the best case."""
    one = _payment_put(settings)
    return quantiles([one(10_000_000 + i) for i in range(n)])


class FetchProbe:
    """A plain consumer of the change topic (its own group, no processing) in another thread while
    the bridge runs: how long Kafka alone takes from append to a consumer's poll (the fetch floor)."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = Consumer(
            client_config(settings.kafka, "bench", {"group.id": "bench-fetch-probe", "fetch.wait.max.ms": 100})
        )
        topic = topic_for(settings, settings.tables[0].source)
        partitions = range(settings.connect.topic_partitions)
        self.consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
        self.samples: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.is_set():
            msg = self.consumer.poll(0.2)
            if msg is not None and msg.error() is None and msg.value() is not None:
                self.samples.append(time.time() - msg.timestamp()[1] / 1000)

    def __enter__(self) -> FetchProbe:
        self.thread.start()
        time.sleep(1)  # positions resolved
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.consumer.close()


class PutProbe:
    """A conditional PutItem every ``interval`` seconds into the bridge's own table, from another
    thread, while the bridge runs: the round trip under the same load as the bridge's writes."""

    def __init__(self, settings: Settings, first_id: int, interval: float = 0.02) -> None:
        self.one = _payment_put(settings)
        self.next_id, self.interval = first_id, interval
        self.samples: list[float] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.samples.append(self.one(self.next_id))
            self.next_id += 1

    def __enter__(self) -> PutProbe:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(10)


# -- 2. the ceiling ----------------------------------------------------------------------------------


def end_offsets(settings: Settings, partitions: int) -> list[TopicPartition]:
    consumer = Consumer(client_config(settings.kafka, "bench", {"group.id": "bench-watermarks"}))
    topic = topic_for(settings, settings.tables[0].source)
    try:
        return [
            TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for p in range(partitions)
        ]
    finally:
        consumer.close()


def make_backlog(settings: Settings, events: int, partitions: int) -> int:
    """``events`` changes (half inserts, half updates of them) captured into Kafka; returns the log's total size."""
    half = events // 2
    with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
        for first in range(0, half, 1000):
            last = min(half, first + 1000) - 1
            conn.execute(INSERT, (first, last))
        for first in range(0, half, 1000):
            conn.execute(SETTLE, (9_000_000 + first, 9_000_000 + min(half, first + 1000) - 1))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        total = sum(tp.offset for tp in end_offsets(settings, partitions))
        if total >= 2 * half:
            return total
        time.sleep(0.5)
    raise RuntimeError(f"Debezium captured only {total} of {2 * half} events in 5 minutes")


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def drain(settings: Settings, tables: list[str], processes: int, partitions: int, workdir: Path) -> Drain:
    """``processes`` bridges in one new consumer group drain the whole topic into a fresh table."""
    name = f"{settings.tables[0].target}_drain{processes}"
    mapping = settings.tables[0].model_copy(update={"target": name})
    group = f"{settings.kafka.consumer_group}-drain{processes}"
    run = settings.model_copy(
        update={
            "tables": [mapping],
            "kafka": settings.kafka.model_copy(update={"consumer_group": group}),
            "stream": settings.stream.model_copy(update={"start_from": "earliest"}),
        }
    )
    initialize(run, source=False, connector=False)
    tables.append(name)
    ends = end_offsets(run, partitions)
    total = sum(tp.offset for tp in ends)
    config = write_config(run, workdir / f"drain{processes}.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DDBRIDGE_")}
    logs = [(workdir / f"drain{processes}-{i}.log").open("wb") for i in range(processes)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "ddbridge", "--config", str(config), "stream"], stdout=log, stderr=log, env=env
        )
        for log in logs
    ]
    watcher = Consumer(client_config(run.kafka, "bench", {"group.id": group}))
    try:
        start: tuple[float, float, int] | None = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for proc in procs:
                if proc.poll() is not None:
                    tail = (workdir / f"drain{processes}-{procs.index(proc)}.log").read_text()[-3000:]
                    raise RuntimeError(f"a bridge exited with {proc.returncode}:\n{tail}")
            committed = watcher.committed([TopicPartition(tp.topic, tp.partition) for tp in ends], timeout=10)
            done = sum(max(0, tp.offset) for tp in committed)
            now = time.perf_counter()
            if start is None and all(tp.offset > 0 for tp in committed):
                start = (now, _cpu_seconds([p.pid for p in procs]), done)
            if done >= total:
                if start is None:
                    raise RuntimeError("the backlog drained before every partition was seen committing: make it larger")
                cpu = _cpu_seconds([p.pid for p in procs])
                return Drain(processes, done - start[2], now - start[0], cpu - start[1])
            time.sleep(0.02)
        raise RuntimeError(f"the bridges did not drain {total} events in 10 minutes; logs in {workdir}")
    finally:
        watcher.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        for log in logs:
            log.close()


# -- 3. latency ---------------------------------------------------------------------------------------


class TimedBridge:
    """The bridge in this process, with each change's Kafka timestamp and PutItem return time recorded."""

    def __init__(self, settings: Settings) -> None:
        self.bridge = Bridge.for_settings(settings)
        self.kafka_ms: dict[int, int] = {}
        self.batch_started: dict[int, float] = {}
        self.written: dict[int, float] = {}
        self.timestamp_types: set[int] = set()
        apply_batch = self.bridge.apply_batch

        def timed_batch(messages: Sequence[Record]) -> BatchResult:
            now = time.time()
            for msg in messages:
                assert isinstance(msg, Message)  # a real consumer's record, with its timestamp
                key = msg.key()
                if key is not None:
                    payment_id = int(json.loads(key)["payload"]["payment_id"])
                    kind, self.kafka_ms[payment_id] = msg.timestamp()
                    self.timestamp_types.add(kind)
                    self.batch_started[payment_id] = now
            return apply_batch(messages)

        self.bridge.apply_batch = timed_batch  # type: ignore[method-assign]
        for route in self.bridge.routes.values():
            assert isinstance(route.sink, DynamoSink)
            route.sink.put_item = self._timed(route.sink.put_item)
        self.thread = threading.Thread(target=self.bridge.run, daemon=True)

    def _timed(self, put_item: Callable[..., Any]) -> Callable[..., Any]:
        def timed(**request: Any) -> Any:
            result = put_item(**request)
            self.written[int(request["Item"]["PaymentId"]["N"])] = time.time()
            return result

        return timed

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.bridge.assignment and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)  # positions resolved, first fetches done

    def stop(self) -> None:
        self.bridge.stop()
        self.thread.join(60)


def log_append_time(settings: Settings) -> None:
    """Stamp the change topic's records with the broker's append time from now on."""
    admin = admin_client(settings.kafka)
    topic = topic_for(settings, settings.tables[0].source)
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def latency(settings: Settings, tables: list[str], rate: float, seconds: float, run_index: int) -> dict[str, Any]:
    """Steady single-row inserts at ``rate``/s for ``seconds``; per-event latency split in two, and
    PutItem round trips probed meanwhile."""
    name = f"{settings.tables[0].target}_latency{run_index}"
    mapping = settings.tables[0].model_copy(update={"target": name})
    run = settings.model_copy(
        update={
            "tables": [mapping],
            "kafka": settings.kafka.model_copy(
                update={"consumer_group": f"{settings.kafka.consumer_group}-latency{run_index}"}
            ),
            "stream": settings.stream.model_copy(update={"start_from": "latest"}),
        }
    )
    initialize(run, source=False, connector=False)
    tables.append(name)
    log_append_time(run)
    bridge = TimedBridge(run)
    bridge.start()
    committed: dict[int, float] = {}
    first_loan = 30_000_000 + run_index * 1_000_000
    try:
        with (
            psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn,
            PutProbe(run, 40_000_000 + run_index * 1_000_000) as probe,
            FetchProbe(run) as fetch_probe,
        ):
            count = int(rate * seconds)
            began = time.perf_counter()
            for i in range(count):
                pause = began + i / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                row = conn.execute(INSERT_ONE, (first_loan + i,)).fetchone()
                committed[int(row[0])] = time.time()  # type: ignore[index]
            achieved = count / (time.perf_counter() - began)
            deadline = time.monotonic() + 120
            while len(committed.keys() - bridge.written.keys()) and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        bridge.stop()
    missing = committed.keys() - (bridge.written.keys() & bridge.kafka_ms.keys())
    if missing:
        raise RuntimeError(f"{len(missing)} changes never reached DynamoDB")
    if bridge.timestamp_types != {TIMESTAMP_LOG_APPEND_TIME}:
        raise RuntimeError(f"the topic's records are not LogAppendTime-stamped: {bridge.timestamp_types}")
    keys = sorted(committed)
    return {
        "rate": rate,
        "achieved_rate": achieved,
        "events": len(keys),
        "commit_to_kafka": quantiles([bridge.kafka_ms[k] / 1000 - committed[k] for k in keys]),
        "kafka_to_dynamodb": quantiles([bridge.written[k] - bridge.kafka_ms[k] / 1000 for k in keys]),
        "kafka_to_batch": quantiles([bridge.batch_started[k] - bridge.kafka_ms[k] / 1000 for k in keys]),
        "batch_to_dynamodb": quantiles([bridge.written[k] - bridge.batch_started[k] for k in keys]),
        "putitem_under_load": quantiles(probe.samples),
        "kafka_fetch_alone": quantiles(fetch_probe.samples),
        "end_to_end": quantiles([bridge.written[k] - committed[k] for k in keys]),
    }


# -- the report ----------------------------------------------------------------------------------------


LATENCY_ROWS = (
    ("commit -> Kafka (Debezium, Connect)", "commit_to_kafka"),
    ("Kafka -> DynamoDB (ddbridge)", "kafka_to_dynamodb"),
    ("- appended -> batch started (fetch, queue)", "kafka_to_batch"),
    ("- batch started -> PutItem returned", "batch_to_dynamodb"),
    ("commit -> DynamoDB (end to end)", "end_to_end"),
    ("one conditional PutItem, probed meanwhile", "putitem_under_load"),
    ("Kafka alone: appended -> a plain consumer's poll, probed meanwhile", "kafka_fetch_alone"),
)


def _latency_table(lat: dict[str, Any], put: dict[str, float]) -> list[str]:
    lines = [
        f"{lat['events']:,} single-row inserts at {lat['rate']:.0f}/s (achieved {lat['achieved_rate']:.0f}/s).",
        "",
        "| segment | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in LATENCY_ROWS:
        q = lat[key]
        lines.append(f"| {label} | {q['p50']:.1f} | {q['p95']:.1f} | {q['p99']:.1f} | {q['max']:.1f} |")
    p99 = lat["kafka_to_dynamodb"]["p99"]
    loaded = lat["putitem_under_load"]["p50"]
    floor = lat["kafka_fetch_alone"]["p99"] + lat["putitem_under_load"]["p99"]
    return [
        *lines,
        "",
        f"- the floor any Kafka -> DynamoDB writer has here, Kafka alone p99 + one PutItem p99: {floor:.1f} ms; "
        f"ddbridge's p99 is **{p99 / floor:.1f}x** that",
        f"- Kafka -> DynamoDB p99 / one PutItem round trip under the same load (p50 {loaded:.1f} ms): "
        f"**{p99 / loaded:.1f}x**; / back-to-back on a quiet stack (p50 {put['p50']:.1f} ms): "
        f"**{p99 / put['p50']:.1f}x** (target <= 3x)",
        "",
    ]


def report(args: argparse.Namespace, put: dict[str, float], drains: list[Drain], lats: list[dict[str, Any]]) -> str:
    one, two = drains[0], drains[-1]
    lines = [
        "# Streaming benchmark",
        "",
        f"Command: `python -m bench.stream_bench --seconds {args.seconds:g} --backlog {args.backlog} "
        f"--light-rate {args.light_rate:g}`; {args.partitions} partitions, the payments example, local stack "
        "(dynalite). Kafka timestamps are the broker's append times.",
        "",
        f"One conditional PutItem, back to back on a quiet stack: p50 {put['p50']:.1f} ms, p99 {put['p99']:.1f} ms.",
        "",
        "## Latency at half the one-process ceiling",
        "",
        *_latency_table(lats[0], put),
    ]
    if len(lats) > 1:
        lines += ["## Latency at a light rate", "", *_latency_table(lats[1], put)]
    lines += [
        "## Ceiling and scale (draining a backlog)",
        "",
        f"{args.backlog:,} change events (half inserts, half updates), already in Kafka, drained into an empty table.",
        "",
        "| stream processes | events/s | CPU ms / event | vs one process |",
        "|---|---:|---:|---:|",
    ]
    for d in drains:
        lines.append(f"| {d.processes} | {d.rate:,.0f} | {d.cpu_ms_per_event:.3f} | {d.rate / one.rate:.2f} |")
    lines += [
        "",
        f"- maximum sustained rate of one process: **{one.rate:,.0f} events/s**, "
        f"**{one.cpu_ms_per_event:.2f} ms CPU per event**",
        f"- two processes / one: **{two.rate / one.rate:.2f}x**",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="stream processes per drain")
    parser.add_argument("--light-rate", type=float, default=50, help="a second latency run at this rate (0: none)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ddbridge-stream-bench-"))  # bridge logs; kept if the run fails
    with sandbox(1000, partitions=args.partitions) as (settings, tables):
        initialize(settings)
        wait_until_streaming(settings, 120)
        put = putitem_round_trip(settings)
        make_backlog(settings, args.backlog, args.partitions)
        drains = [drain(settings, tables, n, args.partitions, workdir) for n in args.processes]
        lats = [latency(settings, tables, drains[0].rate / 2, args.seconds, 0)]
        if args.light_rate > 0:
            lats.append(latency(settings, tables, args.light_rate, args.seconds, 1))
    shutil.rmtree(workdir)
    text = report(args, put, drains, lats)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stream.md").write_text(text)
    (RESULTS / "stream.json").write_text(
        json.dumps({"putitem": put, "drains": [asdict(d) for d in drains], "latency": lats}, indent=1)
    )
    print(text)


if __name__ == "__main__":
    main()
