"""The value codec (bridge/codec.py): canonical forms, limits, and agreement of the Debezium and psycopg paths."""

from __future__ import annotations

import base64
import re
import time as time_module
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bridge.codec import (
    AttributeValue,
    array_elements,
    float_number,
    from_debezium,
    from_text,
    iso_time,
    iso_timestamp,
    json_text,
    json_value,
    number,
    scalar_text,
)
from bridge.errors import CodecError, DdbridgeError

# -- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("100.00", "100"),
        ("0.10", "0.1"),
        ("0.1000000000", "0.1"),
        ("-0.000", "0"),
        ("0", "0"),
        ("-12.50", "-12.5"),
        ("1E+30", "1" + "0" * 30),
        ("1e-7", "0.0000001"),
        ("1200", "1200"),
        (Decimal("12.340"), "12.34"),
        (Decimal("-0"), "0"),
        (42, "42"),
        (-9223372036854775808, "-9223372036854775808"),
        ("9.9E+125", "99" + "0" * 124),
        ("1E-130", "0." + "0" * 129 + "1"),
    ],
)
def test_number_is_exact_and_normalised(value: Decimal | int | str, expected: str) -> None:
    assert number(value) == {"N": expected}


@pytest.mark.parametrize(
    "value",
    [
        "12345678901234567890123456789012345678",  # 38 digits
        "-1234567890123456789012345678.1234567891",
        "0.12345678901234567890123456789012345678",
        "12345678901234567890123456789012345678" + "0" * 20,  # trailing zeros are not significant
    ],
)
def test_number_keeps_38_significant_digits_exactly(value: str) -> None:
    # Decimal's default context has 28 digits: nothing may be rounded to it.
    assert number(value) == {"N": value}
    assert number(Decimal(value)) == {"N": value}


@pytest.mark.parametrize(
    ("value", "digits"),
    [
        ("123456789012345678901234567890123456789", 39),
        ("12345678901234567890123456789012345678901", 41),
        ("-1.23456789012345678901234567890123456789", 39),
        (Decimal("1234567890123456789012345678901234567890123456789.5"), 50),
    ],
)
def test_more_than_38_significant_digits_is_an_error_not_a_rounding(value: str | Decimal, digits: int) -> None:
    with pytest.raises(CodecError, match=f"has {digits} significant digits; DynamoDB numbers hold at most 38"):
        number(value)


@pytest.mark.parametrize("value", ["1E+126", "-1E+126", "1E-131", "1e999999999999"])
def test_number_outside_dynamodb_range_is_an_error(value: str) -> None:
    with pytest.raises(CodecError, match="outside DynamoDB's number range"):
        number(value)


@pytest.mark.parametrize("value", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", Decimal("NaN"), Decimal("-Inf")])
def test_number_rejects_nan_and_infinities(value: str | Decimal) -> None:
    with pytest.raises(CodecError, match="NaN and infinities are not allowed"):
        number(value)


@pytest.mark.parametrize("value", ["abc", "", "1,5", "0x10"])
def test_number_rejects_text(value: str) -> None:
    with pytest.raises(CodecError, match="is not a number"):
        number(value)


def test_codec_error_names_the_column() -> None:
    error = CodecError("too long", "amount")
    assert str(error) == "column amount: too long"
    assert (error.reason, error.column) == ("too long", "amount")
    assert str(CodecError("too long")) == "too long"
    assert isinstance(error, DdbridgeError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.1"),
        (1.5, "1.5"),
        (3.141592653589793, "3.141592653589793"),
        (-0.0, "0"),
        (1e-7, "0.0000001"),
        (1.5e100, "15" + "0" * 99),
        (0.1 + 0.2, "0.30000000000000004"),  # the shortest repr that round-trips, not a rounding
        (1e16, "10000000000000000"),
    ],
)
def test_float_is_its_shortest_repr(value: float, expected: str) -> None:
    assert float_number(value) == {"N": expected}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_float_rejects_nan_and_infinities(value: float) -> None:
    with pytest.raises(CodecError, match="NaN and infinities are not allowed"):
        float_number(value)


# -- dates and times ------------------------------------------------------------------------------


