"""Property tests of both codec paths against expected strings built independently (string arithmetic
on generated digits and clock fields, never ``Decimal`` or ``datetime`` formatting)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.codec import from_debezium, from_text

examples = settings(max_examples=400, deadline=None)

# -- numbers: up to 38 significant digits, any exponent DynamoDB can hold ----------------------------


def _plain(sign: str, digits: str, exponent: int) -> str:
    """sign + digits x 10^exponent as a plain decimal, built with string operations only."""
    if exponent >= 0:
        text = digits + "0" * exponent
    elif -exponent >= len(digits):
        text = "0." + "0" * (-exponent - len(digits)) + digits
    else:
        text = digits[:exponent] + "." + digits[exponent:]
    return sign + text


def _expected_number(sign: str, digits: str, exponent: int) -> str:
    """DynamoDB's normal form: no leading zeros, no trailing fraction zeros, no '-0'."""
    text = _plain("", digits, exponent)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    text = text.lstrip("0") or "0"
    if text.startswith("."):
        text = "0" + text
    return "0" if text == "0" else sign + text


significant = (
    st.integers(1, 38)
    .flatmap(lambda n: st.tuples(st.sampled_from("123456789"), st.text("0123456789", min_size=n - 1, max_size=n - 1)))
    .map(lambda t: t[0] + t[1])
)


@examples
@given(
    sign=st.sampled_from(["", "-"]),
    digits=significant,
    exponent=st.integers(-60, 60),
    padding=st.integers(0, 6),
)
def test_numbers_are_exact_on_both_paths(sign: str, digits: str, exponent: int, padding: int) -> None:
    # PostgreSQL prints numeric(p, s) with trailing zeros to its scale; Debezium sends the same string.
    text = _plain(sign, digits + "0" * padding, exponent - padding)
    expected = {"N": _expected_number(sign, digits, exponent)}
    assert from_text("NUMERIC", text) == expected
    assert from_debezium("NUMERIC", text) == expected
    assert from_text("_NUMERIC", "{" + text + ",NULL}") == {"L": [expected, {"NULL": True}]}


# -- timestamps and times: every microsecond count, zero included -----------------------------------

DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@st.composite
def instants(draw: st.DrawFn) -> tuple[int, int, int, int, int, int, int]:
    year = draw(st.integers(1, 9999))
    month = draw(st.integers(1, 12))
    days = DAYS_IN_MONTH[month - 1] + (1 if month == 2 and _leap(year) else 0)
    micro = draw(st.one_of(st.just(0), st.integers(0, 999_999), st.sampled_from([1, 10, 100_000, 999_999])))
    return (
        year,
        month,
        draw(st.integers(1, days)),
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
        micro,
    )


def _epoch_micros(year: int, month: int, day: int, hh: int, mm: int, ss: int, micro: int) -> int:
    """Microseconds since 1970-01-01 by counting days (no datetime arithmetic)."""
    days = sum(366 if _leap(y) else 365 for y in range(1970, year)) if year >= 1970 else 0
    if year < 1970:
        days = -sum(366 if _leap(y) else 365 for y in range(year, 1970))
    days += sum(DAYS_IN_MONTH[: month - 1]) + (1 if month > 2 and _leap(year) else 0) + day - 1
    return ((days * 24 + hh) * 60 + mm) * 60 * 1_000_000 + ss * 1_000_000 + micro


def _pg_fraction(micro: int) -> str:
    """PostgreSQL prints the fraction without trailing zeros, and none at all for zero."""
    return ("." + f"{micro:06d}".rstrip("0")) if micro else ""


@examples
@given(instant=instants())
def test_timestamps_have_six_fraction_digits_on_both_paths(instant: tuple[int, int, int, int, int, int, int]) -> None:
    year, month, day, hh, mm, ss, micro = instant
    expected = f"{year:04d}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{micro:06d}"
    pg = f"{year:04d}-{month:02d}-{day:02d} {hh:02d}:{mm:02d}:{ss:02d}{_pg_fraction(micro)}"
    micros = _epoch_micros(*instant)
    assert from_text("TIMESTAMP", pg) == {"S": expected}
    assert from_debezium("TIMESTAMP", micros, "io.debezium.time.MicroTimestamp") == {"S": expected}
    assert from_text("TIMESTAMPTZ", pg + "+00") == {"S": expected + "Z"}
    assert from_debezium("TIMESTAMPTZ", expected + "Z", "io.debezium.time.ZonedTimestamp") == {"S": expected + "Z"}
    if micro % 1000 == 0:  # timestamp(0..3) arrive as milliseconds
        assert from_debezium("TIMESTAMP", micros // 1000, "io.debezium.time.Timestamp") == {"S": expected}
    assert from_text("DATE", expected[:10]) == {"S": expected[:10]}
    assert from_debezium("DATE", micros // 86_400_000_000, "io.debezium.time.Date") == {"S": expected[:10]}


@examples
@given(instant=instants())
def test_times_have_six_fraction_digits_on_both_paths(instant: tuple[int, int, int, int, int, int, int]) -> None:
    *_, hh, mm, ss, micro = instant
    expected = f"{hh:02d}:{mm:02d}:{ss:02d}.{micro:06d}"
    micros = ((hh * 60 + mm) * 60 + ss) * 1_000_000 + micro
    assert from_text("TIME", f"{hh:02d}:{mm:02d}:{ss:02d}{_pg_fraction(micro)}") == {"S": expected}
    assert from_debezium("TIME", micros, "io.debezium.time.MicroTime") == {"S": expected}


# -- text arrays: any element, quoted as PostgreSQL quotes it --------------------------------------


def _pg_array_element(text: str | None) -> str:
    """How array_out writes an element: NULL bare; quoted when empty, "NULL", or holding specials."""
    if text is None:
        return "NULL"
    if text == "" or text.upper() == "NULL" or any(c in text for c in '{},"\\ \t\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


@examples
@given(elements=st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=6))
def test_text_arrays_with_nulls_agree_on_both_paths(elements: list[str | None]) -> None:
    literal = "{" + ",".join(_pg_array_element(e) for e in elements) + "}"
    expected = {"L": [{"NULL": True} if e is None else {"S": e} for e in elements]}
    assert from_text("_TEXT", literal) == expected
    assert from_debezium("_TEXT", elements) == expected
