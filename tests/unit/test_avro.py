"""Avro change events (Confluent wire format) decode to the same change events as the JSON converter's.

The two fixtures below describe one Debezium update event twice, written independently: as the JSON
converter serialises it (inline Connect schema) and as Kafka Connect's AvroData turns that Connect
schema into Avro (``connect.name``/``connect.parameters``, optional fields as ``["null", T]``, the
row record defined once in ``before`` and referred to by name in ``after``). Framing errors, unknown
schema ids and data that does not match its writer schema are CodecErrors (dead letters with the
reason); no server is involved.
"""

from __future__ import annotations

import base64
import io
import re
import struct
from typing import Any

import fastavro
import orjson
import pytest

from bridge.avro import AvroEnvelopes, UnknownSchema
from bridge.errors import CodecError
from bridge.events import parse_change_event, parse_envelope

P = "__debezium.source.column.type"


def _column(
    name: str, connect: str, avro: str, pg: str, value: Any, semantic: str | None = None, **more: Any
) -> tuple[str, dict[str, Any], Any, Any]:
    """One optional column: its JSON converter field schema (Connect type ``connect``) and the Avro type
    AvroData writes for it (``avro``, with Connect's name, version and parameters as ``connect.*``)."""
    params = {P: pg, **more.pop("params", {})}
    json_schema: dict[str, Any] = {"type": connect, "optional": True, "parameters": params, **more.get("json_", {})}
    avro_schema: dict[str, Any] = {"type": avro, "connect.parameters": params, **more.get("avro_", {})}
    if semantic is not None:
        json_schema |= {"name": semantic, "version": 1}
        avro_schema |= {"connect.name": semantic, "connect.version": 1}
    if connect in ("int8", "int16"):
        avro_schema["connect.type"] = connect
    return name, json_schema, ["null", avro_schema], value


# (column, JSON converter field schema, Avro field type, value)
COLUMNS: list[tuple[str, dict[str, Any], Any, Any]] = [
    ("id", {"type": "int64", "optional": False, "parameters": {P: "INT8"}},
     {"type": "long", "connect.parameters": {P: "INT8"}}, 7),
    _column("small", "int16", "int", "INT2", -3),
    _column("amount", "string", "string", "NUMERIC", "1234.50",
            params={"__debezium.source.column.length": "12", "__debezium.source.column.scale": "2"}),
    _column("paid_on", "int32", "int", "DATE", 19723, "io.debezium.time.Date"),
    _column("created", "int64", "long", "TIMESTAMP", 1704067200123456, "io.debezium.time.MicroTimestamp"),
    _column("created_ms", "int64", "long", "TIMESTAMP", 1704067200123, "io.debezium.time.Timestamp"),
    _column("at", "int32", "int", "TIME", 45296789, "io.debezium.time.Time"),
    _column("changed", "string", "string", "TIMESTAMPTZ", "2024-01-01T00:00:00.5Z", "io.debezium.time.ZonedTimestamp"),
    _column("note", "string", "string", "TEXT", "über ✓"),
    _column("blob", "string", "string", "BYTEA", base64.b64encode(b"\x00\xff").decode()),
    _column("ok", "boolean", "boolean", "BOOL", True),
    _column("ratio", "float64", "double", "FLOAT8", 0.25),
    _column("ratio4", "float32", "float", "FLOAT4", 0.1),  # Avro float32: widened by fastavro, written 0.1
    _column("tiny4", "float32", "float", "FLOAT4", 3.4e-38),
    _column("tags", "array", "array", "_TEXT", ["a", None, "b"],
            json_={"items": {"type": "string", "optional": True}}, avro_={"items": ["null", "string"]}),
    _column("doc", "string", "string", "JSONB", '{"k": [1, 2]}', "io.debezium.data.Json"),
]  # fmt: skip

SOURCE_JSON = {
    "type": "struct",
    "optional": False,
    "name": "io.debezium.connector.postgresql.Source",
    "field": "source",
    "fields": [
        {"type": "string", "optional": False, "field": "schema"},
        {"type": "string", "optional": False, "field": "table"},
        {"type": "int64", "optional": True, "field": "lsn"},
        {"type": "int64", "optional": False, "field": "ts_ms"},
    ],
}
SOURCE_AVRO = {
    "type": "record",
    "name": "Source",
    "namespace": "io.debezium.connector.postgresql",
    "fields": [
        {"name": "schema", "type": "string"},
        {"name": "table", "type": "string"},
        {"name": "lsn", "type": ["null", "long"], "default": None},
        {"name": "ts_ms", "type": "long"},
    ],
    "connect.name": "io.debezium.connector.postgresql.Source",
}


def _row(**changes: Any) -> dict[str, Any]:
    return {name: changes.get(name, value) for name, _, _, value in COLUMNS}


BEFORE, AFTER = _row(note="before", ok=False), _row()
PAYLOAD = {
    "before": BEFORE,
    "after": AFTER,
    "source": {"schema": "public", "table": "t", "lsn": 987654, "ts_ms": 1704067200000},
    "op": "u",
    "ts_ms": 1704067200100,
}


def _json_record() -> bytes:
    row = {
        "type": "struct",
        "optional": True,
        "name": "p.public.t.Value",
        "fields": [{**schema, "field": name} for name, schema, _, _ in COLUMNS],
    }
    schema = {
        "type": "struct",
        "optional": False,
        "name": "p.public.t.Envelope",
        "fields": [
            {**row, "field": "before"},
            {**row, "field": "after"},
            SOURCE_JSON,
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
        ],
    }
    return orjson.dumps({"schema": schema, "payload": PAYLOAD})