def test_iso_timestamp_has_microseconds_and_aware_values_are_utc() -> None:
    assert iso_timestamp(datetime(2024, 1, 15, 10, 20, 30)) == "2024-01-15T10:20:30.000000"
    assert iso_timestamp(datetime(2024, 1, 15, 10, 20, 30, 123000)) == "2024-01-15T10:20:30.123000"
    assert iso_timestamp(datetime(1, 1, 1)) == "0001-01-01T00:00:00.000000"
    assert iso_timestamp(datetime(2024, 1, 15, 10, 0, tzinfo=UTC)) == "2024-01-15T10:00:00.000000Z"
    new_york = ZoneInfo("America/New_York")
    assert iso_timestamp(datetime(2024, 1, 15, 10, 0, tzinfo=new_york)) == "2024-01-15T15:00:00.000000Z"
    assert iso_timestamp(datetime(2024, 7, 15, 10, 0, tzinfo=new_york)) == "2024-07-15T14:00:00.000000Z"
    kolkata = timezone(timedelta(hours=5, minutes=30))
    assert iso_timestamp(datetime(2024, 1, 1, 2, 0, 0, 1, tzinfo=kolkata)) == "2023-12-31T20:30:00.000001Z"


def test_iso_time_has_microseconds_and_zoned_times_are_utc() -> None:
    assert iso_time(time(10, 20, 30)) == "10:20:30.000000"
    assert iso_time(time(23, 59, 59, 999999)) == "23:59:59.999999"
    assert iso_time(time(10, 20, 30, 500000, tzinfo=UTC)) == "10:20:30.500000Z"
    assert iso_time(time(12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))) == "06:30:00.000000Z"
    assert iso_time(time(23, 0, tzinfo=timezone(timedelta(hours=-14)))) == "13:00:00.000000Z"  # wraps midnight
    assert iso_time(time(1, 0, tzinfo=timezone(timedelta(hours=2)))) == "23:00:00.000000Z"


# One instant, 2024-01-15 10:20:30.123 UTC, in every Debezium unit.
MILLIS = 1705314030123


@pytest.mark.parametrize(
    ("semantic", "value"),
    [
        ("io.debezium.time.Timestamp", MILLIS),
        ("io.debezium.time.MicroTimestamp", MILLIS * 1000),
        ("io.debezium.time.NanoTimestamp", MILLIS * 1_000_000),
    ],
)
def test_debezium_timestamp_units(semantic: str, value: int) -> None:
    assert from_debezium("TIMESTAMP", value, semantic) == {"S": "2024-01-15T10:20:30.123000"}


@pytest.mark.parametrize(
    ("semantic", "value", "expected"),
    [
        ("io.debezium.time.MicroTimestamp", 1705314030123456, "2024-01-15T10:20:30.123456"),
        ("io.debezium.time.MicroTimestamp", -62135596800000000, "0001-01-01T00:00:00.000000"),
        ("io.debezium.time.MicroTimestamp", 253402300799999999, "9999-12-31T23:59:59.999999"),
        ("io.debezium.time.Timestamp", -62135596799999, "0001-01-01T00:00:00.001000"),
        ("io.debezium.time.Timestamp", -1, "1969-12-31T23:59:59.999000"),
        ("io.debezium.time.NanoTimestamp", 1999, "1970-01-01T00:00:00.000001"),
        (None, 0, "1970-01-01T00:00:00.000000"),  # no semantic name: microseconds
    ],
)
def test_debezium_timestamp_edges(semantic: str | None, value: int, expected: str) -> None:
    assert from_debezium("TIMESTAMP", value, semantic) == {"S": expected}


@pytest.mark.parametrize(
    ("semantic", "value"),
    [
        ("io.debezium.time.Time", 37230123),
        ("io.debezium.time.MicroTime", 37230123000),
        ("io.debezium.time.NanoTime", 37230123000000),
    ],
)
def test_debezium_time_units(semantic: str, value: int) -> None:
    assert from_debezium("TIME", value, semantic) == {"S": "10:20:30.123000"}


