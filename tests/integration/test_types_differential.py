"""The type policy on the real pipeline (DESIGN "Type policy"): for every supported PostgreSQL type family
the item the backfill writes (direct read) and the item the bridge writes (Debezium event) are identical,
and each equals what PostgreSQL itself renders (``to_char``, ``trim_scale``, ``encode``, the output
function) or a literal; values without an exact form are per-row errors on both paths; refused types are
named by ``validate`` and stop the backfill before it writes.

The expectations never come from ddbridge's codec: scalar columns are rendered by SQL in the test's own
session, structured ones (json, hstore, arrays) are literals.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest

from bridge.codec import AttributeValue
from bridge.config import KeyAttribute, Settings, TableMapping
from bridge.pgtypes import classify, load_types, table_columns
from connectors.debezium import wait_until_streaming
from ops.initialize import initialize
from ops.stack import LocalStack
from tests.integration.pipeline import BridgeProcess, Cli, dead_letters, dynamo_items, wait_until

PREPARE = """
CREATE EXTENSION IF NOT EXISTS citext; CREATE EXTENSION IF NOT EXISTS hstore; CREATE EXTENSION IF NOT EXISTS ltree;
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN dnum AS numeric(10, 2); CREATE DOMAIN dint AS int4 CHECK (VALUE > 0);
CREATE DOMAIN ddate AS date; CREATE DOMAIN dbool AS bool; CREATE DOMAIN dtext AS text; CREATE DOMAIN dmoney AS money;
"""

N, S, B, BOOL = "N", "S", "B", "BOOL"
TS = "to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
TIME = "to_char({c}::interval, 'HH24:MI:SS.US')"
INTERVAL = (
    "format('P%%sY%%sM%%sDT%%sH%%sM%%sS', extract(year from {c})::int, extract(month from {c})::int, "
    "extract(day from {c})::int, extract(hour from {c})::int, extract(minute from {c})::int, "
    "trim_scale(extract(second from {c})))"
)
OUTPUT = "concat({c})"  # the type's output function (a ::text cast may differ: inet adds /128, char trims)

# (column, declared type, DynamoDB type, SQL rendering the expected value; None: a literal per row)
COLUMNS: list[tuple[str, str, str, str | None]] = [
    ("c_int2", "int2", N, "{c}::text"),
    ("c_int4", "int4", N, "{c}::text"),
    ("c_int8", "int8", N, "{c}::text"),
    ("c_oid", "oid", N, "{c}::text"),
    ("c_num", "numeric", N, "trim_scale({c})::text"),
    ("c_num_p", "numeric(12, 4)", N, "trim_scale({c})::text"),
    ("c_money", "money", N, "trim_scale({c}::numeric)::text"),
    ("c_dmoney", "dmoney", N, "trim_scale({c}::numeric)::text"),
    ("c_f4", "float4", N, "{c}::text"),
    ("c_f8", "float8", N, "{c}::text"),
    ("c_bool", "bool", BOOL, "{c}::text"),
    ("c_text", "text", S, OUTPUT),
    ("c_varchar", "varchar(20)", S, OUTPUT),
    ("c_char", "char(5)", S, OUTPUT),
    ("c_citext", "citext", S, OUTPUT),
    ("c_uuid", "uuid", S, OUTPUT),
    ("c_inet", "inet", S, OUTPUT),
    ("c_cidr", "cidr", S, OUTPUT),
    ("c_mac", "macaddr", S, OUTPUT),
    ("c_mac8", "macaddr8", S, OUTPUT),
    ("c_ltree", "ltree", S, OUTPUT),
    ("c_xml", "xml", S, OUTPUT),
    ("c_tsvector", "tsvector", S, OUTPUT),
    ("c_char1", '"char"', S, OUTPUT),
    ("c_enum", "mood", S, OUTPUT),
    ("c_int4range", "int4range", S, OUTPUT),
    ("c_int8range", "int8range", S, OUTPUT),
    ("c_numrange", "numrange", S, OUTPUT),
    ("c_daterange", "daterange", S, OUTPUT),
    ("c_tsrange", "tsrange", S, OUTPUT),
    ("c_dtext", "dtext", S, OUTPUT),
    ("c_date", "date", S, "to_char({c}, 'YYYY-MM-DD')"),
    ("c_ddate", "ddate", S, "to_char({c}, 'YYYY-MM-DD')"),
    ("c_ts", "timestamp", S, TS),
    ("c_ts3", "timestamp(3)", S, TS),
    ("c_tstz", "timestamptz", S, "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
    ("c_time", "time", S, TIME),
    ("c_time3", "time(3)", S, TIME),
    ("c_timetz", "timetz", S, "to_char(({c} AT TIME ZONE 'UTC')::time::interval, 'HH24:MI:SS.US') || 'Z'"),
    ("c_interval", "interval", S, INTERVAL),
    ("c_dnum", "dnum", N, "trim_scale({c})::text"),
    ("c_dint", "dint", N, "{c}::text"),
    ("c_dbool", "dbool", BOOL, "{c}::text"),
    ("c_bytea", "bytea", B, "encode({c}, 'base64')"),
    ("c_json", "json", S, None),
    ("c_jsonb", "jsonb", S, None),
    ("c_hstore", "hstore", S, None),
    ("c_int_arr", "int4[]", S, None),
    ("c_text_arr", "text[]", S, None),
    ("c_num_arr", "numeric[]", S, None),
    ("c_bool_arr", "bool[]", S, None),
    ("c_date_arr", "date[]", S, None),
    ("c_ts3_arr", "timestamp(3)[]", S, None),
    ("c_tstz_arr", "timestamptz[]", S, None),
    ("c_time_arr", "time[]", S, None),
    ("c_uuid_arr", "uuid[]", S, None),
    ("c_jsonb_arr", "jsonb[]", S, None),
    ("c_bytea_arr", "bytea[]", S, None),
    ("c_enum_arr", "mood[]", S, None),
    ("c_citext_arr", "citext[]", S, None),
    ("c_f8_arr", "float8[]", S, None),
    ("c_inet_arr", "inet[]", S, None),
    ("c_varchar_arr", "varchar[]", S, None),
    ("c_bpchar_arr", "char(2)[]", S, None),
    ("c_ltree_arr", "ltree[]", S, None),
    ("c_range_arr", "int4range[]", S, None),
    ("c_char1_arr", '"char"[]', S, None),
    ("c_i8_arr", "int8[]", S, None),
    ("c_i2_arr", "int2[]", S, None),
    ("c_oid_arr", "oid[]", S, None),
    ("c_json_arr", "json[]", S, None),
    ("c_f4_arr", "float4[]", S, None),
    ("c_mac_arr", "macaddr[]", S, None),
    ("c_mac8_arr", "macaddr8[]", S, None),
    ("c_cidr_arr", "cidr[]", S, None),
    ("c_tsvector_arr", "tsvector[]", S, None),
    ("c_numrange_arr", "numrange[]", S, None),
    ("c_tsrange_arr", "tsrange[]", S, None),
    ("c_daterange_arr", "daterange[]", S, None),
    ("c_int8range_arr", "int8range[]", S, None),
]


def _l(*values: AttributeValue) -> AttributeValue:
    return {"L": list(values)}


NULL: AttributeValue = {"NULL": True}
UUID_TEXT = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

# Each row: SQL literals by column (unlisted columns are NULL) and the literal expectations of the
# structured columns.
ROWS: dict[int, tuple[dict[str, str], dict[str, AttributeValue]]] = {
    1: (
        {
            "c_int2": "1",
            "c_int4": "-7",
            "c_int8": "10000000000",
            "c_oid": "4000000000",
            "c_num": "12.50",
            "c_num_p": "1.5000",
            "c_money": "12.34",
            "c_dmoney": "1000.5",
            "c_f4": "0.1",
            "c_f8": "1.5",
            "c_bool": "true",
            "c_text": "plain",
            "c_varchar": "v",
            "c_char": "ab",
            "c_citext": "AbC",
            "c_uuid": UUID_TEXT.upper(),
            "c_inet": "::ffff:1.2.3.4",
            "c_cidr": "10.0.0.0/8",
            "c_mac": "08:00:2b:01:02:03",
            "c_mac8": "08:00:2b:01:02:03:04:05",
            "c_ltree": "a.b.c",
            "c_xml": "<a>x</a>",
            "c_tsvector": "a fat cat",
            "c_char1": "x",
            "c_enum": "happy",
            "c_int4range": "[1,10]",
            "c_int8range": "empty",
            "c_numrange": "(1.5,2.5]",
            "c_daterange": "[2024-01-01,2024-01-05]",
            "c_tsrange": "[2024-01-01 10:00,2024-02-01)",
            "c_dtext": "dt",
            "c_date": "2024-01-15",
            "c_ddate": "2024-02-29",
            "c_ts": "2024-01-15 10:20:30.123456",
            "c_ts3": "2024-01-15 10:20:30.123",
            "c_tstz": "2024-07-01 12:00:00.5-04",
            "c_time": "10:20:30.5",
            "c_time3": "10:20:30.123",
            "c_timetz": "10:20:30+05:30",
            "c_interval": "1 year 2 mons 3 days 04:05:06.78",
            "c_dnum": "5.10",
            "c_dint": "7",
            "c_dbool": "false",
            "c_bytea": "\\x00ff10",
            "c_json": '{"a": 1.50, "b": [true, null]}',
            "c_jsonb": '{"a": 1.50, "b": [true, null]}',
            "c_hstore": "a=>1, b=>NULL",
            "c_int_arr": "{1,NULL,3}",
            "c_text_arr": '{"a,b","NULL",NULL,"q\\"t"," sp "}',
            "c_num_arr": "{1.50,-2,0.000}",
            "c_bool_arr": "{t,f}",
            "c_date_arr": "{2024-01-15}",
            "c_ts3_arr": '{"2024-01-15 10:20:30.123",NULL}',
            "c_tstz_arr": '{"2024-01-15 10:20:30+00"}',
            "c_time_arr": "{10:20:30}",
            "c_uuid_arr": "{" + UUID_TEXT + "}",
            "c_jsonb_arr": '{"{\\"a\\": 1}"}',
            "c_bytea_arr": '{"\\\\x00ff"}',
            "c_enum_arr": "{happy,sad}",
            "c_citext_arr": '{AbC,"d e"}',
            "c_f8_arr": "{1.5,-0.25}",
            "c_inet_arr": "{::ffff:1.2.3.4}",
            "c_varchar_arr": "{x}",
            "c_bpchar_arr": "{a}",
            "c_ltree_arr": "{a.b,c}",
            "c_range_arr": '{"[1,2)"}',
            "c_char1_arr": "{a,b}",
            "c_i8_arr": "{-9223372036854775808,1}",
            "c_i2_arr": "{1,-2}",
            "c_oid_arr": "{4000000000}",
            "c_json_arr": '{"[1, 2.50]"}',
            "c_f4_arr": "{0.1,1.5}",
            "c_mac_arr": "{08:00:2b:01:02:03}",
            "c_mac8_arr": "{08:00:2b:01:02:03:04:05}",
            "c_cidr_arr": "{10.0.0.0/8}",
            "c_tsvector_arr": '{"a b"}',
            "c_numrange_arr": '{"(1.5,2.5]"}',
            "c_tsrange_arr": '{"[2024-01-01 10:00,2024-02-01)"}',
            "c_daterange_arr": '{"[2024-01-01,2024-01-05]"}',
            "c_int8range_arr": '{empty,"[1,3)"}',
        },
        {
            "c_json": {"M": {"a": {"N": "1.5"}, "b": _l({"BOOL": True}, NULL)}},
            "c_jsonb": {"M": {"a": {"N": "1.5"}, "b": _l({"BOOL": True}, NULL)}},
            "c_hstore": {"M": {"a": {"S": "1"}, "b": NULL}},
            "c_int_arr": _l({"N": "1"}, NULL, {"N": "3"}),
            "c_text_arr": _l({"S": "a,b"}, {"S": "NULL"}, NULL, {"S": 'q"t'}, {"S": " sp "}),
            "c_num_arr": _l({"N": "1.5"}, {"N": "-2"}, {"N": "0"}),
            "c_bool_arr": _l({"BOOL": True}, {"BOOL": False}),
            "c_date_arr": _l({"S": "2024-01-15"}),
            "c_ts3_arr": _l({"S": "2024-01-15T10:20:30.123000"}, NULL),
            "c_tstz_arr": _l({"S": "2024-01-15T10:20:30.000000Z"}),
            "c_time_arr": _l({"S": "10:20:30.000000"}),
            "c_uuid_arr": _l({"S": UUID_TEXT}),
            "c_jsonb_arr": _l({"M": {"a": {"N": "1"}}}),
            "c_bytea_arr": _l({"B": b"\x00\xff"}),
            "c_enum_arr": _l({"S": "happy"}, {"S": "sad"}),
            "c_citext_arr": _l({"S": "AbC"}, {"S": "d e"}),
            "c_f8_arr": _l({"N": "1.5"}, {"N": "-0.25"}),
            "c_inet_arr": _l({"S": "::ffff:1.2.3.4"}),
            "c_varchar_arr": _l({"S": "x"}),
            "c_bpchar_arr": _l({"S": "a "}),
            "c_ltree_arr": _l({"S": "a.b"}, {"S": "c"}),
            "c_range_arr": _l({"S": "[1,2)"}),
            "c_char1_arr": _l({"S": "a"}, {"S": "b"}),
            "c_i8_arr": _l({"N": "-9223372036854775808"}, {"N": "1"}),
            "c_i2_arr": _l({"N": "1"}, {"N": "-2"}),
            "c_oid_arr": _l({"N": "4000000000"}),
            "c_json_arr": _l(_l({"N": "1"}, {"N": "2.5"})),
            "c_f4_arr": _l({"N": "0.1"}, {"N": "1.5"}),
            "c_mac_arr": _l({"S": "08:00:2b:01:02:03"}),
            "c_mac8_arr": _l({"S": "08:00:2b:01:02:03:04:05"}),
            "c_cidr_arr": _l({"S": "10.0.0.0/8"}),
            "c_tsvector_arr": _l({"S": "'a' 'b'"}),
            "c_numrange_arr": _l({"S": "(1.5,2.5]"}),
            "c_tsrange_arr": _l({"S": '["2024-01-01 10:00:00","2024-02-01 00:00:00")'}),
            "c_daterange_arr": _l({"S": "[2024-01-01,2024-01-06)"}),
            "c_int8range_arr": _l({"S": "empty"}, {"S": "[1,3)"}),
        },
    ),
    2: (
        {
            "c_int2": "-32768",
            "c_int4": "2147483647",
            "c_int8": "-9223372036854775808",
            "c_oid": "0",
            "c_num": "-1234567890123456789012345678.1234567890",
            "c_num_p": "-0.0001",
            "c_money": "-0.01",
            "c_f4": "-1.5",
            "c_f8": "-2.25",
            "c_bool": "false",
            "c_text": "",
            "c_varchar": "ünïcödé 🙂",
            "c_char": "",
            "c_citext": "",
            "c_uuid": "00000000-0000-0000-0000-000000000000",
            "c_inet": "192.168.0.1/24",
            "c_cidr": "::/0",
            "c_ltree": "",
            "c_xml": '<a b="1"/>',
            "c_tsvector": "",
            "c_enum": "sad",
            "c_int4range": "(,5)",
            "c_int8range": "[-9223372036854775808,0)",
            "c_numrange": "empty",
            "c_daterange": "[2024-01-01,)",
            "c_tsrange": "(,)",
            "c_dtext": "unicode ✓",
            "c_date": "0001-01-01",
            "c_ddate": "9999-12-31",
            "c_ts": "9999-12-31 23:59:59.999999",
            "c_ts3": "0001-01-01 00:00:00.001",
            "c_tstz": "0001-01-02 12:00:00+00",
            "c_time": "24:00:00",
            "c_time3": "00:00:00",
            "c_timetz": "00:30:00.25+01",
            "c_interval": "-1 year -2 mons +3 days -04:05:06.5",
            "c_dnum": "-0.01",
            "c_dint": "2147483647",
            "c_dbool": "true",
            "c_bytea": "\\x",
            "c_json": '"just a string"',
            "c_jsonb": "[0.1, 1e-7, -5, 1E+30]",
            "c_hstore": "",
            "c_int_arr": "{}",
            "c_text_arr": '{""}',
            "c_num_arr": "{NULL}",
        },
        {
            "c_json": {"S": "just a string"},
            "c_jsonb": _l({"N": "0.1"}, {"N": "0.0000001"}, {"N": "-5"}, {"N": "1" + "0" * 30}),
            "c_hstore": {"M": {}},
            "c_int_arr": _l(),
            "c_text_arr": _l({"S": ""}),
            "c_num_arr": _l(NULL),
        },
    ),
    3: ({}, {}),  # every column NULL: every attribute omitted
}

# Values PostgreSQL holds that no DynamoDB form keeps exactly: a per-row error on both paths.
UNSTORABLE: dict[int, tuple[str, str]] = {
    4: ("c_date", "infinity"),
    5: ("c_ts", "0044-03-15 12:00:00 BC"),
    6: ("c_num", "NaN"),
    7: ("c_text_arr", "{{a,b},{c,d}}"),
}
STREAMED = 100  # the same rows again, inserted while the bridge runs, at id + STREAMED


def _insert(conn: psycopg.Connection[Any], id_: int, values: dict[str, str]) -> None:
    columns = ["id", *values]
    placeholders = ", ".join(["%s"] * len(columns))
    conn.execute(f"INSERT INTO public.types ({', '.join(columns)}) VALUES ({placeholders})", [id_, *values.values()])


def _expected(conn: psycopg.Connection[Any]) -> dict[int, dict[str, AttributeValue]]:
    """Every row's item as PostgreSQL renders each scalar column, plus the literal structured ones."""
    conn.execute("SET DateStyle = 'ISO, MDY'")
    rendered = [
        (name, kind, f"CASE WHEN {name} IS NOT NULL THEN {expr.format(c=name)} END")
        for name, _, kind, expr in COLUMNS
        if expr is not None
    ]
    query = "SELECT id, " + ", ".join(expr for _, _, expr in rendered) + " FROM public.types WHERE id = ANY(%s)"
    out: dict[int, dict[str, AttributeValue]] = {}
    for id_, *values in conn.execute(query, (list(ROWS),)).fetchall():
        item: dict[str, AttributeValue] = {"id": {"N": str(id_)}}
        for (name, kind, _), value in zip(rendered, values, strict=True):
            if value is None:
                continue
            if kind == B:
                item[name] = {"B": base64.b64decode(value)}
            elif kind == BOOL:
                item[name] = {"BOOL": value == "true"}
            else:
                item[name] = {kind: value}
        item.update(ROWS[id_][1])
        out[id_] = item
    return out


