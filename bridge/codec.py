"""The one value codec: a PostgreSQL column value, from a Debezium event or from psycopg, becomes the
same DynamoDB attribute value (low-level wire form, e.g. ``{"N": "12.5"}``).

Both paths are keyed by the column's PostgreSQL type name (``pg_type.typname`` upper-cased, which
is what Debezium reports in ``__debezium.source.column.type``), so the same row always gives the
same item. Rules (DESIGN "One codec"): integers and numerics -> N as an exact, normalised decimal
(more than 38 significant digits is an error, never a rounding); text -> S; boolean -> BOOL;
date -> ``YYYY-MM-DD``; timestamp -> ``YYYY-MM-DDTHH:MM:SS.ffffff``; timestamptz -> the same in UTC
with ``Z``; time -> ``HH:MM:SS.ffffff``; uuid -> S; json/jsonb -> M/L/...; bytea -> B; arrays -> L;
NULL -> None (the attribute is omitted).
"""

from __future__ import annotations

import base64
import functools
import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from bridge.errors import DdbridgeError

AttributeValue = dict[str, Any]

UNAVAILABLE = "__debezium_unavailable_value"
MAX_SIGNIFICANT_DIGITS = 38
EPOCH = date(1970, 1, 1)
EPOCH_DT = datetime(1970, 1, 1)

INTEGER_TYPES = {"INT2", "INT4", "INT8", "SMALLINT", "INTEGER", "BIGINT", "SMALLSERIAL", "SERIAL", "BIGSERIAL", "OID"}
NUMERIC_TYPES = {"NUMERIC", "DECIMAL", "MONEY"}
FLOAT_TYPES = {"FLOAT4", "FLOAT8", "REAL", "DOUBLE PRECISION"}
TEXT_TYPES = {"TEXT", "VARCHAR", "BPCHAR", "CHAR", "NAME", "CITEXT", "XML", "INET", "CIDR", "MACADDR", "LTREE"}
JSON_TYPES = {"JSON", "JSONB"}


class CodecError(DdbridgeError):
    """A value that cannot be stored in DynamoDB exactly; the event goes to the dead-letter topic."""

    def __init__(self, reason: str, column: str | None = None) -> None:
        super().__init__(reason if column is None else f"column {column}: {reason}")
        self.reason = reason
        self.column = column


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
    """JSON text (json/jsonb column) as a DynamoDB value; numbers stay exact."""
    try:
        return json_value(json.loads(text, parse_float=Decimal))
    except json.JSONDecodeError as exc:
        raise CodecError(f"invalid JSON: {exc}") from exc


# -- Debezium (JSON converter, decimal.handling.mode=string, time.precision.mode=adaptive) ------


def _debezium_date(value: Any, semantic: str | None) -> str:
    return (EPOCH + timedelta(days=int(value))).isoformat()


def _debezium_timestamp(value: Any, semantic: str | None) -> str:
    if semantic == "io.debezium.time.Timestamp":
        micros = int(value) * 1000
    elif semantic == "io.debezium.time.NanoTimestamp":
        micros = int(value) // 1000
    else:  # io.debezium.time.MicroTimestamp
        micros = int(value)
    return iso_timestamp(EPOCH_DT + timedelta(microseconds=micros))