def test_debezium_dates_and_zoned_values() -> None:
    assert from_debezium("DATE", 19737, "io.debezium.time.Date") == {"S": "2024-01-15"}
    assert from_debezium("DATE", -719162, "io.debezium.time.Date") == {"S": "0001-01-01"}
    assert from_debezium("DATE", 2932896, "io.debezium.time.Date") == {"S": "9999-12-31"}
    assert from_debezium("TIMESTAMPTZ", "2024-11-03T06:30:00.000000Z") == {"S": "2024-11-03T06:30:00.000000Z"}
    assert from_debezium("TIMESTAMPTZ", "2024-07-01T16:00:00.5Z") == {"S": "2024-07-01T16:00:00.500000Z"}
    assert from_debezium("TIMESTAMPTZ", "2024-07-01T16:00:00Z") == {"S": "2024-07-01T16:00:00.000000Z"}
    assert from_debezium("TIMESTAMPTZ", "2024-07-01T18:00:00+02:00") == {"S": "2024-07-01T16:00:00.000000Z"}
    assert from_debezium("TIMETZ", "15:20:30.5Z", "io.debezium.time.ZonedTime") == {"S": "15:20:30.500000Z"}
    assert from_debezium("TIMETZ", "00:00:00Z") == {"S": "00:00:00.000000Z"}


# -- JSON -----------------------------------------------------------------------------------------


def test_json_numbers_stay_exact() -> None:
    doc = '{"small": 0.1, "tiny": 1e-7, "big": 12345678901234567890, "dec": 2.50, "neg": -0.0, "exp": 1E+30}'
    assert json_text(doc) == {
        "M": {
            "small": {"N": "0.1"},
            "tiny": {"N": "0.0000001"},
            "big": {"N": "12345678901234567890"},
            "dec": {"N": "2.5"},
            "neg": {"N": "0"},
            "exp": {"N": "1" + "0" * 30},
        }
    }
    # Not through a float: 0.1 + 0.2 as decimals is exactly 0.3.
    assert json_text("0.30000000000000000000001") == {"N": "0.30000000000000000000001"}


def test_json_structure() -> None:
    doc = '{"a": {"b": [1, true, false, null, "x", {}, []]}, "é": "ü"}'
    assert json_text(doc) == {
        "M": {
            "a": {
                "M": {
                    "b": {
                        "L": [
                            {"N": "1"},
                            {"BOOL": True},  # a bool, never the number 1
                            {"BOOL": False},
                            {"NULL": True},
                            {"S": "x"},
                            {"M": {}},
                            {"L": []},
                        ]
                    }
                }
            },
            "é": {"S": "ü"},
        }
    }
    assert json_text("null") == {"NULL": True}
    assert json_text('"just a string"') == {"S": "just a string"}
    assert json_text("[]") == {"L": []}


def test_json_errors() -> None:
    with pytest.raises(CodecError, match="invalid JSON"):
        json_text("{not json")
    with pytest.raises(CodecError, match="41 significant digits"):
        json_text('{"n": 12345678901234567890123456789012345678901}')
    with pytest.raises(CodecError, match="unsupported JSON value"):
        json_value({1, 2})


def test_json_value_of_python_objects() -> None:
    assert json_value({"f": 0.1, "d": Decimal("1.50"), "i": 3, "b": False, "n": None}) == {
        "M": {"f": {"N": "0.1"}, "d": {"N": "1.5"}, "i": {"N": "3"}, "b": {"BOOL": False}, "n": {"NULL": True}}
    }


# -- per column type: Debezium and PostgreSQL's text output --------------------------------------

JSON_DOC = '{"a": [1, 2.50, null], "tiny": 1e-7}'

