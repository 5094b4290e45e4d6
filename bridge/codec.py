"""The one value codec: a PostgreSQL column value, from a Debezium event or from PostgreSQL's own text
output, becomes the same DynamoDB attribute value (low-level wire form, e.g. ``{"N": "12.5"}``).

Both paths are keyed by the column's *codec type*: the canonical PostgreSQL type name that
``bridge.pgtypes`` resolves every column to (a domain to its base type, an enum to ``TEXT``, an array
to ``_`` + its element's codec type). Only the codec types in ``CODEC_TYPES`` exist; every other
PostgreSQL type is refused by ``ddbridge validate`` before anything is written (``bridge.pgtypes``).

The direct path (backfill, reconcile, repair) reads every value as PostgreSQL renders it in a session
with ``DateStyle=ISO``, ``TimeZone=UTC``, ``IntervalStyle=iso_8601``, ``bytea_output=hex``
(``bridge.pgrows.configure``), so the input of ``from_text`` is PostgreSQL's own output function.

Rules (DESIGN "One codec"): integers and numerics -> N as an exact, normalised decimal (more than 38
significant digits is an error, never a rounding); text-like -> S unchanged; boolean -> BOOL;
date -> ``YYYY-MM-DD``; timestamp -> ``YYYY-MM-DDTHH:MM:SS.ffffff``; timestamptz -> the same in UTC
with ``Z``; time -> ``HH:MM:SS.ffffff`` (``24:00:00.000000`` included); timetz -> UTC with ``Z``;
interval -> ``PnYnMnDTnHnMnS`` with every field; json/jsonb/hstore -> M/L/...; bytea -> B; arrays (one
dimension, lower bound 1) -> L; NULL -> None (the attribute is omitted). Values these forms cannot
hold exactly (NaN, infinities, dates outside years 1-9999, BC) are a ``CodecError`` on both paths.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any

from bridge.errors import CodecError

AttributeValue = dict[str, Any]

UNAVAILABLE = "__debezium_unavailable_value"
MAX_SIGNIFICANT_DIGITS = 38
EPOCH = date(1970, 1, 1)
EPOCH_DT = datetime(1970, 1, 1)
MICROS_PER_DAY = 86_400_000_000
# Microseconds since the epoch of 0001-01-01T00:00:00 and of 9999-12-31T23:59:59.999999.
MIN_MICROS = (datetime.min - EPOCH_DT) // timedelta(microseconds=1)
MAX_MICROS = (datetime.max - EPOCH_DT) // timedelta(microseconds=1)

INTEGER_TYPES = frozenset({"INT2", "INT4", "INT8", "OID"})
NUMERIC_TYPES = frozenset({"NUMERIC", "MONEY"})
FLOAT_TYPES = frozenset({"FLOAT4", "FLOAT8"})
JSON_TYPES = frozenset({"JSON", "JSONB"})
# Stored as their PostgreSQL text, unchanged (Debezium sends the same text).
TEXT_TYPES = frozenset(
    {
        "TEXT",
        "VARCHAR",
        "BPCHAR",
        "CHAR",
        "CITEXT",
        "XML",
        "INET",
        "CIDR",
        "MACADDR",
        "MACADDR8",
        "LTREE",
        "UUID",
        "TSVECTOR",
        "INT4RANGE",
        "INT8RANGE",
        "NUMRANGE",
        "DATERANGE",
        "TSRANGE",
    }
)
TEMPORAL_TYPES = frozenset({"DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIME", "TIMETZ", "INTERVAL"})
SCALAR_TYPES = INTEGER_TYPES | NUMERIC_TYPES | FLOAT_TYPES | JSON_TYPES | TEXT_TYPES | TEMPORAL_TYPES
SCALAR_TYPES |= {"BOOL", "BYTEA", "HSTORE"}
# Element types whose arrays Debezium sends exactly, element by element (bridge.pgtypes says why not others).
ARRAY_ELEMENT_TYPES = (
    INTEGER_TYPES
    | FLOAT_TYPES
    | JSON_TYPES
    | {"NUMERIC", "BOOL", "BYTEA", "DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIME"}
    | (TEXT_TYPES - {"XML"})
)
CODEC_TYPES = SCALAR_TYPES | {"_" + t for t in ARRAY_ELEMENT_TYPES}


# -- scalar canonical forms ---------------------------------------------------------------------


def number(value: Decimal | int | str) -> AttributeValue:
    """An exact DynamoDB number: normalised, no exponent, at most 38 significant digits."""
    try:
        dec = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation as exc:
        raise CodecError(f"{value!r} is not a number") from exc
    if not dec.is_finite():
        raise CodecError(f"{value} cannot be stored as a DynamoDB number (NaN and infinities are not allowed)")
    if dec.is_zero():
        return {"N": "0"}
    # normalize() rounds to its context's precision (28 by default): give it enough to stay exact.
    digits = len(dec.as_tuple().digits)
    norm = dec.normalize(_exact_context(digits))
    if digits > MAX_SIGNIFICANT_DIGITS:  # trailing zeros do not count
        digits = len(norm.as_tuple().digits)
    if digits > MAX_SIGNIFICANT_DIGITS:
        raise CodecError(
            f"{value} has {digits} significant digits; DynamoDB numbers hold at most {MAX_SIGNIFICANT_DIGITS} "
            "(exclude the column or store it as text with a cast)"
        )
    adjusted = norm.adjusted()
    if adjusted > 125 or adjusted < -130:
        raise CodecError(f"{value} is outside DynamoDB's number range (1E-130 to 9.9E+125)")
    return {"N": format(norm, "f")}


@functools.cache
def _exact_context(digits: int) -> Context:
    return Context(prec=digits, Emax=MAX_EMAX, Emin=MIN_EMIN)


def float_number(value: float) -> AttributeValue:
    """A double as its shortest round-trip decimal."""
    if not math.isfinite(value):
        raise CodecError(f"{value} cannot be stored as a DynamoDB number (NaN and infinities are not allowed)")
    return number(repr(float(value)))


def iso_timestamp(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffff``; aware values are converted to UTC and end in ``Z``."""
    if value.tzinfo is not None:  # "...+00:00" once in UTC
        return value.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
    return value.isoformat(timespec="microseconds")


