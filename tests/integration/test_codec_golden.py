"""The golden test of DESIGN "One codec for both paths": the same rows, read as Debezium change events
(the stream) and with psycopg (the backfill and the reconciler), map to identical DynamoDB items."""

from __future__ import annotations

import psycopg
import pytest

from bridge import pgrows
from bridge.codec import AttributeValue
from bridge.config import KeyAttribute, Settings, TableMapping
from bridge.errors import CodecError
from bridge.events import ChangeEvent, parse_change_event
from bridge.mapping import RowMapper
from bridge.topics import topic_for
from connectors.debezium import wait_until_streaming
from ops.initialize import initialize
from tests.integration.pipeline import consume_values

# One column per supported PostgreSQL type. Values PostgreSQL accepts but Python cannot hold (BC dates,
# 'infinity' timestamps, time '24:00:00') are not part of the golden rows: psycopg rejects them; NaN and
# infinities are CodecErrors on both paths (tests/unit/test_codec.py). timestamptz extremes stay one day inside
# years 1..9999 so that psycopg can return them in any session time zone.
GOLDEN_DDL = """
CREATE TABLE public.golden (
    id int4 PRIMARY KEY,
    c_int2 int2,
    c_int4 int4,
    c_int8 int8,
    c_num numeric(18, 2),
    c_num_scale numeric(38, 10),
    c_num_free numeric,
    c_float4 float4,
    c_float8 float8,
    c_text text,
    c_varchar varchar(20),
    c_char char(5),
    c_bool bool,
    c_date date,
    c_ts timestamp,
    c_ts3 timestamp(3),
    c_tstz timestamptz,
    c_time time,
    c_time3 time(3),
    c_timetz timetz,
    c_uuid uuid,
    c_json json,
    c_jsonb jsonb,
    c_bytea bytea,
    c_int_arr int4[],
    c_text_arr text[],
    c_null text
);
ALTER TABLE public.golden REPLICA IDENTITY FULL;
"""

COLUMNS = (
    "id, c_int2, c_int4, c_int8, c_num, c_num_scale, c_num_free, c_float4, c_float8, c_text, c_varchar, c_char,"
    " c_bool, c_date, c_ts, c_ts3, c_tstz, c_time, c_time3, c_timetz, c_uuid, c_json, c_jsonb, c_bytea,"
    " c_int_arr, c_text_arr"
)

NESTED_JSON = (
    '{"a": {"b": [1, 2.50, {"c": null}]}, "small": 0.1, "tiny": 1e-7, "big": 12345678901234567890,'
    ' "neg": -0.0, "flag": true, "s": "héllo \\u00e9", "empty": {}, "list": []}'
)

# Inserted in a session whose TimeZone is America/New_York: zone-less timestamptz/timetz literals are New York time.
GOLDEN_ROWS = [
    # Ordinary values.
    (
        "1, 1, 100, 10000000000, 100.00, 1.5, 0.10, 1.5, 3.141592653589793, 'plain', 'v', 'ab', true,"
        " '2024-01-15', '2024-01-15 10:20:30.123456', '2024-01-15 10:20:30.123', '2024-07-01 12:00:00.5',"
        " '10:20:30.123456', '10:20:30.123', '10:20:30.5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
        f" '{NESTED_JSON}', '{NESTED_JSON}', '\\x00ff10', '{{1,2,3}}', '{{\"a\",NULL,\"c\"}}'"
    ),
    # Negative numbers, extremes of the integer types, the smallest timestamps Python can hold.
    (
        "2, -32768, -2147483648, -9223372036854775808, -0.01, -1234567890123456789012345678.1234567890,"
        " -12345678901234567890.123456789, -0.1, -1e-100, '', '', '', false,"
        " '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00.001', '0001-01-02 12:00:00+00',"
        " '00:00:00', '00:00:00', '00:00:00+00', '00000000-0000-0000-0000-000000000000',"
        " '[]', '[0.1, 1e-7, -5, 1E+30]', '\\x', '{}', '{}'"
    ),
    # Zeros, the largest values, unicode.
    (
        "3, 32767, 2147483647, 9223372036854775807, 0.00, 0, -0.000, 0, 1.5e100,"
        " 'unicode ✓ 日本語 🙂 ''q''', 'ünïcödé', 'ñ', true,"
        " '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999', '9999-12-30 12:00:00+00',"
        " '23:59:59.999999', '23:59:59.999', '23:59:59.999999-14:00', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',"
        " '\"just a string\"', '{\"k\": [[1, 2], [3.000]], \"z\": 0}', decode('8J+Zgg==', 'base64'),"
        ' \'{-1,0,NULL}\', \'{"","with,comma","with \\"quote\\""}\''
    ),
    # 0.10 vs 0.1 in every numeric; a daylight-saving instant in New York.
    (
        "4, 0, 0, 0, 0.1, 0.10, 0.1000000000, 0.1, 0.1, 'x', 'y', 'z', false,"
        " '2000-02-29', '2000-02-29 00:00:00.000001', '2000-02-29 00:00:00', '2024-03-10 03:30:00',"
        " '12:00:00.000001', '12:00:00.001', '12:00:00+05:30', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',"
        " 'null', '{\"n\": null, \"t\": \"\"}', '\\xdeadbeef', '{42}', '{NULL}'"
    ),
]
UPDATE = (
    "UPDATE public.golden SET c_num = 99.99, c_text = 'updated', c_tstz = '2024-11-03 01:30:00',"
    " c_jsonb = c_jsonb || '{\"added\": 2.50}', c_int_arr = array_append(c_int_arr, 7), c_null = 'now set'"
    " WHERE id = 1"
)