# (codec type, Debezium JSON value, Debezium semantic name, PostgreSQL output text, expected attribute value).
# The texts are what PostgreSQL prints in ddbridge's read session (DateStyle ISO, TimeZone UTC, IntervalStyle
# iso_8601, bytea_output hex); the Debezium values were read off real Debezium 3.6 events of the same values.
SAME_VALUES: list[tuple[str, Any, str | None, str | None, AttributeValue | None]] = [
    ("INT2", -32768, None, "-32768", {"N": "-32768"}),
    ("INT4", 0, None, "0", {"N": "0"}),
    ("INT8", 9223372036854775807, None, "9223372036854775807", {"N": "9223372036854775807"}),
    ("OID", 4000000000, None, "4000000000", {"N": "4000000000"}),
    ("NUMERIC", "100.00", None, "100.00", {"N": "100"}),
    ("NUMERIC", "-0.010", None, "-0.010", {"N": "-0.01"}),
    ("NUMERIC", "1.5000000000", None, "1.5000000000", {"N": "1.5"}),
    ("MONEY", "-0.01", None, "-0.01", {"N": "-0.01"}),  # read as money::numeric
    ("FLOAT4", 0.1, None, "0.1", {"N": "0.1"}),
    ("FLOAT8", -1e-100, None, "-1e-100", {"N": "-0." + "0" * 99 + "1"}),
    ("FLOAT8", 2, None, "2", {"N": "2"}),  # a JSON integer for a whole double
    ("FLOAT8", -0.0, None, "-0", {"N": "0"}),
    ("TEXT", "", None, "", {"S": ""}),
    ("VARCHAR", "ünïcödé 🙂", None, "ünïcödé 🙂", {"S": "ünïcödé 🙂"}),
    ("BPCHAR", "ab   ", None, "ab   ", {"S": "ab   "}),
    ("CITEXT", "AbC", None, "AbC", {"S": "AbC"}),
    ("INET", "::ffff:1.2.3.4", None, "::ffff:1.2.3.4", {"S": "::ffff:1.2.3.4"}),
    ("INT4RANGE", "[1,10)", None, "[1,10)", {"S": "[1,10)"}),
    ("BOOL", True, None, "t", {"BOOL": True}),
    ("BOOL", False, None, "f", {"BOOL": False}),
    ("DATE", 19737, "io.debezium.time.Date", "2024-01-15", {"S": "2024-01-15"}),
    ("DATE", -719162, "io.debezium.time.Date", "0001-01-01", {"S": "0001-01-01"}),
    ("DATE", 2932896, "io.debezium.time.Date", "9999-12-31", {"S": "9999-12-31"}),
    (
        "TIMESTAMP",
        1705314030123456,
        "io.debezium.time.MicroTimestamp",
        "2024-01-15 10:20:30.123456",
        {"S": "2024-01-15T10:20:30.123456"},
    ),
    (
        "TIMESTAMP",
        1705314030123,
        "io.debezium.time.Timestamp",
        "2024-01-15 10:20:30.123",
        {"S": "2024-01-15T10:20:30.123000"},
    ),
    (
        "TIMESTAMP",
        1705314030000,
        "io.debezium.time.Timestamp",
        "2024-01-15 10:20:30",
        {"S": "2024-01-15T10:20:30.000000"},
    ),
    (
        "TIMESTAMPTZ",
        "2024-03-10T07:30:00.000000Z",
        "io.debezium.time.ZonedTimestamp",
        "2024-03-10 07:30:00+00",
        {"S": "2024-03-10T07:30:00.000000Z"},
    ),
    (
        "TIMESTAMPTZ",
        "2024-01-15T10:20:30.500000Z",
        "io.debezium.time.ZonedTimestamp",
        "2024-01-15 10:20:30.5+00",
        {"S": "2024-01-15T10:20:30.500000Z"},
    ),
    ("TIME", 37230123456, "io.debezium.time.MicroTime", "10:20:30.123456", {"S": "10:20:30.123456"}),
    ("TIME", 37230123, "io.debezium.time.Time", "10:20:30.123", {"S": "10:20:30.123000"}),
    ("TIME", 86400000000, "io.debezium.time.MicroTime", "24:00:00", {"S": "24:00:00.000000"}),
    ("TIME", 86400000, "io.debezium.time.Time", "24:00:00", {"S": "24:00:00.000000"}),
    ("TIMETZ", "04:50:30Z", "io.debezium.time.ZonedTime", "10:20:30+05:30", {"S": "04:50:30.000000Z"}),
    ("TIMETZ", "09:00:00Z", "io.debezium.time.ZonedTime", "10:00:00+01", {"S": "09:00:00.000000Z"}),
    ("INTERVAL", "P1Y2M3DT4H5M6.78S", "io.debezium.time.Interval", "P1Y2M3DT4H5M6.78S", {"S": "P1Y2M3DT4H5M6.78S"}),
    ("INTERVAL", "P0Y0M1DT0H0M0S", "io.debezium.time.Interval", "P1D", {"S": "P0Y0M1DT0H0M0S"}),
    ("INTERVAL", "P0Y0M0DT0H0M0S", "io.debezium.time.Interval", "PT0S", {"S": "P0Y0M0DT0H0M0S"}),
    ("INTERVAL", "P0Y0M0DT0H0M1.5S", "io.debezium.time.Interval", "PT1.5S", {"S": "P0Y0M0DT0H0M1.5S"}),
    ("INTERVAL", "P0Y0M-1DT0H0M0.000001S", None, "P-1DT0.000001S", {"S": "P0Y0M-1DT0H0M0.000001S"}),
    ("INTERVAL", "P0Y1M-1DT25H0M0S", None, "P1M-1DT25H", {"S": "P0Y1M-1DT25H0M0S"}),
    ("INTERVAL", "P-1Y-2M3DT-4H-5M-6S", None, "P-1Y-2M3DT-4H-5M-6S", {"S": "P-1Y-2M3DT-4H-5M-6S"}),
    (
        "UUID",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "io.debezium.data.Uuid",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        {"S": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
    ),
    (
        "JSONB",
        JSON_DOC,
        "io.debezium.data.Json",
        JSON_DOC,
        {"M": {"a": {"L": [{"N": "1"}, {"N": "2.5"}, {"NULL": True}]}, "tiny": {"N": "0.0000001"}}},
    ),
    ("JSON", "null", "io.debezium.data.Json", "null", {"NULL": True}),
    (
        "HSTORE",
        '{"a":"1","b":null}',
        "io.debezium.data.Json",
        '"a"=>"1", "b"=>NULL',
        {"M": {"a": {"S": "1"}, "b": {"NULL": True}}},
    ),
    ("HSTORE", "{}", "io.debezium.data.Json", "", {"M": {}}),
    (
        "HSTORE",
        '{"k \\"q\\"":"v\\\\"}',
        "io.debezium.data.Json",
        '"k \\"q\\""=>"v\\\\"',
        {"M": {'k "q"': {"S": "v\\"}}},
    ),
    ("BYTEA", "AP8Q", None, "\\x00ff10", {"B": b"\x00\xff\x10"}),
    ("BYTEA", "", None, "\\x", {"B": b""}),
    ("_INT4", [1, None, -3], None, "{1,NULL,-3}", {"L": [{"N": "1"}, {"NULL": True}, {"N": "-3"}]}),
    ("_TEXT", ["a", None, ""], None, '{a,NULL,""}', {"L": [{"S": "a"}, {"NULL": True}, {"S": ""}]}),
    (
        "_TEXT",
        ["a,b", "NULL", None, "\\x", " sp "],
        None,
        '{"a,b","NULL",NULL,"\\\\x"," sp "}',
        {"L": [{"S": "a,b"}, {"S": "NULL"}, {"NULL": True}, {"S": "\\x"}, {"S": " sp "}]},
    ),
    ("_NUMERIC", ["0.10", None], None, "{0.10,NULL}", {"L": [{"N": "0.1"}, {"NULL": True}]}),
    ("_BOOL", [], None, "{}", {"L": []}),
    (
        "_TIMESTAMP",
        [1705314030123, None],
        "io.debezium.time.Timestamp",  # arrays: the items' semantic name
        '{"2024-01-15 10:20:30.123",NULL}',
        {"L": [{"S": "2024-01-15T10:20:30.123000"}, {"NULL": True}]},
    ),
    ("_BYTEA", ["AP8="], None, '{"\\\\x00ff"}', {"L": [{"B": b"\x00\xff"}]}),
    ("_JSONB", ['{"a": 1}'], "io.debezium.data.Json", '{"{\\"a\\": 1}"}', {"L": [{"M": {"a": {"N": "1"}}}]}),
    ("TEXT", None, None, None, None),  # NULL: the attribute is omitted
    ("_TEXT", None, None, None, None),
]


@pytest.mark.parametrize(("codec_type", "dbz", "semantic", "text", "expected"), SAME_VALUES)
def test_both_paths_give_the_same_value(
    codec_type: str, dbz: Any, semantic: str | None, text: str | None, expected: AttributeValue | None
) -> None:
    assert from_debezium(codec_type, dbz, semantic) == expected
    assert from_text(codec_type, text) == expected


def test_type_names_are_case_insensitive() -> None:
    assert from_debezium("int4", 7) == from_text("int4", "7") == {"N": "7"}
    assert from_debezium("_text", ["x"]) == from_text("_text", "{x}") == {"L": [{"S": "x"}]}


@pytest.mark.parametrize(
    ("codec_type", "value"),
    [("NUMERIC", "NaN"), ("NUMERIC", "NAN"), ("NUMERIC", "Infinity"), ("FLOAT8", "NaN"), ("FLOAT4", "-Infinity")],
)
def test_nan_and_infinity_are_errors_on_both_paths(codec_type: str, value: str) -> None:
    with pytest.raises(CodecError, match="cannot be stored as a DynamoDB number"):
        from_debezium(codec_type, value)
    with pytest.raises(CodecError, match="NaN and infinities are not allowed"):
        from_text(codec_type, value)


# Debezium's values read off real events: 'infinity', '-infinity', year 10000, BC.
@pytest.mark.parametrize(
    ("codec_type", "dbz", "semantic", "text"),
    [
        ("DATE", -2147472692, "io.debezium.time.Date", "infinity"),
        ("DATE", -2147472691, "io.debezium.time.Date", "-infinity"),
        ("DATE", 2932897, "io.debezium.time.Date", "10000-01-01"),
        ("DATE", -719528, "io.debezium.time.Date", "0001-01-01 BC"),
        ("TIMESTAMP", 9223372036825200000, "io.debezium.time.MicroTimestamp", "infinity"),
        ("TIMESTAMP", -9223372036832400000, "io.debezium.time.MicroTimestamp", "-infinity"),
        ("TIMESTAMP", -63517780800000000, "io.debezium.time.MicroTimestamp", "0044-03-15 12:00:00 BC"),
        ("TIMESTAMPTZ", "infinity", "io.debezium.time.ZonedTimestamp", "infinity"),
        ("TIMESTAMPTZ", "+12000-01-01T00:00:00.000000Z", "io.debezium.time.ZonedTimestamp", "12000-01-01 00:00:00+00"),
        ("_DATE", [-622191234], "io.debezium.time.Date", "{infinity}"),
    ],
)
def test_values_without_an_exact_form_are_errors_on_both_paths(
    codec_type: str, dbz: Any, semantic: str, text: str
) -> None:
    with pytest.raises(CodecError, match="no exact DynamoDB form"):
        from_debezium(codec_type, dbz, semantic)
    with pytest.raises(CodecError, match="no exact DynamoDB form"):
        from_text(codec_type, text)


def test_timetz_at_24_is_refused_where_the_stream_loses_it() -> None:
    # Debezium sends timetz '24:00:00+00' as '00:00:00Z': the direct read refuses the row, so the
    # reconciler reports it instead of passing a value the stream changed.
    with pytest.raises(CodecError, match="24:00 with a zone"):
        from_text("TIMETZ", "24:00:00+00")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{{1,2},{3,4}}", "multi-dimensional"),
        ("[0:1]={5,6}", "lower bound other than 1"),
        ("not an array", "is not an array"),
    ],
)
def test_arrays_the_stream_cannot_carry_are_errors(text: str, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        from_text("_INT4", text)


def test_nested_text_arrays_from_debezium_are_errors() -> None:
    # What Debezium 3.6 sends for text[][] '{{a,b},{c,d}}': Java's toString of the inner arrays.
    with pytest.raises(CodecError, match="multi-dimensional"):
        from_debezium("_TEXT", ["[Ljava.lang.String;@2401aab8", "[Ljava.lang.String;@742d61ad"])


def test_unsupported_types_are_errors() -> None:
    with pytest.raises(CodecError, match="PostgreSQL type POINT has no exact DynamoDB form"):
        from_debezium("POINT", {"x": 1.0, "y": 2.0})
    with pytest.raises(CodecError, match="PostgreSQL type POINT has no exact DynamoDB form"):
        from_text("POINT", "(1,2)")
    with pytest.raises(CodecError, match="no exact DynamoDB form"):
        from_text("DATE", "2024-1-15")


@pytest.mark.parametrize(
    ("codec_type", "value"),
    [("INT4", "7"), ("INT4", True), ("BOOL", "t"), ("TEXT", 5), ("NUMERIC", 1.5), ("_INT4", 5), ("BYTEA", "%%")],
)
def test_debezium_values_of_the_wrong_shape_are_errors(codec_type: str, value: Any) -> None:
    with pytest.raises(CodecError):
        from_debezium(codec_type, value)


# -- key text ---------------------------------------------------------------------------------------


def test_scalar_text() -> None:
    assert scalar_text({"S": "a#b"}) == "a#b"
    assert scalar_text({"S": ""}) == ""
    assert scalar_text({"N": "12.5"}) == "12.5"
    assert scalar_text({"BOOL": True}) == "true"
    assert scalar_text({"BOOL": False}) == "false"
    assert scalar_text({"B": b"\x00\xff\x10"}) == "AP8Q" == base64.b64encode(b"\x00\xff\x10").decode()
    assert scalar_text(from_text("DATE", "2024-01-15") or {}) == "2024-01-15"


@pytest.mark.parametrize("value", [{"L": []}, {"M": {}}, {"NULL": True}])
def test_scalar_text_rejects_non_scalars(value: AttributeValue) -> None:
    with pytest.raises(CodecError, match=f"a {next(iter(value))} value cannot be part of a key"):
        scalar_text(value)


# -- what mutation testing found untested (make mutants) ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15 10:00:00-05", "2024-01-15T15:00:00.000000Z"),  # a negative offset is added back
        ("2024-01-15 10:00:00.25-03:30", "2024-01-15T13:30:00.250000Z"),
        ("1900-01-01 12:00:00+05:53:28", "1900-01-01T06:06:32.000000Z"),  # a historical offset with seconds
        ("1900-01-01 12:00:00-00:17:30", "1900-01-01T12:17:30.000000Z"),
    ],
)
def test_zoned_timestamps_with_negative_offsets_and_offset_seconds_are_exact(text: str, expected: str) -> None:
    assert from_text("TIMESTAMPTZ", text) == {"S": expected}
    assert from_debezium("TIMESTAMPTZ", text.replace(" ", "T")) == {"S": expected}