@pytest.mark.parametrize("converter", ["json", "avro"])
def test_every_supported_type_is_the_same_on_both_paths_and_as_postgresql_renders_it(
    isolated: Settings, stack: LocalStack, tmp_path: Path, converter: Literal["json", "avro"]
) -> None:
    """With either converter: Debezium's JSON with inline schemas, or Avro through the schema registry."""
    mapping = TableMapping(
        source="public.types",
        target=isolated.tables[0].target.replace("Payments", "Types"),
        primary_key=["id"],
        partition_key=KeyAttribute(name="id", template="{id}", type="N"),
        attribute_naming="same",
    )
    settings = isolated.model_copy(
        update={
            "tables": [mapping],
            "connect": isolated.connect.model_copy(update={"converter": converter}),
            "registry": isolated.registry.model_copy(update={"url": stack.registry_url}),
        }
    )
    dsn = settings.source.dsn.get_secret_value()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(PREPARE)
        ddl = ", ".join(f"{name} {declared}" for name, declared, _, _ in COLUMNS)
        conn.execute(f"CREATE TABLE public.types (id int4 PRIMARY KEY, {ddl})")
        conn.execute("SET TimeZone = 'America/New_York'")  # the values' zones come from the literals
        for id_, (values, _) in ROWS.items():
            _insert(conn, id_, values)
        for id_, (column, value) in UNSTORABLE.items():
            _insert(conn, id_, {column: value})
    initialize(settings)
    wait_until_streaming(settings)
    bridge = BridgeProcess(settings, tmp_path).start()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET TimeZone = 'Asia/Kolkata'")
            for id_, (values, _) in ROWS.items():
                _insert(conn, id_ + STREAMED, values)
            for id_, (column, value) in UNSTORABLE.items():
                _insert(conn, id_ + STREAMED, {column: value})
        cli = Cli(settings, tmp_path)
        done = cli.run("backfill", "--migration-id", "types", "--detailed-errors")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        wait_until(lambda: len(dynamo_items(settings)) == 2 * len(ROWS), 90, "every storable row in DynamoDB")
        letters = dead_letters(settings, want=len(UNSTORABLE))
        assert bridge.alive(), bridge.output()
    finally:
        bridge.stop()

    items = {int(key[0][1]): item for key, item in dynamo_items(settings).items()}
    with psycopg.connect(dsn, autocommit=True) as conn:
        expected = _expected(conn)
    for id_, want in expected.items():
        backfilled, streamed = items[id_], dict(items[id_ + STREAMED])
        streamed["id"] = {"N": str(id_)}
        for name, *_ in COLUMNS:  # column by column first: a failure names the type that differs
            assert streamed.get(name) == backfilled.get(name), f"row {id_} {name}: stream vs backfill"
            assert backfilled.get(name) == want.get(name), f"row {id_} {name}: backfill vs PostgreSQL"
        assert backfilled == want and streamed == want

    # The unstorable rows: recorded by the backfill with their column, dead-lettered by the bridge.
    errors = [json.loads(line) for line in (tmp_path / "types.errors.jsonl").read_text().splitlines()]
    assert sorted((int(e["key"]["id"]), e["column"]) for e in errors) == sorted(
        (id_ + offset, column) for id_, (column, _) in UNSTORABLE.items() for offset in (0, STREAMED)
    )
    reasons = sorted(letter["ddbridge.error.message"].decode() for letter in letters)
    assert len(reasons) == len(UNSTORABLE), reasons
    assert all(letter["ddbridge.error.class"] == b"CodecError" for letter in letters)
    for column, _ in UNSTORABLE.values():
        assert any(f"column {column}:" in reason for reason in reasons), (column, reasons)


