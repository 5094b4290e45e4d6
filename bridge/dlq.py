"""The dead-letter topic: records that can never be applied, kept with the reason, plus the limits
that stop the bridge before a bad deploy sends everything there."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import KafkaError

from bridge import metrics
from bridge.errors import DeadLetterLimit, TransientError

HEADER_PREFIX = "ddbridge."

Headers = list[tuple[str, str | bytes | None]] | dict[str, str | bytes | None]


class Record(Protocol):
    """What ddbridge reads of a consumed Kafka record (``confluent_kafka.Message`` is one)."""

    def error(self) -> KafkaError | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers | None: ...


class DeadLetterProducer(Protocol):
    """The producer methods the dead-letter queue uses (``confluent_kafka.Producer`` is one)."""

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        *,
        on_delivery: Callable[[KafkaError | None, object], None] | None = None,
        headers: Headers | None = None,
    ) -> None: ...
    def poll(self, timeout: float = -1) -> int: ...
    def flush(self, timeout: float = -1) -> int: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that cannot be applied, with why."""

    message: Record
    table: str
    error_class: str
    reason: str


class DeadLetterQueue:
    """Produces dead letters (original key, value, headers + ``ddbridge.*`` headers) and enforces limits."""

    def __init__(
        self, producer: DeadLetterProducer, topic: str, *, max_errors: int, max_ratio: float, window: int
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.max_errors = max_errors
        self.max_ratio = max_ratio
        self.recent: deque[bool] = deque(maxlen=window)
        self.total = 0
        self._delivery_errors: list[str] = []

    def admit(self, dead: list[DeadLetter], events: int) -> None:
        """Check the limits for a batch of ``events`` of which ``dead`` failed; raise before producing."""
        ok = max(events - len(dead), 0)
        self.recent.extend([False] * ok + [True] * len(dead))
        if not dead:
            return
        if self.total + len(dead) > self.max_errors:
            first = dead[0]
            raise DeadLetterLimit(
                f"{self.total + len(dead)} records could not be applied in this run, more than migration.max_errors="
                f"{self.max_errors}; the batch was not committed. First: table {first.table}, {first.error_class}: "
                f"{first.reason}. Fix the cause (or raise max_errors) and restart: nothing is lost"
            )
        ratio = sum(self.recent) / len(self.recent)
        if len(self.recent) == self.recent.maxlen and ratio > self.max_ratio:
            raise DeadLetterLimit(
                f"{ratio:.0%} of the last {len(self.recent)} events could not be applied (limit "
                f"stream.max_dlq_ratio={self.max_ratio:.0%}); stopping before the dead-letter topic swallows the "
                f"stream. Latest: {dead[-1].error_class}: {dead[-1].reason}"
            )

    def send(self, dead: list[DeadLetter]) -> None:
        """Produce the dead letters and wait until the broker has them all (before offsets are committed)."""
        for letter in dead:
            msg = letter.message
            original = msg.headers() or []
            headers = list(original.items() if isinstance(original, dict) else original)
            headers += [
                (HEADER_PREFIX + "error.class", letter.error_class.encode()),
                (HEADER_PREFIX + "error.message", letter.reason.encode()),
                (HEADER_PREFIX + "source.topic", (msg.topic() or "").encode()),
                (HEADER_PREFIX + "source.partition", str(msg.partition()).encode()),
                (HEADER_PREFIX + "source.offset", str(msg.offset()).encode()),
                (HEADER_PREFIX + "failed.at", str(int(time.time() * 1000)).encode()),
            ]
            self.producer.produce(
                self.topic, key=msg.key(), value=msg.value(), headers=headers, on_delivery=self._delivered
            )
            metrics.DEAD_LETTERED.labels(letter.table, letter.error_class).inc()
        if dead:
            remaining = self.producer.flush(30)
            if remaining or self._delivery_errors:
                errors, self._delivery_errors = self._delivery_errors, []
                raise TransientError(
                    f"could not write {remaining or len(errors)} dead letter(s) to {self.topic}: {errors[:3]}; "
                    "nothing was committed"
                )
            self.total += len(dead)

    def _delivered(self, err: object, _msg: object) -> None:
        if err is not None:
            self._delivery_errors.append(str(err))