def _debezium_timestamptz(value: Any, semantic: str | None) -> str:
    return iso_timestamp(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _debezium_time(value: Any, semantic: str | None) -> str:
    if semantic == "io.debezium.time.Time":
        micros = int(value) * 1000
    elif semantic == "io.debezium.time.NanoTime":
        micros = int(value) // 1000
    else:  # io.debezium.time.MicroTime
        micros = int(value)
    return (EPOCH_DT + timedelta(microseconds=micros)).time().isoformat(timespec="microseconds")


def _debezium_timetz(value: Any, semantic: str | None) -> str:
    return iso_time(time.fromisoformat(str(value).replace("Z", "+00:00")))


def from_debezium(pg_type: str, value: Any, semantic: str | None = None) -> AttributeValue | None:
    """A Debezium field value of a column of PostgreSQL type ``pg_type`` as a DynamoDB value.

    ``semantic`` is the field schema's ``name`` (e.g. ``io.debezium.time.MicroTimestamp``).
    """
    if value is None:
        return None
    t = pg_type.upper()
    if t.startswith("_"):
        return {"L": [_element(from_debezium(t[1:], v, None)) for v in value]}
    if t in INTEGER_TYPES:
        return {"N": str(int(value))}
    if t in NUMERIC_TYPES:
        return number(str(value))
    if t in FLOAT_TYPES:
        if isinstance(value, str):  # NaN / Infinity arrive as strings
            raise CodecError(f"{value} cannot be stored as a DynamoDB number")
        return float_number(float(value))
    if t == "BOOL" or t == "BOOLEAN":
        return {"BOOL": bool(value)}
    if t == "DATE":
        return {"S": _debezium_date(value, semantic)}
    if t == "TIMESTAMP":
        return {"S": _debezium_timestamp(value, semantic)}
    if t == "TIMESTAMPTZ":
        return {"S": _debezium_timestamptz(value, semantic)}
    if t == "TIME":
        return {"S": _debezium_time(value, semantic)}
    if t == "TIMETZ":
        return {"S": _debezium_timetz(value, semantic)}
    if t in JSON_TYPES:
        return json_text(str(value))
    if t == "BYTEA":
        return {"B": base64.b64decode(value)}
    if t == "UUID" or t in TEXT_TYPES or isinstance(value, str):
        return {"S": str(value)}
    raise CodecError(f"unsupported PostgreSQL type {pg_type}: exclude the column in the mapping")


# -- psycopg (rows read by the backfill and the reconciler) --------------------------------------


def from_python(pg_type: str, value: Any) -> AttributeValue | None:
    """A psycopg value of a column of PostgreSQL type ``pg_type`` as a DynamoDB value.

    json/jsonb columns must be loaded as text (see ``bridge.postgres.text_json_loaders``) so the
    numbers inside stay exact.
    """
    return None if value is None else python_converter(pg_type)(value)


@functools.lru_cache(maxsize=512)
def python_converter(pg_type: str) -> Callable[[Any], AttributeValue]:
    """The function that encodes non-NULL psycopg values of ``pg_type`` (``from_python``'s rules,
    with the type dispatch done once per type instead of once per value)."""
    t = pg_type.upper()
    if t.startswith("_"):
        element = python_converter(t[1:])
        return lambda value: {"L": [{"NULL": True} if v is None else element(v) for v in value]}
    if t in INTEGER_TYPES:
        return lambda value: {"N": str(int(value))}
    if t in NUMERIC_TYPES:
        return lambda value: number(value if isinstance(value, Decimal) else str(value))
    if t in FLOAT_TYPES:
        return lambda value: float_number(float(value))
    if t == "BOOL" or t == "BOOLEAN":
        return lambda value: {"BOOL": bool(value)}
    if t == "DATE":
        return lambda value: {"S": _as_date(value).isoformat()}
    if t in ("TIMESTAMP", "TIMESTAMPTZ"):
        return lambda value: {"S": iso_timestamp(value)}
    if t in ("TIME", "TIMETZ"):
        return lambda value: {"S": iso_time(value)}
    if t in JSON_TYPES:
        return lambda value: json_text(value) if isinstance(value, str) else json_value(value)
    if t == "BYTEA":
        return lambda value: {"B": bytes(value)}
    if t == "UUID" or t in TEXT_TYPES:
        return lambda value: {"S": str(value)}

    def by_value(value: Any) -> AttributeValue:  # an unknown type: uuids and text pass, nothing else
        if isinstance(value, UUID | str):
            return {"S": str(value)}
        raise CodecError(f"unsupported PostgreSQL type {pg_type}: exclude the column in the mapping")

    return by_value


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise CodecError(f"{value!r} is not a date")


def _element(value: AttributeValue | None) -> AttributeValue:
    return {"NULL": True} if value is None else value


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
