"""The migration plan: the source's primary-key space cut into ranges, fixed once per migration.

Ranges are half-open on the primary key (``[lower, upper)``, the first unbounded below, the last
unbounded above), so every row, including rows inserted later, lies in exactly one range. Segment
``i`` of ``N`` owns the ranges ``r`` with ``r % N == i``; the plan is stored in the control table so
every process of a migration uses the same ranges.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from bridge.config import TableMapping
from bridge.keyset import KeyColumn


@dataclass
class Plan:
    """Everything every process of one migration must agree on."""

    migration_id: str
    source: str
    target: str
    key_columns: list[KeyColumn]
    boundaries: list[list[str]]  # sorted primary-key values (as text) between consecutive ranges
    segments: int
    start_date: str | None
    end_date: str | None
    fingerprint: str
    created_at: str
    stream_position: str | None = None
    total_rows: int = 0
    range_rows: list[int] = field(default_factory=list)
    # The greatest primary key when the plan was made: the last range ends there. A row with a greater
    # key was inserted after the plan, so after the stream started: the stream copies it. Without the
    # bound the copy would chase the application's inserts and, slower than them, never end.
    # ``bounded`` is False for a plan made before the bound existed: its last range stays open.
    last_key: list[str] | None = None
    bounded: bool = False

    @property
    def range_count(self) -> int:
        return len(self.boundaries) + 1

    def ranges_of(self, segment: int) -> list[int]:
        """The ranges a segment owns."""
        return [r for r in range(self.range_count) if r % self.segments == segment]

    def bounds(self, index: int) -> tuple[list[str] | None, list[str] | None]:
        """(inclusive lower, exclusive upper) primary key of a range; None = unbounded."""
        lower = self.boundaries[index - 1] if index > 0 else None
        upper = self.boundaries[index] if index < len(self.boundaries) else None
        return lower, upper

    def last_of(self, index: int) -> list[str] | None:
        """The inclusive upper bound of a range: ``last_key`` for the last range, else None."""
        return self.last_key if index == self.range_count - 1 else None

    def empty_at_plan(self) -> bool:
        """The table had no row when the plan was made: every row it has now came through the stream."""
        return self.bounded and self.last_key is None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data: dict[str, Any] = json.loads(text)
        data["key_columns"] = [KeyColumn(**k) for k in data["key_columns"]]
        return cls(**data)


def fingerprint(mapping: TableMapping, start_date: date | None, end_date: date | None, segments: int) -> str:
    """What a resumed run must share with the original: the mapping, the date range and the segmenting.
    Settings left at their defaults are not part of it, so a ddbridge release that adds a mapping
    option does not invalidate the resume of a migration planned before it."""
    payload = {
        "mapping": mapping.model_dump(mode="json", exclude_defaults=True),
        "start_date": start_date.isoformat() if start_date else None,
        "end_date": end_date.isoformat() if end_date else None,
        "segments": segments,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def compute_boundaries(
    conn: psycopg.Connection[Any], mapping: TableMapping, columns: list[KeyColumn], ranges: int
) -> list[list[str]]:
    """``ranges - 1`` primary keys (as text) cutting the table into ranges of about equal row counts."""
    table = sql.Identifier(mapping.schema_name, mapping.table_name)
    total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    count = int(total[0]) if total else 0
    if ranges <= 1 or count < ranges * 2:
        return []
    step = -(-count // ranges)
    text_cols = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in columns)
    query = sql.SQL(
        "SELECT {text_cols} FROM (SELECT {cols}, row_number() OVER (ORDER BY {key}) AS rn FROM {table}) s "
        "WHERE rn %% %s = 1 AND rn > 1 ORDER BY rn"
    ).format(
        text_cols=text_cols,
        cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
        key=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
        table=table,
    )
    return [[str(v) for v in row] for row in conn.execute(query, (step,)).fetchall()]


def greatest_key(conn: psycopg.Connection[Any], mapping: TableMapping, columns: list[KeyColumn]) -> list[str] | None:
    """The table's greatest primary key (as text), None when it is empty."""
    # The text forms get their own names: ORDER BY a name of the select list would sort the text ('999'
    # after '1000'), not the key.
    query = sql.SQL("SELECT {text_cols} FROM {table} ORDER BY {desc} LIMIT 1").format(
        text_cols=sql.SQL(", ").join(
            sql.SQL("{}::text AS {}").format(sql.Identifier(c.name), sql.Identifier(f"__ddbridge_last{i}"))
            for i, c in enumerate(columns)
        ),
        table=sql.Identifier(mapping.schema_name, mapping.table_name),
        desc=sql.SQL(", ").join(sql.SQL("{} DESC").format(sql.Identifier(c.name)) for c in columns),
    )
    row = conn.execute(query).fetchone()
    return [str(v) for v in row] if row else None
