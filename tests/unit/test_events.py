"""Debezium change events (bridge/events.py): envelopes with schemas parsed into rows of codec values."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from bridge.codec import UNAVAILABLE
from bridge.errors import CodecError, MissingColumnTypes, TerminalError
from bridge.events import SOURCE_TYPE, decode_row, parse_change_event

# A real update event of the golden test (tests/integration/test_codec_golden.py), REPLICA IDENTITY FULL.
GOLDEN_UPDATE = Path(__file__).parent / "data" / "debezium_golden_update.json"

# (column, Connect type, semantic name, PostgreSQL type) of the hand-written table.
COLUMNS: list[tuple[str, str, str | None, str]] = [
    ("id", "int32", None, "INT4"),
    ("amount", "string", None, "NUMERIC"),
    ("note", "string", None, "TEXT"),
    ("blob", "string", None, "BYTEA"),
    ("tags", "array", None, "_TEXT"),
    ("paid_at", "string", "io.debezium.time.ZonedTimestamp", "TIMESTAMPTZ"),
]


def _row_schema(name: str, types: bool = True) -> dict[str, Any]:
    fields = []
    for column, type_, semantic, pg_type in COLUMNS:
        field: dict[str, Any] = {"type": type_, "optional": column != "id", "field": column}
        if type_ == "array":
            field["items"] = {"type": "string", "optional": True}
        if semantic:
            field["name"] = semantic
        if types:
            field["parameters"] = {SOURCE_TYPE: pg_type, "__debezium.source.column.name": column}
        fields.append(field)
    return {"type": "struct", "fields": fields, "optional": True, "name": "t.public.loans.Value", "field": name}


def envelope(
    op: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    lsn: int | None = 24023128,
    types: bool = True,
) -> bytes:
    """A Debezium envelope as the JSON converter (schemas enabled) writes it."""
    source: dict[str, Any] = {
        "version": "3.6.3.Final",
        "connector": "postgresql",
        "name": "t",
        "ts_ms": 1700000000123,
        "snapshot": "false",
        "db": "app",
        "schema": "public",
        "table": "loans",
        "txId": 777,
        "lsn": lsn,
    }
    schema = {
        "type": "struct",
        "name": "t.public.loans.Envelope",
        "optional": False,
        "fields": [
            _row_schema("before", types),
            _row_schema("after", types),
            {
                "type": "struct",
                "fields": [],
                "optional": False,
                "name": "io.debezium.connector.postgresql.Source",
                "field": "source",
            },
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
        ],
    }
    payload = {"before": before, "after": after, "source": source, "op": op, "ts_ms": 1700000000999}
    return orjson.dumps({"schema": schema, "payload": payload})


ROW = {
    "id": 7,
    "amount": "100.00",
    "note": "héllo",
    "blob": "AP8Q",
    "tags": ["a", None],
    "paid_at": "2024-07-01T16:00:00.5Z",
}
DECODED = {
    "id": {"N": "7"},
    "amount": {"N": "100"},
    "note": {"S": "héllo"},
    "blob": {"B": b"\x00\xff\x10"},
    "tags": {"L": [{"S": "a"}, {"NULL": True}]},
    "paid_at": {"S": "2024-07-01T16:00:00.500000Z"},
}


def test_insert() -> None:
    event = parse_change_event(envelope("c", None, ROW))
    assert event.op == "c"
    assert event.table == "public.loans"
    assert event.lsn == 24023128
    assert event.ts_ms == 1700000000123  # the source's commit time, not the envelope's processing time
    assert event.before is None
    assert event.after == DECODED
    assert event.unavailable == set()


def test_update_has_both_images_and_nulls_stay_none() -> None:
    after = {**ROW, "amount": "99.90", "note": None}
    event = parse_change_event(envelope("u", ROW, after))
    assert event.op == "u"
    assert event.before == DECODED
    assert event.after == {**DECODED, "amount": {"N": "99.9"}, "note": None}


def test_delete_has_no_after() -> None:
    event = parse_change_event(envelope("d", ROW, None))
    assert event.op == "d"
    assert event.after is None
    assert event.before == DECODED
    assert event.unavailable == set()


def test_delete_under_default_replica_identity_has_only_the_key() -> None:
    key_only = {column: None for column in ROW} | {"id": 7}
    event = parse_change_event(envelope("d", key_only, None))
    assert event.before is not None and event.before["id"] == {"N": "7"}
    assert event.after is None


def test_missing_lsn_is_none() -> None:
    assert parse_change_event(envelope("c", None, ROW, lsn=None)).lsn is None


@pytest.mark.parametrize(
    ("column", "placeholder"),
    [
        ("note", UNAVAILABLE),
        ("blob", base64.b64encode(UNAVAILABLE.encode()).decode()),  # bytea: base64 of the placeholder
        ("tags", [UNAVAILABLE]),  # arrays: the placeholder as the only element
    ],
)
def test_toast_placeholder_is_unavailable_never_a_value(column: str, placeholder: Any) -> None:
    after = {**ROW, column: placeholder}
    event = parse_change_event(envelope("u", None, after))
    assert event.unavailable == {column}
    assert event.after is not None
    assert column not in event.after
    assert event.after == {k: v for k, v in DECODED.items() if k != column}


def test_toast_placeholder_in_several_columns() -> None:
    after = {**ROW, "note": UNAVAILABLE, "tags": [UNAVAILABLE]}
    event = parse_change_event(envelope("u", None, after))
    assert event.unavailable == {"note", "tags"}
    assert event.after is not None and set(event.after) == {"id", "amount", "blob", "paid_at"}


def test_missing_column_types_are_a_terminal_error() -> None:
    with pytest.raises(MissingColumnTypes, match=r"column\.propagate\.source\.type=\.\*") as info:
        parse_change_event(envelope("c", None, ROW, types=False))
    assert "'id'" in str(info.value)
    assert isinstance(info.value, TerminalError)


@pytest.mark.parametrize("raw", [b"", b"not json", b"{", b"\xff\xfe"])
def test_non_json_is_a_codec_error(raw: bytes) -> None:
    with pytest.raises(CodecError, match="not JSON"):
        parse_change_event(raw)


@pytest.mark.parametrize(
    "doc",
    [
        [1, 2],
        "a string",
        {"before": None, "after": {"id": 1}, "op": "c"},  # schemas disabled: a bare payload
        {"schema": {}},
        {"payload": {"op": "c"}},
    ],
)
def test_non_envelope_is_a_codec_error(doc: Any) -> None:
    with pytest.raises(CodecError, match="not a Debezium envelope with schema"):
        parse_change_event(orjson.dumps(doc))


@pytest.mark.parametrize("payload", [{"before": None, "after": None}, "text", None])
def test_payload_without_op_is_a_codec_error(payload: Any) -> None:
    with pytest.raises(CodecError, match="not a Debezium change event"):
        parse_change_event(orjson.dumps({"schema": {"fields": []}, "payload": payload}))


def test_bad_value_names_its_column() -> None:
    after = {**ROW, "amount": "12345678901234567890123456789012345678901"}
    with pytest.raises(CodecError, match=r"column amount: .*41 significant digits") as info:
        parse_change_event(envelope("c", None, after))
    assert info.value.column == "amount"


def test_decode_row() -> None:
    schema = _row_schema("after")
    assert decode_row(schema, None) == (None, set())
    assert decode_row(schema, ROW) == (DECODED, set())
    assert decode_row(schema, {"id": 1, "note": UNAVAILABLE}) == ({"id": {"N": "1"}}, {"note"})


def test_real_golden_update_event() -> None:
    event = parse_change_event(GOLDEN_UPDATE.read_bytes())
    assert (event.op, event.table, event.lsn, event.ts_ms) == ("u", "public.golden", 108015152, 1795581155637)
    assert event.unavailable == set()
    assert event.before is not None and event.after is not None
    assert set(event.before) == set(event.after)
    changed = {c for c in event.after if event.after[c] != event.before[c]}
    assert changed == {"c_num", "c_text", "c_tstz", "c_jsonb", "c_int_arr", "c_null"}
    before, after = event.before, event.after
    assert (before["c_num"], after["c_num"]) == ({"N": "100"}, {"N": "99.99"})
    assert (before["c_null"], after["c_null"]) == (None, {"S": "now set"})
    assert after["id"] == {"N": "1"}
    assert after["c_int8"] == {"N": "10000000000"}
    assert after["c_num_scale"] == {"N": "1.5"}
    assert after["c_num_free"] == {"N": "0.1"}
    assert after["c_float4"] == {"N": "1.5"}
    assert after["c_float8"] == {"N": "3.141592653589793"}
    assert after["c_char"] == {"S": "ab   "}
    assert after["c_bool"] == {"BOOL": True}
    assert after["c_date"] == {"S": "2024-01-15"}
    assert after["c_ts"] == {"S": "2024-01-15T10:20:30.123456"}  # MicroTimestamp
    assert after["c_ts3"] == {"S": "2024-01-15T10:20:30.123000"}  # Timestamp (ms), timestamp(3)
    assert after["c_tstz"] == {"S": "2024-11-03T06:30:00.000000Z"}
    assert before["c_tstz"] == {"S": "2024-07-01T16:00:00.500000Z"}
    assert after["c_time"] == {"S": "10:20:30.123456"}  # MicroTime
    assert after["c_time3"] == {"S": "10:20:30.123000"}  # Time (ms), time(3)
    assert after["c_timetz"] == {"S": "15:20:30.500000Z"}
    assert after["c_uuid"] == {"S": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}
    assert after["c_bytea"] == {"B": b"\x00\xff\x10"}
    assert after["c_int_arr"] == {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}, {"N": "7"}]}
    assert after["c_text_arr"] == {"L": [{"S": "a"}, {"NULL": True}, {"S": "c"}]}
    jsonb = after["c_jsonb"]
    assert jsonb is not None
    assert jsonb["M"]["tiny"] == {"N": "0.0000001"}
    assert jsonb["M"]["big"] == {"N": "12345678901234567890"}
    assert jsonb["M"]["added"] == {"N": "2.5"}
    assert jsonb["M"]["s"] == {"S": "héllo é"}
    assert after["c_json"] is not None and after["c_json"]["M"]["tiny"] == {"N": "0.0000001"}
