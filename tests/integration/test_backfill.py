"""The backfill through the real stack: exact copies, date ranges, kill -9 and resume, segments, and
the main promise — a backfill while the live application writes and the bridge streams."""

from __future__ import annotations

import json
import random
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backfill.checkpoints import MigrationStore
from bridge.config import Settings
from bridge.dynamo import make_client
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.initialize import initialize
from tests.integration.pipeline import (
    BridgeProcess,
    Cli,
    assert_converged,
    dynamo_items,
    live_traffic,
    source_items,
    wait_until,
)


@pytest.fixture
def source(isolated: Settings, tmp_path: Path) -> Iterator[tuple[Settings, Cli]]:
    """The payments table with history, captured by Debezium (stream first), and a CLI for the test."""
    settings = isolated.model_copy(update={"stream": isolated.stream.model_copy(update={"metrics_port": 0})})
    yield settings, Cli(settings, tmp_path)


def _prepare(settings: Settings, rows: int) -> None:
    load_payments(settings.source.dsn.get_secret_value(), rows=rows)
    initialize(settings)
    wait_until_streaming(settings)


def test_backfill_copies_every_row_exactly(source: tuple[Settings, Cli]) -> None:
    settings, cli = source
    _prepare(settings, 20_000)
    done = cli.run("backfill", "--migration-id", "full", "--workers", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    for line in (
        "Migration ID: full",
        "Total Records: 20,000",
        "Batch Size: 500",
        "Resume capability: ENABLED",
        "Status: Completed",
    ):
        assert line in done.stdout, done.stdout
    assert assert_converged(settings, timeout_s=30) == 20_000
    status = cli.run("--json", "status", "--migration-id", "full")
    data = json.loads(status.stdout)
    assert (data["status"], data["processed"], data["written"], data["errors"]) == ("Completed", 20_000, 20_000, 0)


def test_date_range_copies_exactly_that_subset(source: tuple[Settings, Cli]) -> None:
    settings, cli = source
    _prepare(settings, 6_000)
    edges = ["2021-12-31", "2022-01-01", "2022-12-31", "2023-01-01"]  # a row on each side of both named days
    with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
        for i, day in enumerate(edges):
            conn.execute("UPDATE payments SET payment_date = %s WHERE payment_id = %s", (day, 101 + i))
    done = cli.run("backfill", "--migration-id", "y2022", "--start-date", "2022-01-01", "--end-date", "2022-12-31")
    assert done.returncode == 0, done.stdout + done.stderr
    want = {k: v for k, v in source_items(settings).items() if v["PaymentDate"]["S"].startswith("2022-")}
    assert 0 < len(want) < 6_000
    assert {"2022-01-01", "2022-12-31"} <= {v["PaymentDate"]["S"] for v in want.values()}
    assert dynamo_items(settings) == want
    assert f"Total Records: {len(want):,}" in done.stdout


def test_refuses_without_the_stream_unless_offline(source: tuple[Settings, Cli]) -> None:
    settings, cli = source
    load_payments(settings.source.dsn.get_secret_value(), rows=200)
    initialize(settings, connector=False)
    refused = cli.run("backfill", "--migration-id", "m")
    assert refused.returncode == 1
    assert "is not registered" in refused.stderr and "--no-stream" in refused.stderr
    offline = cli.run("backfill", "--migration-id", "m", "--no-stream")
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert len(dynamo_items(settings)) == 200


def test_kill9_then_resume_is_exact_and_checkpoints_never_go_back(source: tuple[Settings, Cli]) -> None:
    base, _ = source
    settings = base.model_copy(
        update={"migration": base.migration.model_copy(update={"progress_save_interval": 2, "batch_size": 200})}
    )
    cli = Cli(settings, source[1].workdir)
    _prepare(settings, 12_000)
    store = MigrationStore(make_client(settings.dynamodb), settings.dynamodb.control_table, "k9")
    seen: dict[int, int] = {}

    def checkpoints_monotonic() -> None:
        for index, cp in store.load_ranges().items():
            assert cp.seq >= seen.get(index, 0), f"range {index} went back from {seen[index]} to {cp.seq}"
            seen[index] = cp.seq

    def progressed() -> bool:  # a checkpoint newer than any seen before this attempt
        return any(cp.seq > seen.get(index, 0) for index, cp in store.load_ranges().items())

    for attempt in range(3):
        proc = cli.start("backfill" if attempt == 0 else "resume", "--migration-id", "k9", "--workers", "2")
        # killed mid-copy: after it saved a checkpoint (not a fixed sleep, which a fast or a loaded machine
        # turns into a finished copy or a kill before any checkpoint)
        wait_until(progressed, 60, "a new checkpoint")
        time.sleep(random.Random(attempt).uniform(0.0, 0.5))
        proc.kill()
        proc.wait(30)
        checkpoints_monotonic()
    assert any(seen.values()), "no checkpoint was saved before the kills"
    status = json.loads(cli.run("--json", "status", "--migration-id", "k9").stdout)
    assert status["status"] in ("InProgress", "Stalled") and status["processed"] < 12_000
    done = cli.run("resume", "--migration-id", "k9")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Resuming:" in done.stdout
    checkpoints_monotonic()
    assert assert_converged(settings, timeout_s=30) == 12_000


def test_resume_refuses_a_changed_configuration(source: tuple[Settings, Cli]) -> None:
    settings, cli = source
    _prepare(settings, 300)
    assert cli.run("backfill", "--migration-id", "fp").returncode == 0
    mapping = settings.tables[0].model_copy(update={"exclude_columns": ["transaction_reference"]})
    changed = Cli(settings.model_copy(update={"tables": [mapping]}), cli.workdir)
    refused = changed.run("resume", "--migration-id", "fp")
    assert refused.returncode == 2 and "another configuration" in refused.stderr and "--force" in refused.stderr
    assert changed.run("resume", "--migration-id", "fp", "--force").returncode == 0


def test_two_segments_in_two_processes_copy_everything_once(source: tuple[Settings, Cli]) -> None:
    settings, cli = source
    _prepare(settings, 8_000)
    procs = [
        cli.start("backfill", "--migration-id", "seg", "--segments", "2", "--segment", str(i), "--workers", "2")
        for i in (0, 1)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    counts = [int(o.split("Status: Completed | read ")[1].split(" ")[0].replace(",", "")) for o in outputs]
    assert sum(counts) == 8_000 and all(c > 0 for c in counts), counts
    assert assert_converged(settings, timeout_s=30) == 8_000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backfill_during_live_writes_ends_exact(source: tuple[Settings, Cli], seed: int) -> None:
    """The product's main promise: history copied while the application writes and the bridge streams."""
    settings, cli = source
    _prepare(settings, 6_000)
    bridge = BridgeProcess(settings, cli.workdir).start()
    stop = threading.Event()
    writer = live_traffic(settings, stop, rate=400.0, seed=seed)
    try:
        rng = random.Random(seed)
        time.sleep(rng.uniform(0, 2))  # writes before, during and after the copy, at different moments
        writer.start()
        time.sleep(rng.uniform(0, 2))
        done = cli.run("backfill", "--migration-id", f"live{seed}", "--workers", str(rng.choice([1, 2, 4])))
        assert done.returncode == 0, done.stdout + done.stderr
        time.sleep(rng.uniform(0, 3))
    finally:
        stop.set()
        writer.join(30)
    try:
        rows = assert_converged(settings, timeout_s=120)
        assert rows > 5_000
        # Deletes and moves happened during the copy, and none was resurrected by a late snapshot write.
        live_keys = set(source_items(settings))
        tombstones = {k for k, item in dynamo_items(settings, live_only=False).items() if "_deleted" in item}
        assert tombstones, "the writer deleted or moved no row: the test exercised nothing"
        assert not tombstones & live_keys
        assert bridge.alive(), bridge.output()[-2000:]
    finally:
        bridge.stop()


def test_a_backfill_paused_mid_copy_never_overwrites_newer_changes(source: tuple[Settings, Cli]) -> None:
    """The dangerous order, forced: the backfill is frozen (SIGSTOP) between reading its chunks and
    writing them while the application changes rows and the bridge applies the changes; the stale
    snapshot writes that land after must all be refused, deletes included."""
    settings, cli = source
    _prepare(settings, 3_000)
    bridge = BridgeProcess(settings, cli.workdir).start()
    stop = threading.Event()
    writer = live_traffic(settings, stop, rate=400.0, seed=11)
    rng = random.Random(11)
    pauses = 0
    try:
        writer.start()
        proc = cli.start("backfill", "--migration-id", "paused", "--workers", "2")
        while proc.poll() is None:
            time.sleep(rng.uniform(0.1, 0.5))
            proc.send_signal(signal.SIGSTOP)
            time.sleep(1.0)  # the bridge applies newer changes to rows the frozen chunks hold old versions of
            proc.send_signal(signal.SIGCONT)
            pauses += 1
        output = proc.communicate(timeout=300)[0]
        assert proc.returncode == 0, output
        assert pauses >= 2, output  # the copy was really frozen mid-way
        # The copy ends at the plan's greatest key: the rows the application inserts meanwhile are the
        # stream's. (Chasing them, a copy slower than the inserts never ended.)
        planned = re.search(r"Total Records: ([\d,]+)", output)
        read = re.search(r"\| read ([\d,]+)", output)
        assert planned and read, output
        assert int(read.group(1).replace(",", "")) <= int(planned.group(1).replace(",", "")), output
    finally:
        stop.set()
        writer.join(30)
    try:
        assert assert_converged(settings, timeout_s=120) > 2_500
        live_keys = set(source_items(settings))
        tombstones = {k for k, item in dynamo_items(settings, live_only=False).items() if "_deleted" in item}
        assert tombstones and not tombstones & live_keys
        assert bridge.alive(), bridge.output()[-2000:]
    finally:
        bridge.stop()


def test_bad_rows_are_recorded_and_max_errors_fails_the_copy(source: tuple[Settings, Cli]) -> None:
    settings, cli = source
    load_payments(settings.source.dsn.get_secret_value(), rows=1_000)
    with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute("ALTER TABLE payments ADD COLUMN memo text")
        conn.execute("UPDATE payments SET memo = repeat('x', 450000) WHERE payment_id IN (10, 20, 30)")
    initialize(settings)
    wait_until_streaming(settings)
    done = cli.run("backfill", "--migration-id", "bad", "--detailed-errors")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "errors 3" in done.stdout
    lines = [json.loads(line) for line in (cli.workdir / "bad.errors.jsonl").read_text().splitlines()]
    assert sorted(line["key"]["PaymentDateId"].split("#")[1] for line in lines) == ["10", "20", "30"]
    assert all("400 KB" in line["reason"] for line in lines)
    assert len(dynamo_items(settings)) == 997
    failed = cli.run("backfill", "--migration-id", "strict", "--max-errors", "1")
    assert failed.returncode == 1
    assert "Status: Failed" in failed.stdout and "more than max_errors=1" in failed.stdout + failed.stderr


def test_sigint_checkpoints_and_marks_stopped(source: tuple[Settings, Cli]) -> None:

    settings, cli = source
    _prepare(settings, 10_000)
    proc = cli.start("backfill", "--migration-id", "int", "--workers", "2")
    wait_until(lambda: cli.run("--json", "status", "--migration-id", "int").returncode == 0, 60, "the plan")
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, out
    assert "Status: Stopped" in out and "ddbridge resume --migration-id int" in out
    status = json.loads(cli.run("--json", "status", "--migration-id", "int").stdout)
    assert status["status"] == "Stopped" and 0 < status["processed"] < 10_000
    done = cli.run("resume", "--migration-id", "int")
    assert done.returncode == 0, done.stdout + done.stderr
    assert assert_converged(settings, timeout_s=30) == 10_000
