"""``make demo``: a whole zero-downtime migration of the payments example on the local stack.

Steps: start the stack, reset what an earlier demo left, load the payments, validate, init, start the
bridge in the background, validate again, backfill while live traffic changes rows, reconcile, and
leave everything running with instructions. Every step says what it does and how long it took.

Usage::

    python -m examples.payments.demo [--config FILE] [--rows N] [--traffic-rate R]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlparse

from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.markup import escape

from backfill.runner import BackfillOptions
from bridge.config import Settings, load_settings, write_config
from bridge.errors import ConfigError, DdbridgeError
from connectors.debezium import wait_until_streaming
from ddbridge.commands.backfill import run_backfill
from ddbridge.commands.reconcile import run_reconcile, run_validate
from examples.payments import traffic
from examples.payments.generate import load_payments
from ops import procs
from ops.initialize import initialize
from ops.teardown import teardown
from reconcile.reconciler import ReconcileOptions
from reconcile.validate import ValidateOptions

DEFAULT_CONFIG = Path(__file__).with_name("ddbridge.toml")
BRIDGE_MARKER = "bridge --config"  # in the command line of the bridge this demo starts


class Demo:
    """The demo's steps over one configuration; files go under ``workdir`` (default ``.stack``)."""

    def __init__(self, settings: Settings, config: Path, workdir: Path, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.config = config
        self.workdir = workdir
        self.say = say
        self.pidfile = workdir / "pids" / "bridge.pid"
        self.bridge_log = workdir / "logs" / "bridge.log"
        self.reports = workdir / "reports"
        self.step_number = 0
        self.steps = 9

    def step(self, title: str) -> None:
        self.step_number += 1
        self.say(f"\n[bold]\\[{self.step_number}/{self.steps}] {escape(title)}[/]")

    # -- the steps -----------------------------------------------------------------------------

    def stack_up(self) -> None:
        from ops.stack import LocalStack

        c = self.settings.connect
        stack = LocalStack(
            self.settings.stack, c.database_user, c.database_password.get_secret_value(), c.database_name
        )
        stack.up(progress=lambda line: self.say(f"  {line}"))

    def reset(self) -> None:
        """Remove what an earlier demo left: bridge, connector, slot, topics, group, DynamoDB tables."""
        self.stop_bridge()
        removed = teardown(self.settings, forget_offsets=True)
        self.say(f"  cleared {', '.join(removed)}")

    def start_bridge(self) -> int:
        """``ddbridge stream`` in the background, surviving this script; its pid goes to the pidfile."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DDBRIDGE_")}
        argv = [sys.executable, "-m", "ddbridge", "--config", str(self.config), "stream"]
        pid = procs.spawn(argv, self.pidfile, self.bridge_log, env=env)
        time.sleep(2)
        if not procs.is_ours(pid, BRIDGE_MARKER):
            raise SystemExit(f"the bridge exited at once; see {self.bridge_log}")
        return pid

    def stop_bridge(self) -> None:
        """Stop a bridge an earlier demo started (SIGTERM: it drains and commits)."""
        procs.stop(self.pidfile, BRIDGE_MARKER, timeout_s=60)

    # -- the whole flow ------------------------------------------------------------------------

    def run(self, rows: int, traffic_rate: float, *, stack: bool = True) -> bool:
        started = time.monotonic()
        s = self.settings
        mapping = s.mapping()
        dsn = s.source.dsn.get_secret_value()
        self.step("Local stack: PostgreSQL, Kafka, Kafka Connect + Debezium, DynamoDB (dynalite)")
        if stack:
            self.stack_up()
        self.reset()
        self.step(f"Loading {rows:,} payments into PostgreSQL ({mapping.source})")
        t = time.monotonic()
        load_payments(dsn, rows=rows)
        self.say(f"  loaded in {time.monotonic() - t:.1f} s")
        self.step("Pre-flight validation (what `ddbridge init` creates shows as todo)")
        if self._validate_failed():
            return False
        self.step("init: DynamoDB table + GSIs, control table, REPLICA IDENTITY, publication, topics, connector")
        initialize(s, progress=lambda line: self.say(f"  {line}"))
        wait_until_streaming(s)
        self.say("  Debezium is streaming changes from PostgreSQL")
        if s.connect.converter == "avro":
            self.say(f"  as Avro (Confluent wire format), the schemas in the registry at {s.registry.url}")
        self.step("Starting the bridge in the background (`ddbridge stream`)")
        pid = self.start_bridge()
        self.say(f"  bridge pid {pid}, log {self.bridge_log}, metrics http://127.0.0.1:{s.stream.metrics_port}/metrics")
        self.step("Validation after init (everything must pass)")
        if self._validate_failed():
            return False
        self.step(f"Backfill of the history while the application changes rows ({traffic_rate:g} changes/s)")
        stop = threading.Event()
        done: Counter[str] = Counter()
        writer = threading.Thread(
            target=lambda: done.update(traffic.run(dsn, stop, rate=traffic_rate)), name="traffic", daemon=True
        )
        writer.start()
        try:
            summary = run_backfill(
                s,
                BackfillOptions(migration_id=f"demo-{time.strftime('%Y%m%d-%H%M%S')}"),
                json_output=False,
                say=self.say,
            )
        finally:
            stop.set()
            writer.join(30)
        self.say(f"  live traffic during the copy: {traffic.describe(done)}")
        if summary.status != "Completed":
            self.say(f"  backfill {summary.status}: {summary.failure or 'see above'}")
            return False
        self.step("Reconciliation: every row, sample, GSI queries, error rate (waits for the bridge to catch up)")
        self.reports.mkdir(parents=True, exist_ok=True)
        report = run_reconcile(
            s,
            ReconcileOptions(),
            reports=[self.reports / "reconcile.md", self.reports / "reconcile.html"],
            json_output=False,
            say=self.say,
        )
        self.step("Done")
        minutes, seconds = divmod(int(time.monotonic() - started), 60)
        self.say(f"  the whole migration took {minutes}m{seconds:02d}s")
        self._instructions(summary.migration_id)
        return report.ok

    def _validate_failed(self) -> bool:
        checks = run_validate(self.settings, ValidateOptions(), detailed=True, json_output=False, say=self.say)
        return any(c.status == "fail" for c in checks)

    def _instructions(self, migration_id: str) -> None:
        s = self.settings
        config = f" --config {self.config}" if self.config != DEFAULT_CONFIG else ""
        self.say(
            "\n[bold]The stack and the bridge keep running.[/] Try:\n"
            f"  - change a row: psql postgresql://ddbridge:ddbridge@127.0.0.1:{s.stack.ports.postgres}/"
            f"{s.connect.database_name} -c \"UPDATE payments SET payment_status = 'Refunded' WHERE payment_id = 1\"\n"
            f"  - live traffic: .venv/bin/ddbridge{config} example traffic --rate 20 --duration 60\n"
            f"  - metrics: curl -s http://127.0.0.1:{s.stream.metrics_port}/metrics | grep ddbridge_ "
            "(Prometheus: ops/monitoring/prometheus.yml; Grafana: ops/monitoring/grafana/dashboards/ddbridge.json)\n"
            f"  - the backfill's record: .venv/bin/ddbridge{config} status --migration-id {migration_id} "
            f"(monitor a running one with `ddbridge monitor --migration-id ...`)\n"
            f"  - reconcile again: .venv/bin/ddbridge{config} reconcile --report report.html\n"
            f"  - bridge log: {self.bridge_log}; reports: {self.reports}/reconcile.md and .html\n"
            f"  - stop the bridge: kill $(cat {self.pidfile}); stop everything: make stack-down"
        )


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def require_local(settings: Settings) -> None:
    """The demo deletes and recreates its tables, topics and connector: never against anything but a
    local stack."""
    endpoint = urlparse(settings.dynamodb.endpoint_url or "https://dynamodb.amazonaws.com").hostname
    source = conninfo_to_dict(settings.source.dsn.get_secret_value()).get("host", "")
    if endpoint not in LOCAL_HOSTS or source not in LOCAL_HOSTS:
        raise ConfigError(
            "the demo deletes and recreates its DynamoDB tables, topics and connector, so it only runs against a "
            f"local stack (DynamoDB {endpoint}, PostgreSQL {source}); use examples/payments/ddbridge.toml"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A whole migration of the payments example on the local stack.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--traffic-rate", type=float, default=20.0, help="live changes per second during the copy")
    parser.add_argument("--workdir", type=Path, help="pidfile, bridge log and reports (default: the stack dir)")
    parser.add_argument("--no-stack", action="store_true", help="the stack is already up: do not start it")
    parser.add_argument(
        "--converter", choices=["json", "avro"], help="how Debezium publishes (default: the config's connect.converter)"
    )
    args = parser.parse_args(argv)
    try:
        overrides = {"connect": {"converter": args.converter}} if args.converter else None
        settings = load_settings(args.config, overrides)
        require_local(settings)
        console = Console(soft_wrap=True, highlight=False)
        workdir = args.workdir or settings.stack.dir
        config = args.config.resolve()
        if args.converter:  # the commands the demo starts read the same choice from their config
            Path(workdir).mkdir(parents=True, exist_ok=True)
            config = write_config(settings, Path(workdir) / f"ddbridge-{args.converter}.json").resolve()
            config.chmod(0o600)
        demo = Demo(settings, config, workdir, say=console.print)
        ok = demo.run(args.rows, args.traffic_rate, stack=not args.no_stack)
    except DdbridgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
