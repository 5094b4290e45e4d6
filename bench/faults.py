"""The fault suite: a migration under live traffic through each fault, with figures.

Each scenario is a fresh sandbox of the payments example (``--rows`` of history) migrated the way a
team does it: ``ddbridge stream`` running, the application writing (``--rate`` changes a second), the
history copied by ``ddbridge backfill``; DynamoDB is reached through ddbsim (the service's behaviour)
behind Toxiproxy, Kafka through its proxied listener. After ``--warmup`` seconds the fault starts, lasts
its duration, and is healed; then the writer stops, the bridge drains, and the migration is judged:

- **events**: change events Debezium published (the topics' end offsets);
- **max lag**: the most events the consumer group was behind (sampled every 0.5 s);
- **recovery**: seconds from the fault's end until the lag was back under 2x its pre-fault p95
  (or 50 events);
- **lost, stale, resurrected**: ``ddbridge reconcile``'s missing, different and extra items, beside an
  independent count (PostgreSQL's ``count(*)``, DynamoDB's live items scanned on dynalite directly).

Kill -9 scenarios kill the process in the middle of the fault and start it again (the backfill with
``ddbridge resume``). Writes ``bench/results/faults.md`` and ``faults.json``::

    python -m bench.faults                       # every scenario (about 2 minutes each)
    python -m bench.faults --only dynamodb-outage,kafka-outage
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition

from bench.backfill_bench import RESULTS
from bench.sandbox import sandbox
from bridge.config import Settings, load_settings, write_config
from bridge.dynamo import make_client
from bridge.topics import topic_for
from connectors.debezium import wait_until_streaming
from examples.payments import traffic
from ops.ddbsim.admin import DdbsimAdmin
from ops.initialize import initialize
from ops.stack import LocalStack
from ops.toxiproxy import Toxiproxy


@dataclass
class Row:
    scenario: str
    fault: str
    seconds: float
    events: int = 0
    max_lag: int = 0
    recovery_s: float | None = None
    lost: int = -1
    stale: int = -1
    resurrected: int = -1
    pg_rows: int = 0
    dynamo_live: int = 0
    verdict: str = ""
    notes: list[str] = field(default_factory=list)


class Migration:
    """One sandboxed migration: the bridge and the backfill as child processes, the writer as a thread."""

    def __init__(self, settings: Settings, stack: LocalStack, workdir: Path) -> None:
        p = stack.ports
        self.direct = settings
        self.settings = settings.model_copy(
            update={
                "kafka": settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{p.toxiproxy_kafka}"}),
                "dynamodb": settings.dynamodb.model_copy(
                    update={"endpoint_url": f"http://127.0.0.1:{p.toxiproxy_dynamodb}"}
                ),
            }
        )
        self.dynalite = settings.model_copy(
            update={"dynamodb": settings.dynamodb.model_copy(update={"endpoint_url": f"http://127.0.0.1:{p.dynalite}"})}
        )
        self.workdir = workdir
        self.config = write_config(self.settings, workdir / "ddbridge.json")
        self.bridge: subprocess.Popen[bytes] | None = None
        self.backfill: subprocess.Popen[bytes] | None = None
        self.stop_writing = threading.Event()
        self.writer: threading.Thread | None = None
        self.writer_restarts = 0

    def cli(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        out = (self.workdir / log).open("ab")
        argv = [sys.executable, "-m", "ddbridge", "--config", str(self.config), *args]
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)

    def start(self, rate: float) -> None:
        initialize(self.settings)
        wait_until_streaming(self.settings)
        self.bridge = self.cli("stream", log="bridge.log")
        self.writer = threading.Thread(target=self._write, args=(rate,), daemon=True)
        self.writer.start()
        self.backfill = self.cli("backfill", "--migration-id", "faults", log="backfill.log")

    def _write(self, rate: float) -> None:
        """The application: reconnects when PostgreSQL restarts, as an application's pool does."""
        seed = 7
        while not self.stop_writing.is_set():
            try:
                traffic.run(self.settings.source.dsn.get_secret_value(), self.stop_writing, rate=rate, seed=seed)
            except psycopg.Error:
                self.writer_restarts += 1
                seed += 1
                self.stop_writing.wait(1.0)

    def kill9(self, which: str) -> None:
        proc = self.bridge if which == "bridge" else self.backfill
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if which == "bridge":
            self.bridge = self.cli("stream", log="bridge.log")
        else:
            self.backfill = self.cli("resume", "--migration-id", "faults", log="backfill.log")

    def finish_backfill(self, timeout_s: float = 900) -> int:
        """Wait for the copy; a copy stopped by a fault is resumed (what its message tells the user)."""
        deadline = time.monotonic() + timeout_s
        resumes = 0
        while time.monotonic() < deadline:
            assert self.backfill is not None
            code = self.backfill.wait(timeout=deadline - time.monotonic())
            if code == 0:
                return resumes
            resumes += 1
            time.sleep(2)
            self.backfill = self.cli("resume", "--migration-id", "faults", log="backfill.log")
        raise TimeoutError("the backfill did not complete")

    def stop(self) -> None:
        self.stop_writing.set()
        if self.writer is not None:
            self.writer.join(30)

    def close(self) -> None:
        self.stop()
        for proc in (self.bridge, self.backfill):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()