def test_zoned_times_with_negative_offsets_are_exact() -> None:
    assert from_text("TIMETZ", "10:00:00-05") == {"S": "15:00:00.000000Z"}
    assert from_text("TIMETZ", "23:30:00.5-02:30:15") == {"S": "02:00:15.500000Z"}


def test_aware_timestamps_are_utc_whatever_the_machines_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time_module.tzset()
    try:
        new_york = ZoneInfo("America/New_York")
        assert iso_timestamp(datetime(2024, 1, 15, 10, 0, tzinfo=new_york)) == "2024-01-15T15:00:00.000000Z"
    finally:
        monkeypatch.undo()
        time_module.tzset()


def test_a_nano_time_is_truncated_to_microseconds_like_a_nano_timestamp() -> None:
    assert from_debezium("TIME", 37230123000999, "io.debezium.time.NanoTime") == {"S": "10:20:30.123000"}
    assert from_debezium("TIMESTAMP", 1999, "io.debezium.time.NanoTimestamp") == {"S": "1970-01-01T00:00:00.000001"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT10S", "P0Y0M0DT0H0M10S"),  # a plain decimal, never 1E+1
        ("PT1.500000S", "P0Y0M0DT0H0M1.5S"),
        ("P1Y2M3DT4H5M6.000001S", "P1Y2M3DT4H5M6.000001S"),
        ("P-1Y-2M", "P-1Y-2M0DT0H0M0S"),
    ],
)
def test_intervals_have_every_field_and_plain_seconds(text: str, expected: str) -> None:
    assert from_text("INTERVAL", text) == {"S": expected}


