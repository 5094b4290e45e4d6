"""Every value a record can carry is either stored or refused with a CodecError (the one data error
the bridge may dead-letter); nothing else escapes the codec or the event parser for any input."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.codec import CODEC_TYPES, from_debezium, text_converter
from bridge.errors import CodecError, MissingColumnTypes
from bridge.events import parse_change_event

examples = settings(max_examples=300, deadline=None)

SEMANTICS = [
    None,
    "io.debezium.time.Date",
    "io.debezium.time.Timestamp",
    "io.debezium.time.MicroTimestamp",
    "io.debezium.time.NanoTimestamp",
    "io.debezium.time.ZonedTimestamp",
    "io.debezium.time.Time",
    "io.debezium.time.MicroTime",
    "io.debezium.time.NanoTime",
    "io.debezium.time.ZonedTime",
    "io.debezium.time.MicroDuration",
    "io.debezium.time.Interval",
    "io.debezium.data.Json",
    "io.debezium.data.Uuid",
    "io.debezium.data.Bits",
    "org.apache.kafka.connect.data.Decimal",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", "0", "-1", "1e400", "NaN", "infinity", "2024-02-30", "24:00:00", "{1,2}", "AAAA", "P1Y"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=8,
)


@examples
@given(codec_type=st.sampled_from(sorted(CODEC_TYPES)), semantic=st.sampled_from(SEMANTICS), value=json_values)
def test_a_debezium_value_is_stored_or_refused_with_a_codec_error(
    codec_type: str, semantic: str | None, value: Any
) -> None:
    with contextlib.suppress(CodecError):
        from_debezium(codec_type, value, semantic)


postgres_like_text = st.text(max_size=40) | st.sampled_from(
    [
        "{}",
        "{NULL}",
        '{"a,b",c}',
        "{{1,2},{3,4}}",
        "[2:3]={1,2}",
        "infinity",
        "-infinity",
        "NaN",
        "24:00:00",
        "2024-01-01 24:00:00",
        "0001-01-01 BC",
        "\\x0",
        "\\xzz",
        '"a"=>',
        "[1,2)",
        "empty",
        "P-1Y",
        "10000-01-01",
    ]
)


@examples
@given(codec_type=st.sampled_from(sorted(CODEC_TYPES)), text=postgres_like_text)
def test_a_text_value_is_stored_or_refused_with_a_codec_error(codec_type: str, text: str) -> None:
    convert = text_converter(codec_type)
    with contextlib.suppress(CodecError):
        convert(text)


def _event(after: Any, *, types: dict[str, str] | None = None) -> dict[str, Any]:
    types = types or {"id": "INT4", "note": "TEXT"}
    fields = [
        {"field": c, "type": "string", "parameters": {"__debezium.source.column.type": t}} for c, t in types.items()
    ]
    return {
        "schema": {"fields": [{"field": "before", "fields": fields}, {"field": "after", "fields": fields}]},
        "payload": {"op": "c", "before": None, "after": after, "source": {"schema": "public", "table": "t", "lsn": 10}},
    }


def _mutations(doc: Any) -> st.SearchStrategy[Any]:
    """The document with one node (at any depth) replaced by an arbitrary JSON value."""
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*path, i))

    walk(doc, ())

    def replace(path: tuple[Any, ...], value: Any) -> Any:
        copy = json.loads(json.dumps(doc))
        if not path:
            return value
        node = copy
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return copy

    return st.tuples(st.sampled_from(paths), json_values).map(lambda pv: replace(*pv))


@examples
@given(doc=_mutations(_event({"id": 1, "note": "x"})))
def test_a_malformed_envelope_is_a_codec_error_never_another_exception(doc: Any) -> None:
    # MissingColumnTypes: a field without its PostgreSQL type is the connector's setting, a stop
    with contextlib.suppress(CodecError, MissingColumnTypes):
        parse_change_event(json.dumps(doc).encode())


@pytest.mark.parametrize("raw", [b"", b"[]", b"null", b'{"schema": 1, "payload": 2}', b"\xff\xfe"])
def test_records_that_are_not_change_events_are_codec_errors(raw: bytes) -> None:
    with pytest.raises(CodecError):
        parse_change_event(raw)