def iso_time(value: time) -> str:
    """``HH:MM:SS.ffffff``; a time with a zone is shifted to UTC and ends in ``Z``."""
    if value.tzinfo is not None:
        offset = value.utcoffset() or timedelta(0)
        shifted = (datetime.combine(EPOCH, value.replace(tzinfo=None)) - offset).time()
        return shifted.isoformat(timespec="microseconds") + "Z"
    return value.isoformat(timespec="microseconds")


def json_value(value: Any) -> AttributeValue:
    """A parsed JSON value (numbers as Decimal/int) as a DynamoDB value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return number(value)
    if isinstance(value, float):
        return float_number(value)
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [json_value(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): json_value(v) for k, v in value.items()}}
    raise CodecError(f"unsupported JSON value {value!r}")


def json_text(text: str) -> AttributeValue:
    """JSON text (json/jsonb column, or hstore as Debezium's JSON) as a DynamoDB value; numbers stay exact."""
    try:
        return json_value(json.loads(text, parse_float=Decimal))
    except json.JSONDecodeError as exc:
        raise CodecError(f"invalid JSON: {exc}") from exc


def _micros_timestamp(micros: int) -> str:
    if not MIN_MICROS <= micros <= MAX_MICROS:
        raise _no_exact_form("timestamp", f"{micros} microseconds since 1970")
    return iso_timestamp(EPOCH_DT + timedelta(microseconds=micros))


def _micros_time(micros: int) -> str:
    if micros == MICROS_PER_DAY:
        return "24:00:00.000000"
    if not 0 <= micros < MICROS_PER_DAY:
        raise CodecError(f"time of day {micros} microseconds is outside 00:00-24:00")
    return (EPOCH_DT + timedelta(microseconds=micros)).time().isoformat(timespec="microseconds")


def _fraction(digits: str | None) -> str:
    return (digits or "").ljust(6, "0")


_OFFSET = r"(?P<sign>[+-])(?P<oh>\d\d)(?::?(?P<om>\d\d)(?::?(?P<os>\d\d))?)?"
_ZONED_TIMESTAMP = re.compile(
    r"(?P<d>\d{4}-\d\d-\d\d)[T ](?P<t>\d\d:\d\d:\d\d)(?:\.(?P<f>\d{1,6}))?(?:(?P<z>Z)|" + _OFFSET + ")"
)
_ZONED_TIME = re.compile(r"(?P<t>\d\d:\d\d:\d\d)(?:\.(?P<f>\d{1,6}))?(?:(?P<z>Z)|" + _OFFSET + ")")


def _offset(match: re.Match[str]) -> timedelta:
    if match["z"] or match["sign"] is None:
        return timedelta(0)
    delta = timedelta(hours=int(match["oh"]), minutes=int(match["om"] or 0), seconds=int(match["os"] or 0))
    return -delta if match["sign"] == "-" else delta


def _no_exact_form(kind: str, text: object) -> CodecError:
    return CodecError(
        f"{kind} {text!r} has no exact DynamoDB form (infinity, BC or year 10000+): fix the value or exclude the column"
    )


def _zoned_timestamp(text: str) -> str:
    match = _ZONED_TIMESTAMP.fullmatch(text)
    if match is None:
        raise _no_exact_form("timestamptz", text)
    body = f"{match['d']}T{match['t']}.{_fraction(match['f'])}"
    offset = _offset(match)
    if not offset:
        return body + "Z"
    try:
        return (datetime.fromisoformat(body) - offset).isoformat(timespec="microseconds") + "Z"
    except (ValueError, OverflowError) as exc:
        raise CodecError(f"timestamptz {text!r} is outside years 1-9999 in UTC") from exc


def _zoned_time(text: str) -> str:
    match = _ZONED_TIME.fullmatch(text)
    if match is None:
        raise CodecError(f"timetz {text!r} is not a time of day with a zone")
    if match["t"].startswith("24"):  # Debezium sends 24:00:00+zz as 00:00:00Z: not exact
        raise CodecError(f"timetz {text!r}: 24:00 with a zone has no exact form on the change stream")
    body = datetime.fromisoformat(f"2000-01-02T{match['t']}.{_fraction(match['f'])}")
    return iso_time((body - _offset(match)).time()) + "Z"


_INTERVAL = re.compile(
    r"P(?:(?P<y>-?\d+)Y)?(?:(?P<mo>-?\d+)M)?(?:(?P<d>-?\d+)D)?"
    r"(?:T(?:(?P<h>-?\d+)H)?(?:(?P<mi>-?\d+)M)?(?:(?P<s>-?\d+(?:\.\d+)?)S)?)?"
)


def interval_text(text: str) -> str:
    """An ISO-8601 interval (PostgreSQL's iso_8601 style or Debezium's) as ``PnYnMnDTnHnMnS`` with every
    field, seconds as a plain decimal without trailing zeros."""
    match = _INTERVAL.fullmatch(text)
    if match is None or text in ("P", "PT"):
        raise CodecError(f"interval {text!r} is not an ISO-8601 duration")
    seconds = Decimal(match["s"] or "0")
    seconds_text = "0" if seconds.is_zero() else format(seconds.normalize(_exact_context(40)), "f")
    y, mo, d, h, mi = (int(match[g] or 0) for g in ("y", "mo", "d", "h", "mi"))
    return f"P{y}Y{mo}M{d}DT{h}H{mi}M{seconds_text}S"


# -- Debezium (JSON converter, decimal.handling.mode=string, time.precision.mode=adaptive,
#    interval.handling.mode=string, hstore.handling.mode=json, binary.handling.mode=base64) -------

DebeziumConverter = Callable[[Any, str | None], AttributeValue]
_JAVA_ARRAY = re.compile(r"\[L[\w.$]+;@[0-9a-f]+")  # what Debezium makes of a nested text array


def _dbz_integer(value: Any, unit: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"{value!r} is not an integer" + (f" (a count of {unit})" if unit else ""))
    return value


def _dbz_int(value: Any, semantic: str | None) -> AttributeValue:
    return {"N": str(_dbz_integer(value))}


def _dbz_numeric(value: Any, semantic: str | None) -> AttributeValue:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise CodecError(f"{value!r} is not a decimal (the connector needs decimal.handling.mode=string)")
    return number(str(value))


def _dbz_float(value: Any, semantic: str | None) -> AttributeValue:
    if isinstance(value, str):  # NaN / Infinity arrive as strings
        raise CodecError(f"{value} cannot be stored as a DynamoDB number (NaN and infinities are not allowed)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CodecError(f"{value!r} is not a number")
    return float_number(float(value))


def _dbz_bool(value: Any, semantic: str | None) -> AttributeValue:
    if not isinstance(value, bool):
        raise CodecError(f"{value!r} is not a boolean")
    return {"BOOL": value}


def _dbz_date(value: Any, semantic: str | None) -> AttributeValue:
    days = _dbz_integer(value, "days since 1970")
    ordinal = EPOCH.toordinal() + days
    if not 1 <= ordinal <= date.max.toordinal():
        raise _no_exact_form("date", f"{days} days since 1970")
    return {"S": date.fromordinal(ordinal).isoformat()}


def _dbz_timestamp(value: Any, semantic: str | None) -> AttributeValue:
    if semantic == "io.debezium.time.Timestamp":
        micros = _dbz_integer(value, "milliseconds") * 1000
    elif semantic == "io.debezium.time.NanoTimestamp":
        micros = _dbz_integer(value, "nanoseconds") // 1000
    else:  # io.debezium.time.MicroTimestamp
        micros = _dbz_integer(value, "microseconds")
    return {"S": _micros_timestamp(micros)}


def _dbz_time(value: Any, semantic: str | None) -> AttributeValue:
    if semantic == "io.debezium.time.Time":
        micros = _dbz_integer(value, "milliseconds") * 1000
    elif semantic == "io.debezium.time.NanoTime":
        micros = _dbz_integer(value, "nanoseconds") // 1000
    else:  # io.debezium.time.MicroTime
        micros = _dbz_integer(value, "microseconds")
    return {"S": _micros_time(micros)}


def _dbz_string(value: Any) -> str:
    if not isinstance(value, str):
        raise CodecError(f"{value!r} is not text")
    return value


def _dbz_text(value: Any, semantic: str | None) -> AttributeValue:
    return {"S": _dbz_string(value)}


def _dbz_bytea(value: Any, semantic: str | None) -> AttributeValue:
    try:
        return {"B": base64.b64decode(_dbz_string(value), validate=True)}
    except ValueError as exc:
        raise CodecError(f"bytea value is not base64 (binary.handling.mode must be base64): {exc}") from exc


_DEBEZIUM: dict[str, DebeziumConverter] = {
    **dict.fromkeys(INTEGER_TYPES, _dbz_int),
    **dict.fromkeys(NUMERIC_TYPES, _dbz_numeric),
    **dict.fromkeys(FLOAT_TYPES, _dbz_float),
    **dict.fromkeys(JSON_TYPES | {"HSTORE"}, lambda v, s: json_text(_dbz_string(v))),
    **dict.fromkeys(TEXT_TYPES, _dbz_text),
    "BOOL": _dbz_bool,
    "DATE": _dbz_date,
    "TIMESTAMP": _dbz_timestamp,
    "TIMESTAMPTZ": lambda v, s: {"S": _zoned_timestamp(_dbz_string(v))},
    "TIME": _dbz_time,
    "TIMETZ": lambda v, s: {"S": _zoned_time(_dbz_string(v))},
    "INTERVAL": lambda v, s: {"S": interval_text(_dbz_string(v))},
    "BYTEA": _dbz_bytea,
}


def _unsupported(codec_type: str) -> CodecError:
    return CodecError(
        f"PostgreSQL type {codec_type} has no exact DynamoDB form here: exclude the column "
        "(tables.exclude_columns) or change its type (`ddbridge validate` lists such columns)"
    )


def from_debezium(codec_type: str, value: Any, semantic: str | None = None) -> AttributeValue | None:
    """A Debezium field value of a column of ``codec_type`` as a DynamoDB value.

    ``semantic`` is the field schema's ``name`` (e.g. ``io.debezium.time.MicroTimestamp``); for an
    array, the name of its ``items`` schema.
    """
    if value is None:
        return None
    t = codec_type.upper()
    if t not in CODEC_TYPES:
        raise _unsupported(codec_type)
    if t.startswith("_"):
        if not isinstance(value, list):
            raise CodecError(f"{codec_type} value {value!r} is not an array")
        convert = _DEBEZIUM[t[1:]]
        out: list[AttributeValue] = []
        for element in value:
            if element is None:
                out.append({"NULL": True})
                continue
            if isinstance(element, str) and _JAVA_ARRAY.fullmatch(element):
                raise CodecError("a multi-dimensional array has no exact form on the change stream")
            out.append(convert(element, semantic))
        return {"L": out}
    return _DEBEZIUM[t](value, semantic)


# -- PostgreSQL's text output (rows read by the backfill, the reconciler and repairs) ----------------

TextConverter = Callable[[str], AttributeValue]
_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?")
_TIME = re.compile(r"(\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?")
_BYTEA = re.compile(r"\\x((?:[0-9a-fA-F]{2})*)")
_HSTORE_PAIR = re.compile(r'\s*"((?:[^"\\]|\\.)*)"\s*=>\s*(?:(NULL)|"((?:[^"\\]|\\.)*)")\s*(,|$)')
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _txt_date(text: str) -> AttributeValue:
    if not _DATE.fullmatch(text):
        raise _no_exact_form("date", text)
    return {"S": text}


def _txt_timestamp(text: str) -> AttributeValue:
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise _no_exact_form("timestamp", text)
    return {"S": f"{match[1]}T{match[2]}.{_fraction(match[3])}"}


def _txt_time(text: str) -> AttributeValue:
    match = _TIME.fullmatch(text)
    if match is None:
        raise CodecError(f"time {text!r} is not a time of day")
    return {"S": f"{match[1]}.{_fraction(match[2])}"}


def _txt_bytea(text: str) -> AttributeValue:
    match = _BYTEA.fullmatch(text)
    if match is None:
        raise CodecError("bytea value is not in hex output form (the session needs bytea_output=hex)")
    return {"B": bytes.fromhex(match[1])}


def hstore_text(text: str) -> AttributeValue:
    """hstore output (``"a"=>"1", "b"=>NULL``) as a map of strings and NULLs, as Debezium's JSON gives it."""
    out: dict[str, AttributeValue] = {}
    position = 0
    while position < len(text):
        match = _HSTORE_PAIR.match(text, position)
        if match is None or match.end() == position:
            raise CodecError(f"hstore value {text[:60]!r} could not be parsed")
        key = _UNESCAPE.sub(r"\1", match[1])
        out[key] = {"NULL": True} if match[2] else {"S": _UNESCAPE.sub(r"\1", match[3])}
        position = match.end()
    return {"M": out}


def _txt_float(text: str) -> AttributeValue:
    try:
        value = float(text)
    except ValueError as exc:
        raise CodecError(f"{text!r} is not a floating-point number") from exc
    return float_number(value)


_TEXT: dict[str, TextConverter] = {
    **dict.fromkeys(INTEGER_TYPES, lambda text: {"N": text}),
    **dict.fromkeys(NUMERIC_TYPES, number),
    **dict.fromkeys(FLOAT_TYPES, _txt_float),
    **dict.fromkeys(JSON_TYPES, json_text),
    **dict.fromkeys(TEXT_TYPES, lambda text: {"S": text}),
    "HSTORE": hstore_text,
    "BOOL": lambda text: {"BOOL": text == "t"},
    "DATE": _txt_date,
    "TIMESTAMP": _txt_timestamp,
    "TIMESTAMPTZ": lambda text: {"S": _zoned_timestamp(text)},
    "TIME": _txt_time,
    "TIMETZ": lambda text: {"S": _zoned_time(text)},
    "INTERVAL": lambda text: {"S": interval_text(text)},
    "BYTEA": _txt_bytea,
}


def array_elements(text: str) -> list[str | None]:
    """The elements of a one-dimensional PostgreSQL array literal (output form), NULL as None.

    A multi-dimensional array or one with a lower bound other than 1 (``[0:2]={...}``) is a CodecError:
    the change stream cannot carry either exactly.
    """
    if text.startswith("["):
        raise CodecError(f"array {text[:40]!r} has a lower bound other than 1, which a DynamoDB list cannot keep")
    if not (text.startswith("{") and text.endswith("}")):
        raise CodecError(f"{text[:40]!r} is not an array")
    if text.startswith("{{"):
        raise CodecError("a multi-dimensional array has no exact form on the change stream")
    body = text[1:-1]
    out: list[str | None] = []
    i, n = 0, len(body)
    if n == 0:
        return out
    while True:
        if i < n and body[i] == '"':
            chars: list[str] = []
            i += 1
            while i < n and body[i] != '"':
                if body[i] == "\\":
                    i += 1
                    if i >= n:
                        break
                chars.append(body[i])
                i += 1
            if i >= n:
                raise CodecError(f"array {text[:40]!r} has an unterminated quoted element")
            i += 1  # the closing quote
            out.append("".join(chars))
        else:
            end = body.find(",", i)
            end = n if end < 0 else end
            element = body[i:end]
            if element.startswith("{"):
                raise CodecError("a multi-dimensional array has no exact form on the change stream")
            out.append(None if element == "NULL" else element)
            i = end
        if i >= n:
            return out
        if body[i] != ",":
            raise CodecError(f"array {text[:40]!r} could not be parsed")
        i += 1


@functools.lru_cache(maxsize=512)
def text_converter(codec_type: str) -> TextConverter:
    """The function that encodes a non-NULL value of ``codec_type`` from PostgreSQL's text output."""
    t = codec_type.upper()
    if t not in CODEC_TYPES:
        error = _unsupported(codec_type)

        def refuse(text: str) -> AttributeValue:
            raise error

        return refuse
    if t.startswith("_"):
        element = _TEXT[t[1:]]
        return lambda text: {"L": [{"NULL": True} if e is None else element(e) for e in array_elements(text)]}
    return _TEXT[t]


def from_text(codec_type: str, text: str | None) -> AttributeValue | None:
    """PostgreSQL's text output of a value of ``codec_type`` as a DynamoDB value (None for NULL)."""
    return None if text is None else text_converter(codec_type)(text)


# -- attribute values as text (key templates) -------------------------------------------------


def scalar_text(value: AttributeValue) -> str:
    """The text of a scalar attribute value, for key templates."""
    if "S" in value:
        return str(value["S"])
    if "N" in value:
        return str(value["N"])
    if "BOOL" in value:
        return "true" if value["BOOL"] else "false"
    if "B" in value:
        return base64.b64encode(value["B"]).decode()
    raise CodecError(f"a {next(iter(value))} value cannot be part of a key")
