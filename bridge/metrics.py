"""Every Prometheus metric ddbridge exports, in one registry (names ``ddbridge_*``)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from bridge.errors import ConfigError
from bridge.health import Health, Verdict

REGISTRY = CollectorRegistry(auto_describe=True)

# Change events read from Kafka, by source table and Debezium op (c/u/d/r/t, "tombstone" for null records).
EVENTS_CONSUMED = Counter("ddbridge_events_consumed", "Change events consumed", ["table", "op"], registry=REGISTRY)
# Conditional PutItems that DynamoDB accepted (the item now holds this version).
WRITES_APPLIED = Counter("ddbridge_writes_applied", "Writes applied", ["table", "kind"], registry=REGISTRY)
# Writes rejected by the version condition: already applied or superseded. Normal during replays and
# backfill overlap; each still consumed write capacity.
WRITES_STALE = Counter(
    "ddbridge_writes_stale", "Writes rejected as stale (ConditionalCheckFailed)", ["table", "kind"], registry=REGISTRY
)
# Writes dropped inside a batch because a newer write of the same item was in the same batch.
WRITES_COALESCED = Counter(
    "ddbridge_writes_coalesced", "Writes skipped in favour of a newer one in the batch", ["table"], registry=REGISTRY
)
# Row-schema changes of a source table the bridge saw on the stream (added, dropped or retyped columns).
SCHEMA_CHANGES = Counter(
    "ddbridge_schema_changes", "Source row-schema changes seen on the stream", ["table"], registry=REGISTRY
)
# Records sent to the dead-letter topic, by reason class.
DEAD_LETTERED = Counter(
    "ddbridge_dead_lettered", "Records sent to the dead-letter topic", ["table", "reason"], registry=REGISTRY
)
# The Debezium connector as `ddbridge stream` last saw it: 1 connector and tasks RUNNING, 0 otherwise.
CONNECTOR_RUNNING = Gauge(
    "ddbridge_connector_running", "1 when the connector and all its tasks are RUNNING", registry=REGISTRY
)
# Restarts of a FAILED connector task made by the bridge.
CONNECTOR_RESTARTS = Counter(
    "ddbridge_connector_restarts", "FAILED connector tasks restarted by the bridge", registry=REGISTRY
)
# Latency of one conditional PutItem including retries.
WRITE_SECONDS = Histogram(
    "ddbridge_write_seconds",
    "PutItem latency including retries",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Retries of DynamoDB calls, by cause (throttle, server, network).
RETRIES = Counter("ddbridge_retries", "DynamoDB call retries", ["cause"], registry=REGISTRY)
# The table's write units DynamoDB reported for paced writes (a backfill with a write budget; GSIs
# apart), and the budget's current rate (it drops when DynamoDB throttles, climbs back while it does not).
WRITE_UNITS = Counter(
    "ddbridge_write_units",
    "Table write units consumed by paced writes, as DynamoDB reports them",
    ["table"],
    registry=REGISTRY,
)
WRITE_BUDGET = Gauge(
    "ddbridge_write_budget_units_per_second", "The write pacer's current rate (units a second)", registry=REGISTRY
)
# Messages per consumer batch.
BATCH_SIZE = Histogram(
    "ddbridge_batch_size",
    "Records per consumer batch",
    registry=REGISTRY,
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
# Offsets the consumer group is behind the end of each partition.
CONSUMER_LAG = Gauge("ddbridge_consumer_lag", "Consumer lag in offsets", ["topic", "partition"], registry=REGISTRY)
# Now minus the source commit time of the newest applied event.
REPLICATION_LAG = Gauge(
    "ddbridge_replication_lag_seconds", "Now minus source ts of the last applied event", ["table"], registry=REGISTRY
)

# Backfill rows by outcome: written (applied), stale (the stream's version was newer), failed.
BACKFILL_ROWS = Counter("ddbridge_backfill_rows", "Backfill rows by outcome", ["table", "outcome"], registry=REGISTRY)
# Rows of the migration's plan (this process's segment) and how many are done, for progress and ETA.
BACKFILL_PLANNED = Gauge(
    "ddbridge_backfill_planned_rows", "Rows the backfill segment has to copy", ["migration"], registry=REGISTRY
)
BACKFILL_PROCESSED = Gauge(
    "ddbridge_backfill_processed_rows", "Rows the backfill segment has copied", ["migration"], registry=REGISTRY
)


StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Wsgi = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def endpoints(health: Health | None) -> Wsgi:
    """The HTTP endpoints: ``/livez`` and ``/readyz`` (200 or 503 with the reason, when ``health`` is given)
    and the registry at ``/metrics``."""
    scrape = make_wsgi_app(REGISTRY)
    probes: dict[str, Callable[[], Verdict]] = (
        {"/livez": health.liveness, "/readyz": health.readiness} if health is not None else {}
    )

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        probe = probes.get(environ.get("PATH_INFO", ""))
        if probe is None:
            metrics: Iterable[bytes] = scrape(environ, start_response)
            return metrics
        verdict = probe()
        status = "200 OK" if verdict.ok else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [(verdict.reason + "\n").encode()]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: no log lines
        return


def serve(port: int, addr: str, setting: str, health: Health | None = None) -> None:
    """Serve the registry at ``http://addr:port/metrics`` (and the probes of ``health``) from a daemon
    thread; a port in use is a ConfigError naming ``setting`` (two processes on one host need a port each)."""

    try:

        class Server(ThreadingWSGIServer):
            address_family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]

        httpd = make_server(addr, port, endpoints(health), Server, handler_class=_Quiet)
    except OSError as exc:
        env = "DDBRIDGE_" + setting.upper().replace(".", "__")
        raise ConfigError(
            f"cannot serve metrics on {addr}:{port}: {exc.strerror} (another ddbridge process on this host?); "
            f"give each process its own port with {setting} ({env}=...), or 0 to disable metrics"
        ) from exc
    threading.Thread(target=httpd.serve_forever, name="ddbridge-metrics", daemon=True).start()
