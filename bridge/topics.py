"""Kafka topics ddbridge relies on: one per captured table (created before Debezium's first event so
the bridge can subscribe at once) and the dead-letter topic."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from bridge.config import Settings
from bridge.errors import TerminalError
from bridge.kafka_config import admin_client


def topic_for(settings: Settings, source_table: str) -> str:
    """The Kafka topic Debezium writes a source table's changes to (``prefix.schema.table``)."""
    return f"{settings.kafka.topic_prefix}.{source_table}"


def ensure_topics(settings: Settings) -> dict[str, str]:
    """Create missing topics; returns topic -> 'created' | 'exists'."""
    c = settings.connect
    wanted = {topic_for(settings, m.source): c.topic_partitions for m in settings.tables}
    wanted[settings.kafka.dead_letter_topic] = 1
    admin = admin_client(settings.kafka)
    try:
        existing = set(admin.list_topics(timeout=15).topics)
    except KafkaException as exc:
        raise TerminalError(f"Kafka at {settings.kafka.bootstrap_servers} did not answer: {exc}") from exc
    outcome = {t: "exists" for t in wanted if t in existing}
    new = [
        NewTopic(t, num_partitions=n, replication_factor=-1, config={"retention.ms": str(c.topic_retention_ms)})
        for t, n in wanted.items()
        if t not in existing
    ]
    for topic, future in (admin.create_topics(new, request_timeout=30) if new else {}).items():
        try:
            future.result()
            outcome[topic] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TerminalError(f"cannot create Kafka topic {topic}: {exc}") from exc
            outcome[topic] = "exists"
    return outcome