REFUSED = {
    "c_bit": "bit(4)",
    "c_name": "name",
    "c_point": "point",
    "c_comp": "pair",
    "c_dnum_arr": "dnum[]",
    "c_money_arr": "money[]",
    "c_interval_arr": "interval[]",
    "c_tstzrange": "tstzrange",
    "c_multi": "int4[][]",
    "c_generated": "int4 GENERATED ALWAYS AS (id * 2) STORED",
    "c_lsn": "pg_lsn",
    "c_timetz_arr": "timetz[]",
}


@pytest.mark.parametrize("excluded", [False, True])
def test_refused_types_are_named_by_validate_and_stop_the_backfill(
    isolated: Settings, tmp_path: Path, excluded: bool
) -> None:
    mapping = TableMapping(
        source="public.refused",
        target=isolated.tables[0].target.replace("Payments", "Refused"),
        primary_key=["id"],
        partition_key=KeyAttribute(name="id", template="{id}", type="N"),
        exclude_columns=list(REFUSED) if excluded else [],
    )
    settings = isolated.model_copy(update={"tables": [mapping]})
    with psycopg.connect(settings.source.dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute(PREPARE + "CREATE TYPE pair AS (a int, b text);")
        ddl = ", ".join(f"{name} {declared}" for name, declared in REFUSED.items())
        conn.execute(f"CREATE TABLE public.refused (id int4 PRIMARY KEY, amount numeric, {ddl})")
        conn.execute("INSERT INTO public.refused (id, amount, c_bit, c_name) VALUES (1, 1.5, '1010', 'n')")
    cli = Cli(settings, tmp_path)
    checked = cli.run("validate", "--table", "public.refused")
    out = checked.stdout + checked.stderr
    assert "Traceback" not in out
    if excluded:
        assert f"Every type of 2 columns is supported ({len(REFUSED)} excluded)" in out, out
        return
    assert checked.returncode == 1, out
    assert f"{len(REFUSED)} of {len(REFUSED) + 2} columns of public.refused cannot be copied exactly" in out, out
    for column in REFUSED:
        line = next((x for x in out.splitlines() if f"public.refused.{column} (" in x), None)
        assert line is not None, (column, out)
    assert "Debezium sends name columns as NULL" in out
    assert "multi-dimensional" in out and "generated columns" in out
    copied = cli.run("backfill", "--migration-id", "refused", "--no-stream")
    assert copied.returncode != 0
    assert "cannot copy exactly" in copied.stdout + copied.stderr and "c_bit (bit(4))" in copied.stdout + copied.stderr
    assert "Traceback" not in copied.stdout + copied.stderr


def test_every_type_the_policy_supports_is_covered_by_the_differential_test(isolated: Settings) -> None:
    """Enumerated from pg_type (built-ins, the extensions' types, enums, domains, ranges, arrays): each one
    the policy supports maps to a codec type that a column of the differential table exercises, and each
    one it refuses says why. A type PostgreSQL adds in a new version is refused until a test covers it."""
    with psycopg.connect(isolated.source.dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute(PREPARE)
        ddl = ", ".join(f"{name} {declared}" for name, declared, _, _ in COLUMNS)
        conn.execute(f"CREATE TABLE public.coverage (id int4 PRIMARY KEY, {ddl})")
        types = load_types(conn)
        covered = {c.decision.codec for c in table_columns(conn, "public", "coverage", types)}
    decisions = {
        f"{t.schema}.{t.name}": classify(oid, types)
        for oid, t in types.items()
        if t.schema not in ("information_schema", "pg_toast") and t.typtype in "bedrm" and not t.name.startswith("pg_")
    }
    supported = {name: d.codec for name, d in decisions.items() if d.codec is not None}
    assert len(supported) >= 60, supported
    uncovered = {name: codec for name, codec in supported.items() if codec not in covered}
    assert not uncovered, f"supported types without a differential column: {uncovered}"
    assert all(d.refused for d in decisions.values() if d.codec is None)
