"""Has the bridge applied every change up to a WAL position? The reconciler asks before it believes
a difference.

Caught up to LSN L means: the replication slot's ``confirmed_flush_lsn`` is at or past L (Debezium
commits a position only after Kafka acknowledged every event before it), and after that the bridge's
consumer group has no lag on the table's topic (the bridge commits only after DynamoDB acknowledged
the writes). The heartbeat table in the publication keeps the slot moving on a quiet source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import Consumer, KafkaException, TopicPartition

from bridge.config import Settings, TableMapping
from bridge.kafka_config import client_config
from bridge.postgres import connect
from bridge.topics import topic_for
from connectors.debezium import ConnectClient

Status = Literal["caught-up", "no-stream", "behind"]


@dataclass
class CatchUpState:
    """The outcome of one wait."""

    status: Status
    detail: str
    lag: int | None = None
    waited_s: float = 0.0


class CatchUp:
    """Waits until the bridge has applied everything up to a WAL position."""

    def __init__(self, settings: Settings, mapping: TableMapping) -> None:
        self.settings = settings
        self.topic = topic_for(settings, mapping.source)

    def stream_exists(self) -> bool:
        """True when a connector is registered or its replication slot exists."""
        with connect(self.settings) as conn:
            slot = conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.settings.connect.slot_name,)
            ).fetchone()
        if slot:
            return True
        try:
            client = ConnectClient(self.settings.connect, 5.0)
            return client.status(self.settings.connect.connector_name) is not None
        except Exception:
            return False

    def slot_flushed(self, lsn: str) -> bool:
        with connect(self.settings) as conn:
            row = conn.execute(
                "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
                (lsn, self.settings.connect.slot_name),
            ).fetchone()
        return bool(row and row[0])

    def lag(self) -> int:
        """Events on the table's topic the bridge's consumer group has not committed."""
        owned = {"group.id": self.settings.kafka.consumer_group, "enable.auto.commit": False}
        consumer = Consumer(client_config(self.settings.kafka, "ddbridge-reconcile", owned))
        try:
            meta = consumer.list_topics(self.topic, timeout=10)
            topic = meta.topics.get(self.topic)
            partitions = sorted(topic.partitions) if topic is not None and topic.error is None else []
            tps = consumer.committed([TopicPartition(self.topic, p) for p in partitions], timeout=10)
            total = 0
            for tp in tps:
                low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, tp.partition), timeout=10)
                total += max(0, high - (tp.offset if tp.offset >= 0 else low))
            return total
        finally:
            consumer.close()

    def wait(self, lsn: str, deadline: float) -> CatchUpState:
        """Wait (until ``deadline``, monotonic) for the bridge to apply everything up to ``lsn``."""
        started = time.monotonic()
        if not self.stream_exists():
            return CatchUpState("no-stream", "no connector or replication slot: compared without a stream", None)
        flushed, lag = False, None
        while True:
            try:
                flushed = flushed or self.slot_flushed(lsn)
                if flushed:
                    lag = self.lag()
                    if lag == 0:
                        return CatchUpState("caught-up", f"bridge caught up past {lsn}", 0, time.monotonic() - started)
            except KafkaException as exc:
                detail = f"Kafka did not answer ({exc})"
                if time.monotonic() >= deadline:
                    return CatchUpState("behind", detail, None, time.monotonic() - started)
            if time.monotonic() >= deadline:
                why = (
                    f"the bridge's consumer group {self.settings.kafka.consumer_group} is {lag} events behind on "
                    f"{self.topic}: is `ddbridge stream` running?"
                    if flushed
                    else f"Debezium has not confirmed WAL position {lsn} (slot {self.settings.connect.slot_name}): "
                    "is the connector RUNNING (`ddbridge connector status`)?"
                )
                return CatchUpState("behind", why, lag, time.monotonic() - started)
            time.sleep(0.5)