class LagProbe:
    """The consumer group's lag in events, every 0.5 s (committed offsets read without joining it)."""

    def __init__(self, settings: Settings) -> None:
        self.topic = topic_for(settings, settings.tables[0].source)
        self.partitions = settings.connect.topic_partitions
        self.consumer = Consumer(
            {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": settings.kafka.consumer_group}
        )
        self.samples: list[tuple[float, int]] = []
        self.ends = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _lag(self) -> int:
        parts = [TopicPartition(self.topic, i) for i in range(self.partitions)]
        committed = self.consumer.committed(parts, timeout=5)
        lag = ends = 0
        for part in committed:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, part.partition), timeout=5)
            ends += high
            lag += high - max(part.offset, 0)
        self.ends = ends
        return lag

    def _run(self) -> None:
        while not self.stopped.is_set():
            with contextlib.suppress(Exception):  # a broker restart: no sample this time
                self.samples.append((time.monotonic(), self._lag()))
            self.stopped.wait(0.5)

    def lag_now_from_kafka(self) -> int:
        """A fresh reading (it also refreshes ``ends``, the events Debezium published)."""
        return self._lag()

    def lag_now(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(10)
        self.consumer.close()


@dataclass
class Scenario:
    name: str
    fault: str
    seconds: float
    inject: Callable[[Migration, LocalStack], None]
    heal: Callable[[Migration, LocalStack], None]
    kill: str | None = None  # "bridge" or "backfill": kill -9 in the middle of the fault


def _ddbsim(stack: LocalStack, **profile: Any) -> Callable[[Migration, LocalStack], None]:
    def apply(m: Migration, _: LocalStack) -> None:
        tables = [m.settings.tables[0].target, m.settings.dynamodb.control_table]
        DdbsimAdmin(stack.ddbsim_url).configure(tables=tables, **profile)

    return apply


def _restart(component: str, *, kill9: bool = False) -> Callable[[Migration, LocalStack], None]:
    def apply(_: Migration, stack: LocalStack) -> None:
        comp = stack.components[component]
        pid = comp.pid()
        if kill9 and pid is not None:
            os.kill(pid, signal.SIGKILL)
        stack.down([component])
        if component == "kafka":
            stack.down(["connect"])
        stack.up([component, "connect"] if component == "kafka" else [component])

    return apply


def _toxiproxy(action: Callable[[Toxiproxy], object]) -> Callable[[Migration, LocalStack], None]:
    def apply(_: Migration, stack: LocalStack) -> None:
        action(Toxiproxy(stack.toxiproxy_url))

    return apply


def _nothing(_: Migration, __: LocalStack) -> None:
    pass


def scenarios(stack: LocalStack) -> list[Scenario]:
    healthy = {
        "unavailable": False,
        "error_rate": 0.0,
        "lost_response_rate": 0.0,
        "latency_p50_ms": 0.0,
        "latency_p99_ms": 0.0,
    }
    return [
        Scenario("dynamodb-outage", "every DynamoDB call answers 503", 30, _ddbsim(stack, unavailable=True),
                 _ddbsim(stack, **healthy)),
        Scenario("dynamodb-outage+kill-bridge", "503s; the bridge is killed -9 and restarted mid-outage", 30,
                 _ddbsim(stack, unavailable=True), _ddbsim(stack, **healthy), kill="bridge"),
        Scenario("throttling-storm", "capacity cut from 2,000 to 200 units/s", 60,
                 _ddbsim(stack, capacity="provisioned", write_units_per_s=200),
                 _ddbsim(stack, capacity="provisioned", write_units_per_s=2000)),
        Scenario("latency-spikes", "DynamoDB p50 50 ms / p99 400 ms", 30,
                 _ddbsim(stack, latency_p50_ms=50, latency_p99_ms=400), _ddbsim(stack, **healthy)),
        Scenario("lost-answers", "20% of applied writes lose their answer, 10% of calls answer 500", 30,
                 _ddbsim(stack, lost_response_rate=0.2, error_rate=0.1),
                 _ddbsim(stack, **healthy), kill="backfill"),
        Scenario("dynamodb-resets", "every DynamoDB connection reset (TCP RST)", 15,
                 _toxiproxy(lambda t: t.add("dynamodb", "reset_peer", stream="upstream", timeout=0)),
                 _toxiproxy(Toxiproxy.reset)),
        Scenario("kafka-outage", "Kafka unreachable through its proxy", 20,
                 _toxiproxy(lambda t: t.set_enabled("kafka", False)), _toxiproxy(Toxiproxy.reset)),
        Scenario("kafka-restart", "the broker (and Connect) stopped and started", 0, _restart("kafka"), _nothing),
        Scenario("connect-kill9", "Kafka Connect killed -9 and started", 0, _restart("connect", kill9=True), _nothing),
        Scenario("postgres-restart", "PostgreSQL stopped and started (the slot survives)", 0,
                 _restart("postgres"), _nothing, kill="backfill"),
    ]  # fmt: skip


def _count(m: Migration) -> tuple[int, int]:
    """PostgreSQL's rows and DynamoDB's live items (on dynalite, not through the layers under test)."""
    with psycopg.connect(m.direct.source.dsn.get_secret_value()) as conn:
        row = conn.execute("SELECT count(*) FROM payments").fetchone()
    client = make_client(m.dynalite.dynamodb)
    live, kwargs = 0, {"TableName": m.settings.tables[0].target, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)  # type: ignore[arg-type]
        live += sum(1 for item in page["Items"] if m.settings.bookkeeping.deleted not in item)
        if "LastEvaluatedKey" not in page:
            return (int(row[0]) if row else 0), live
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def run_scenario(stack: LocalStack, scenario: Scenario, *, rows: int, rate: float, warmup_s: float) -> Row:
    row = Row(scenario.name, scenario.fault, scenario.seconds)
    DdbsimAdmin(stack.ddbsim_url).reset()
    Toxiproxy(stack.toxiproxy_url).reset()
    with sandbox(rows) as (settings, _):
        workdir = Path(f"/tmp/ddbridge-faults-{scenario.name}-{os.getpid()}")
        workdir.mkdir(parents=True, exist_ok=True)
        m = Migration(settings, stack, workdir)
        probe = LagProbe(settings)
        try:
            if scenario.name == "throttling-storm":
                _ddbsim(stack, capacity="provisioned", write_units_per_s=2000)(m, stack)
            m.start(rate)
            probe.thread.start()
            time.sleep(warmup_s)
            before = [lag for _, lag in probe.samples] or [0]
            scenario.inject(m, stack)
            if scenario.kill:
                time.sleep(scenario.seconds / 2)
                m.kill9(scenario.kill)
                time.sleep(scenario.seconds / 2)
            else:
                time.sleep(scenario.seconds)
            scenario.heal(m, stack)
            healed = time.monotonic()
            resumes = m.finish_backfill()
            if resumes:
                row.notes.append(f"backfill resumed {resumes}x")
            m.stop()
            threshold = max(50, 2 * statistics.quantiles(before, n=20)[-1] if len(before) > 1 else 50)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and (probe.lag_now() > 0 or probe.samples[-1][0] < healed):
                time.sleep(0.5)
            recovered = [t for t, lag in probe.samples if t >= healed and lag <= threshold]
            row.recovery_s = round(recovered[0] - healed, 1) if recovered else None
            row.max_lag = max((lag for _, lag in probe.samples), default=0)
            if m.bridge is None or m.bridge.poll() is not None:
                row.notes.append("the bridge exited")
            if m.writer_restarts:
                row.notes.append(f"the application reconnected {m.writer_restarts}x")
            report = subprocess.run(
                [sys.executable, "-m", "ddbridge", "--config", str(m.config), "--json", "reconcile"],
                capture_output=True, text=True, cwd=workdir, timeout=600, check=False,
            )  # fmt: skip
            data = json.loads(report.stdout) if report.stdout.strip().startswith("{") else {}
            counts = data.get("counts", {})
            row.lost, row.stale, row.resurrected = (
                counts.get("missing", -1),
                counts.get("different", -1),
                counts.get("extra", -1),
            )
            row.verdict = data.get("verdict", f"reconcile failed: {report.stderr.strip()[-200:]}")
            row.pg_rows, row.dynamo_live = _count(m)
            probe.stopped.set()
            probe.thread.join(10)
            with contextlib.suppress(Exception):
                probe.lag_now_from_kafka()
            row.events = probe.ends  # after the judgement: a restarted connector may publish late
        finally:
            probe.close()
            m.close()
            DdbsimAdmin(stack.ddbsim_url).reset()
            Toxiproxy(stack.toxiproxy_url).reset()
    return row


def write_results(fresh: list[Row], order: list[str], args: argparse.Namespace) -> Path:
    """faults.json and faults.md: this run's rows replace the earlier rows of the same scenarios."""
    RESULTS.mkdir(exist_ok=True)
    stored = RESULTS / "faults.json"
    earlier = [Row(**r) for r in json.loads(stored.read_text())] if stored.exists() else []
    by_name = {r.scenario: r for r in [*earlier, *fresh]}
    rows = [by_name[name] for name in order if name in by_name]
    stored.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    lines = [
        "# Fault suite",
        "",
        f"`python -m bench.faults --rows {args.rows} --rate {args.rate}`: each scenario is a fresh migration of the",
        f"payments example ({args.rows:,} rows of history copied by `ddbridge backfill`) while the application",
        f"writes {args.rate:.0f} changes a second and `ddbridge stream` runs; DynamoDB through ddbsim behind",
        "Toxiproxy, Kafka through its proxied listener. Lost / stale / resurrected are `ddbridge reconcile`'s",
        "missing / different / extra items; the counts beside them are PostgreSQL's `count(*)` and DynamoDB's",
        "live items scanned on dynalite directly. See `bench/faults.py` for how each figure is measured.",
        "",
        "| scenario | fault | duration | events | max lag | recovery | lost | stale | resurrected "
        "| PG rows / live items | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        recovery = "-" if r.recovery_s is None else f"{r.recovery_s:.1f} s"
        notes = f" ({'; '.join(r.notes)})" if r.notes else ""
        lines.append(
            f"| {r.scenario} | {r.fault}{notes} | {r.seconds:.0f} s | {r.events:,} | {r.max_lag:,} | {recovery} | "
            f"{r.lost} | {r.stale} | {r.resurrected} | {r.pg_rows:,} / {r.dynamo_live:,} | {r.verdict} |"
        )
    out = RESULTS / "faults.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args(argv)
    stack = LocalStack(load_settings(None).stack)
    chosen = [s for s in scenarios(stack) if not args.only or s.name in args.only.split(",")]
    rows = []
    for scenario in chosen:
        print(f"== {scenario.name}: {scenario.fault}", flush=True)
        row = run_scenario(stack, scenario, rows=args.rows, rate=args.rate, warmup_s=args.warmup)
        print(json.dumps(asdict(row)), flush=True)
        rows.append(row)
    print(f"wrote {write_results(rows, [s.name for s in scenarios(stack)], args)}")
    exact = all(r.lost == r.stale == r.resurrected == 0 and r.pg_rows == r.dynamo_live for r in rows)
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