def _avro_schema() -> dict[str, Any]:
    value = {
        "type": "record",
        "name": "Value",
        "fields": [{"name": name, "type": avro, **({"default": None} if isinstance(avro, list) else {})}
                   for name, _, avro, _ in COLUMNS],
        "connect.name": "p.public.t.Value",
    }  # fmt: skip
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": "p.public.t",
        "fields": [
            {"name": "before", "type": ["null", value], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},  # by name, as AvroData writes it
            {"name": "source", "type": SOURCE_AVRO},
            {"name": "op", "type": "string"},
            {"name": "ts_ms", "type": ["null", "long"], "default": None},
        ],
        "connect.name": "p.public.t.Envelope",
    }


class Registry:
    def __init__(self, schemas: dict[int, dict[str, Any]]) -> None:
        self.schemas = schemas
        self.asked: list[int] = []

    def avro_schema(self, schema_id: int) -> str:
        self.asked.append(schema_id)
        if schema_id not in self.schemas:
            raise UnknownSchema(schema_id)
        return orjson.dumps(self.schemas[schema_id]).decode()


def _frame(schema_id: int, schema: dict[str, Any], datum: Any) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), datum)
    return b"\x00" + struct.pack(">I", schema_id) + out.getvalue()


def test_an_avro_event_decodes_to_the_same_change_as_its_json_twin() -> None:
    registry = Registry({42: _avro_schema()})
    decode = AvroEnvelopes(registry)
    avro_event = parse_envelope(decode(_frame(42, _avro_schema(), PAYLOAD)))
    json_event = parse_change_event(_json_record())
    assert avro_event == json_event
    assert avro_event.after is not None and avro_event.after["note"] == {"S": "über ✓"}
    assert avro_event.lsn == 987654 and avro_event.op == "u" and avro_event.table == "public.t"
    decode(_frame(42, _avro_schema(), PAYLOAD))
    assert registry.asked == [42]  # the writer schema is fetched once per id


def test_binary_avro_fields_become_base64_text_as_the_json_converter_writes_them() -> None:
    schema = {
        "type": "record",
        "name": "V",
        "fields": [
            {"name": "b", "type": ["null", "bytes"]},
            {"name": "l", "type": {"type": "array", "items": "bytes"}},
        ],
    }
    envelope = AvroEnvelopes(Registry({1: schema}))(_frame(1, schema, {"b": b"\x01\x02", "l": [b"\xff"]}))
    assert envelope.payload == {"b": "AQI=", "l": ["/w=="]}
    assert envelope.schema["fields"][0] == {"type": "bytes", "optional": True, "field": "b"}


def test_logical_types_are_read_as_their_encoded_numbers() -> None:
    schema = {
        "type": "record",
        "name": "V",
        "fields": [
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros", "connect.name": "x.Ts"}},
            {"name": "d", "type": {"type": "int", "logicalType": "date"}},
        ],
    }
    envelope = AvroEnvelopes(Registry({1: schema}))(_frame(1, schema, {"ts": 1704067200123456, "d": 19723}))
    assert envelope.payload == {"ts": 1704067200123456, "d": 19723}  # not datetime/date objects


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"schema": {}}', "not Avro in the Confluent wire format"),
        (b"\x00\x00\x01", "not Avro in the Confluent wire format"),
        (b"\x00\x00\x00\x00\x07\x02", "no schema with id 7"),
        (b"\x00\x00\x00\x00\x2a\x02", "does not match its writer schema (id 42)"),
    ],
)
def test_records_that_cannot_be_decoded_are_codec_errors_with_the_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=re.escape(reason)):
        AvroEnvelopes(Registry({42: _avro_schema()}))(raw)


def test_a_schema_that_is_not_avro_or_not_from_kafka_connect_is_a_codec_error() -> None:
    not_json = AvroEnvelopes(Registry({}))
    not_json.source = type("Bad", (), {"avro_schema": lambda self, i: "{not json"})()
    with pytest.raises(CodecError, match="schema id 3 from the registry is not a usable Avro schema"):
        not_json(b"\x00\x00\x00\x00\x03")
    union = {"type": "record", "name": "V", "fields": [{"name": "u", "type": ["int", "string"]}]}
    with pytest.raises(CodecError, match="unsupported Avro union"):
        AvroEnvelopes(Registry({5: union}))(b"\x00\x00\x00\x00\x05\x00\x02")


def test_an_unusable_schema_is_fetched_once_and_an_unknown_id_is_asked_again() -> None:
    union = {"type": "record", "name": "V", "fields": [{"name": "u", "type": ["int", "string"]}]}
    registry = Registry({5: union})
    decode = AvroEnvelopes(registry)
    for raw in (b"\x00\x00\x00\x00\x05\x00\x02", b"\x00\x00\x00\x00\x05\x00\x04"):
        with pytest.raises(CodecError, match="unsupported Avro union"):
            decode(raw)
    for _ in range(2):  # a schema registered a moment ago may not have reached this registry node yet
        with pytest.raises(CodecError, match="no schema with id 6"):
            decode(b"\x00\x00\x00\x00\x06\x02")
    assert registry.asked == [5, 6, 6]


def test_the_row_columns_of_a_writer_schema_are_read_once_per_schema_id() -> None:
    decode = AvroEnvelopes(Registry({42: _avro_schema()}))
    first, second = (decode(_frame(42, _avro_schema(), PAYLOAD)) for _ in range(2))
    assert first.parsed is not None and first.parsed is second.parsed
    assert list(first.parsed.after or {}) == [name for name, _, _, _ in COLUMNS]
