"""Decoding change events: Debezium's JSON (inline schema) against Avro through the schema registry, on
the same changes, in the same process.

Two sandboxes of the payments example, one per converter, receive the same inserts and updates; their
change topics are read back raw. Then, in this process, every record is decoded repeatedly (CPU time,
``time.process_time``): to the envelope (JSON parsing, or the Confluent header + fastavro with the
writer schema cached by id), and through the whole codec to a change event. Reported: bytes per record
on the topic, CPU per event for each step and the ratios Avro/JSON.

    python -m bench.decode_bench --events 20000      # writes bench/results/decode.md and decode.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer

from bench.sandbox import sandbox
from bridge.avro import AvroEnvelopes
from bridge.config import Settings
from bridge.events import json_envelope, parse_change_event, parse_envelope
from bridge.kafka_config import client_config
from bridge.registry import RegistrySchemas
from bridge.topics import topic_for
from connectors.debezium import wait_until_streaming
from examples.payments.generate import load_payments
from ops.initialize import initialize

RESULTS = Path(__file__).parent / "results"
REGISTRY = "http://127.0.0.1:58081/apis/ccompat/v7"


def _records(settings: Settings, want: int, timeout_s: float = 300) -> list[bytes]:
    """The first ``want`` change-event values of the sandbox's topic, raw."""
    conf = {"group.id": f"decode-{settings.kafka.consumer_group}", "auto.offset.reset": "earliest"}
    consumer = Consumer(client_config(settings.kafka, "ddbridge-bench", conf))
    consumer.subscribe([topic_for(settings, settings.mapping().source)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < want and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                value = msg.value() if msg.error() is None else None
                if value:
                    values.append(bytes(value))
    finally:
        consumer.close()
    if len(values) < want:
        raise SystemExit(f"only {len(values)} of {want} change events arrived on {settings.kafka.topic_prefix}")
    return values[:want]


def _capture(converter: str, events: int) -> list[bytes]:
    """``events`` change events of the payments table, published with ``converter``."""
    with sandbox(0) as (base, _tables):
        settings = base.model_copy(
            update={
                "connect": base.connect.model_copy(update={"converter": converter}),
                "registry": base.registry.model_copy(update={"url": REGISTRY}),
            }
        )
        initialize(settings)
        wait_until_streaming(settings)
        dsn = settings.source.dsn.get_secret_value()
        inserts = events // 2
        load_payments(dsn, rows=inserts, reset=False)
        with psycopg.connect(dsn, autocommit=True) as conn:  # one update per row: the other half
            conn.execute("UPDATE payments SET payment_status = 'Completed', updated_date = now()")
        return _records(settings, events)


def _cpu_us(step: Callable[[bytes], Any], records: list[bytes], rounds: int) -> float:
    """Median over ``rounds`` of the CPU time per record of ``step``, in microseconds."""
    per_round = []
    for _ in range(rounds):
        started = time.process_time()
        for raw in records:
            step(raw)
        per_round.append((time.process_time() - started) / len(records) * 1e6)
    return statistics.median(per_round)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    json_records = _capture("json", args.events)
    avro_records = _capture("avro", args.events)
    envelopes = AvroEnvelopes(RegistrySchemas(Settings().registry.model_copy(update={"url": REGISTRY})))
    for raw in avro_records:  # every writer schema fetched once, before timing
        envelopes(raw)

    figures = {
        "events": args.events,
        "bytes_per_event": {
            "json": statistics.mean(len(r) for r in json_records),
            "avro": statistics.mean(len(r) for r in avro_records),
        },
        "envelope_us": {
            "json": _cpu_us(json_envelope, json_records, args.rounds),
            "avro": _cpu_us(envelopes, avro_records, args.rounds),
        },
        "change_event_us": {
            "json": _cpu_us(parse_change_event, json_records, args.rounds),
            "avro": _cpu_us(lambda raw: parse_envelope(envelopes(raw)), avro_records, args.rounds),
        },
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "decode.json").write_text(json.dumps(figures, indent=2) + "\n")
    size, env, event = figures["bytes_per_event"], figures["envelope_us"], figures["change_event_us"]
    table = [
        "# Decoding change events: JSON against Avro",
        "",
        f"{args.events:,} change events of the payments table (inserts, then an update of each row), published",
        "by Debezium through each converter; decoded in one process (CPU time per event, median of "
        f"{args.rounds} rounds).",
        "",
        "| | JSON (inline schema) | Avro (registry) | Avro / JSON |",
        "|---|---:|---:|---:|",
        f"| bytes per event on the topic | {size['json']:,.0f} | {size['avro']:,.0f} | "
        f"{size['avro'] / size['json']:.3f} |",
        f"| CPU per event: record -> envelope | {env['json']:.1f} µs | {env['avro']:.1f} µs | "
        f"{env['avro'] / env['json']:.2f} |",
        f"| CPU per event: record -> change event (codec) | {event['json']:.1f} µs | {event['avro']:.1f} µs | "
        f"{event['avro'] / event['json']:.2f} |",
        "",
        "Machines here are noisy: read the ratios, not the absolute figures.",
        "",
    ]
    (RESULTS / "decode.md").write_text("\n".join(table))
    print("\n".join(table))


if __name__ == "__main__":
    main()