def _settings(isolated: Settings, source: str, target: str) -> Settings:
    mapping = TableMapping(
        source=source,
        target=target,
        primary_key=["id"],
        partition_key=KeyAttribute(name="id", template="{id}", type="N"),
        attribute_naming="same",
    )
    return isolated.model_copy(update={"tables": [mapping]})


def _consume(settings: Settings, topic: str, want: int) -> list[bytes]:
    """The raw values of the first ``want`` non-tombstone records of a topic."""
    return [v for v in consume_values(settings, topic, want) if v]


def _latest_after_rows(events: list[ChangeEvent]) -> dict[int, dict[str, AttributeValue | None]]:
    """The after-row of the latest event (by LSN) of every id."""
    latest: dict[int, ChangeEvent] = {}
    for event in events:
        assert event.after is not None and not event.unavailable
        id_ = int(event.after["id"]["N"])  # type: ignore[index]
        if id_ not in latest or (event.lsn or 0) > (latest[id_].lsn or 0):
            latest[id_] = event
    return {id_: e.after for id_, e in latest.items() if e.after is not None}


def _psycopg_rows(dsn: str, table: str) -> dict[int, dict[str, AttributeValue | None]]:
    """Every row of ``public.<table>`` read as the backfill reads it, in a non-UTC session."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'Asia/Kolkata'")  # configure() must put the session back in UTC
        pgrows.configure(conn)
        types = pgrows.column_types(conn, "public", table)
        cur = pgrows.text_cursor(conn).execute(f"SELECT * FROM public.{table} ORDER BY id")
        columns = [d.name for d in cur.description or []]
        assert columns == list(types)
        rows = {}
        for record in cur.fetchall():
            row = pgrows.to_row(columns, [types[c] for c in columns], record)
            rows[int(row["id"]["N"])] = row  # type: ignore[index]
        return rows


def _start(settings: Settings, ddl: str) -> str:
    dsn = settings.source.dsn.get_secret_value()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ddl)
    initialize(settings)
    wait_until_streaming(settings)
    return dsn


def test_stream_and_backfill_items_are_identical(isolated: Settings, unique: str) -> None:
    settings = _settings(isolated, "public.golden", f"golden_{unique}")
    dsn = _start(settings, GOLDEN_DDL)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'America/New_York'")
        for values in GOLDEN_ROWS:
            conn.execute(f"INSERT INTO public.golden ({COLUMNS}) VALUES ({values})")
        conn.execute(UPDATE)
    raw = _consume(settings, topic_for(settings, "public.golden"), want=len(GOLDEN_ROWS) + 1)
    events = [parse_change_event(r) for r in raw]
    assert sorted(e.op for e in events) == ["c"] * len(GOLDEN_ROWS) + ["u"]
    assert {e.table for e in events} == {"public.golden"}

    streamed = _latest_after_rows(events)
    backfilled = _psycopg_rows(dsn, "golden")
    assert sorted(streamed) == sorted(backfilled) == [1, 2, 3, 4]
    mapper = RowMapper(settings.tables[0])
    items: dict[int, dict[str, AttributeValue]] = {}
    for id_, row in backfilled.items():
        key, item = mapper.item(row)
        stream_key, stream_item = mapper.item(streamed[id_])
        assert stream_key == key
        for column in row:  # column by column first: a failure names the type that differs
            assert stream_item.get(column) == item.get(column), f"id {id_} column {column}"
        assert stream_item == item
        items[id_] = item

    one, two, three, four = items[1], items[2], items[3], items[4]
    # Numbers: exact, normalised decimal text.
    assert one["id"] == {"N": "1"}
    assert one["c_num"] == {"N": "99.99"}  # the update
    assert one["c_num_free"] == four["c_num"] == four["c_num_scale"] == four["c_num_free"] == {"N": "0.1"}
    assert three["c_num"] == three["c_num_free"] == three["c_float4"] == {"N": "0"}
    assert two["c_num_scale"] == {"N": "-1234567890123456789012345678.123456789"}
    assert two["c_int8"] == {"N": "-9223372036854775808"}
    assert two["c_float8"] == {"N": "-0." + "0" * 99 + "1"}
    assert three["c_float8"] == {"N": "15" + "0" * 99}
    assert one["c_float8"] == {"N": "3.141592653589793"}
    assert four["c_float4"] == {"N": "0.1"}
    # Text keeps padding and empty strings (only key attributes must be non-empty).
    assert two["c_text"] == {"S": ""}
    assert two["c_char"] == {"S": "     "}
    assert three["c_text"] == {"S": "unicode ✓ 日本語 🙂 'q'"}
    assert one["c_bool"] == {"BOOL": True}
    # Dates and times.
    assert one["c_date"] == {"S": "2024-01-15"}
    assert two["c_date"] == {"S": "0001-01-01"}
    assert one["c_ts"] == {"S": "2024-01-15T10:20:30.123456"}
    assert one["c_ts3"] == {"S": "2024-01-15T10:20:30.123000"}
    assert three["c_ts"] == {"S": "9999-12-31T23:59:59.999999"}
    assert one["c_tstz"] == {"S": "2024-11-03T06:30:00.000000Z"}  # ambiguous 01:30: PostgreSQL takes EST
    assert four["c_tstz"] == {"S": "2024-03-10T07:30:00.000000Z"}  # 03:30 EDT
    assert two["c_tstz"] == {"S": "0001-01-02T12:00:00.000000Z"}
    assert one["c_time"] == {"S": "10:20:30.123456"}
    assert one["c_time3"] == {"S": "10:20:30.123000"}
    assert four["c_timetz"] == {"S": "06:30:00.000000Z"}
    assert three["c_timetz"] == {"S": "13:59:59.999999Z"}
    assert one["c_uuid"] == four["c_uuid"] == {"S": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}
    # JSON: exact numbers, nesting, JSON null as NULL.
    jsonb = one["c_jsonb"]["M"]
    assert jsonb["small"] == {"N": "0.1"}
    assert jsonb["tiny"] == {"N": "0.0000001"}
    assert jsonb["big"] == {"N": "12345678901234567890"}
    assert jsonb["neg"] == {"N": "0"}
    assert jsonb["added"] == {"N": "2.5"}
    assert jsonb["a"] == {"M": {"b": {"L": [{"N": "1"}, {"N": "2.5"}, {"M": {"c": {"NULL": True}}}]}}}
    assert jsonb["s"] == {"S": "héllo é"}
    assert one["c_json"]["M"]["tiny"] == {"N": "0.0000001"}
    assert two["c_jsonb"] == {"L": [{"N": "0.1"}, {"N": "0.0000001"}, {"N": "-5"}, {"N": "1" + "0" * 30}]}
    assert three["c_json"] == {"S": "just a string"}
    assert four["c_json"] == {"NULL": True}
    # Binary and arrays.
    assert one["c_bytea"] == {"B": b"\x00\xff\x10"}
    assert two["c_bytea"] == {"B": b""}
    assert one["c_int_arr"] == {"L": [{"N": "1"}, {"N": "2"}, {"N": "3"}, {"N": "7"}]}
    assert one["c_text_arr"] == {"L": [{"S": "a"}, {"NULL": True}, {"S": "c"}]}
    assert two["c_int_arr"] == {"L": []}
    assert three["c_text_arr"] == {"L": [{"S": ""}, {"S": "with,comma"}, {"S": 'with "quote"'}]}
    # NULL columns are omitted.
    assert "c_null" not in two and one["c_null"] == {"S": "now set"}


TOO_BIG = 12345678901234567890123456789012345678901  # 41 significant digits; DynamoDB holds 38


def test_more_than_38_digits_is_an_error_on_both_paths(isolated: Settings, unique: str) -> None:
    settings = _settings(isolated, "public.too_big", f"too_big_{unique}")
    dsn = _start(
        settings,
        "CREATE TABLE public.too_big (id int4 PRIMARY KEY, amount numeric(50, 0));"
        " ALTER TABLE public.too_big REPLICA IDENTITY FULL",
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO public.too_big VALUES (1, %s)", (TOO_BIG,))
    (raw,) = _consume(settings, topic_for(settings, "public.too_big"), want=1)
    with pytest.raises(CodecError, match=r"column amount: .*41 significant digits") as streamed:
        parse_change_event(raw)
    assert streamed.value.column == "amount"
    with pytest.raises(CodecError, match=r"column amount: .*41 significant digits") as backfilled:
        _psycopg_rows(dsn, "too_big")
    assert backfilled.value.column == "amount"