@pytest.mark.parametrize("text", ["P", "PT", "1 day", "P1H"])
def test_an_empty_or_malformed_interval_is_refused(text: str) -> None:
    with pytest.raises(CodecError, match=re.escape(f"interval {text!r} is not an ISO-8601 duration")):
        from_text("INTERVAL", text)


@pytest.mark.parametrize("text", ["{1,2", "1,2}", "1"])
def test_text_that_is_not_a_whole_array_literal_is_refused(text: str) -> None:
    with pytest.raises(CodecError, match=re.escape(f"{text!r} is not an array")):
        from_text("_INT4", text)


# Every refusal says what the value was meant to be and what it was: the message reaches the dead
# letter, the errors file and the reconcile report, where a person decides what to fix.
@pytest.mark.parametrize(
    ("convert", "message"),
    [
        (
            lambda: from_debezium("TIMESTAMP", 2**62, "io.debezium.time.MicroTimestamp"),
            "timestamp '4611686018427387904 microseconds since 1970' has no exact DynamoDB form",
        ),
        (lambda: from_text("TIMESTAMP", "infinity"), "timestamp 'infinity' has no exact DynamoDB form"),
        (lambda: from_text("TIMESTAMPTZ", "infinity"), "timestamptz 'infinity' has no exact DynamoDB form"),
        (lambda: from_text("DATE", "infinity"), "date 'infinity' has no exact DynamoDB form"),
        (
            lambda: from_text("TIMESTAMPTZ", "0001-01-01 00:30:00+01"),
            "timestamptz '0001-01-01 00:30:00+01' is outside years 1-9999 in UTC",
        ),
        (lambda: from_text("TIME", "25:99"), "time '25:99' is not a time of day"),
        (lambda: from_text("TIMETZ", "noon"), "timetz 'noon' is not a time of day with a zone"),
        (
            lambda: from_debezium("TIME", -1, "io.debezium.time.MicroTime"),
            "time of day -1 microseconds is outside 00:00-24:00",
        ),
        (
            lambda: from_debezium("TIMESTAMP", "x", "io.debezium.time.Timestamp"),
            "'x' is not an integer (a count of milliseconds)",
        ),
        (
            lambda: from_debezium("TIMESTAMP", "x", "io.debezium.time.MicroTimestamp"),
            "'x' is not an integer (a count of microseconds)",
        ),
        (
            lambda: from_debezium("TIMESTAMP", "x", "io.debezium.time.NanoTimestamp"),
            "'x' is not an integer (a count of nanoseconds)",
        ),
        (
            lambda: from_debezium("TIME", "x", "io.debezium.time.Time"),
            "'x' is not an integer (a count of milliseconds)",
        ),
        (
            lambda: from_debezium("TIME", "x", "io.debezium.time.MicroTime"),
            "'x' is not an integer (a count of microseconds)",
        ),
        (
            lambda: from_debezium("TIME", "x", "io.debezium.time.NanoTime"),
            "'x' is not an integer (a count of nanoseconds)",
        ),
        (lambda: from_debezium("FLOAT8", [1.5]), "[1.5] is not a number"),
        (lambda: from_debezium("BOOL", "t"), "'t' is not a boolean"),
        (lambda: from_debezium("BYTEA", "%%"), "bytea value is not base64 (binary.handling.mode must be base64)"),
        (
            lambda: from_text("BYTEA", "abc"),
            "bytea value is not in hex output form (the session needs bytea_output=hex)",
        ),
        (lambda: from_text("HSTORE", '"a"=>'), "hstore value '\"a\"=>' could not be parsed"),
        (lambda: from_text("FLOAT8", "abc"), "'abc' is not a floating-point number"),
        (
            lambda: from_text("POINT", "(1,2)"),
            "(tables.exclude_columns) or change its type (`ddbridge validate` lists such columns)",
        ),
    ],
)
def test_a_refusal_names_the_type_and_the_value(convert: Any, message: str) -> None:
    with pytest.raises(CodecError) as refused:
        convert()
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("text", "elements"),
    [
        ("{a,}", ["a", ""]),  # an empty last element
        ("{,a}", ["", "a"]),  # an empty first element
        ('{"a,b",NULL,"NULL","q\\"uote"}', ["a,b", None, "NULL", 'q"uote']),
    ],
)
def test_array_literals_split_into_their_elements(text: str, elements: list[str | None]) -> None:
    assert array_elements(text) == elements


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"ab}', "unterminated quoted element"),
        ('{"ab\\}', "unterminated quoted element"),
        ('{"a"b}', "could not be parsed"),
        ("{a,{b}}", "multi-dimensional"),
    ],
)
def test_a_malformed_array_literal_is_a_codec_error(text: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        array_elements(text)
