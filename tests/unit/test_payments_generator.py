"""Unit tests for the payments example data generator (no database needed)."""

from __future__ import annotations

import inspect
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice

import pytest

from examples.payments.generate import (
    COLUMNS,
    FIRST_DATE,
    LAST_DATE,
    METHODS,
    STATUSES,
    Payment,
    iter_copy_lines,
    iter_payment_rows,
    load_payments,
    schema_sql,
)

SAMPLE_ROWS = 30_011
END_OF_DATA = datetime(LAST_DATE.year, LAST_DATE.month, LAST_DATE.day, tzinfo=UTC) + timedelta(days=1)


@pytest.fixture(scope="module")
def sample() -> list[Payment]:
    return list(iter_payment_rows(SAMPLE_ROWS, seed=42))


@pytest.mark.parametrize("rows", [0, 1, 2, 7, 13, 100, 1_001, 12_345])
def test_yields_exactly_rows_with_ids_1_to_rows(rows: int) -> None:
    ids = [p.payment_id for p in iter_payment_rows(rows, seed=3)]
    assert ids == list(range(1, rows + 1))


def test_sample_ids(sample: list[Payment]) -> None:
    assert [p.payment_id for p in sample] == list(range(1, SAMPLE_ROWS + 1))
    assert all(len(p) == len(COLUMNS) for p in sample)


def test_principal_plus_interest_equals_amount(sample: list[Payment]) -> None:
    for p in sample:
        assert p.principal_amount + p.interest_amount == p.payment_amount
        assert p.payment_amount > 0
        assert p.principal_amount >= 0
        assert p.interest_amount >= 0
        for amount in (p.payment_amount, p.principal_amount, p.interest_amount):
            assert isinstance(amount, Decimal)
            assert amount.as_tuple().exponent == -2


def test_loan_payment_numbers_unique_and_monthly(sample: list[Payment]) -> None:
    keys = [(p.loan_id, p.payment_number) for p in sample]
    assert len(set(keys)) == len(keys)
    by_loan: dict[int, list[Payment]] = defaultdict(list)
    for p in sample:
        by_loan[p.loan_id].append(p)
    for payments in by_loan.values():
        assert [p.payment_number for p in payments] == list(range(1, len(payments) + 1))
        assert len({p.customer_id for p in payments}) == 1
        assert len({p.payment_date.day for p in payments}) == 1
        months = [p.payment_date.year * 12 + p.payment_date.month for p in payments]
        assert months == list(range(months[0], months[0] + len(months)))


def test_transaction_reference_unique_when_not_null(sample: list[Payment]) -> None:
    refs = [p.transaction_reference for p in sample if p.transaction_reference is not None]
    assert len(set(refs)) == len(refs)
    assert all(re.fullmatch(r"TXN-[0-9A-F]{12}", ref) for ref in refs)
    null_statuses = {p.payment_status for p in sample if p.transaction_reference is None}
    assert null_statuses <= {"Pending", "Failed"}
    assert 0.02 < (len(sample) - len(refs)) / len(sample) < 0.08


def test_dates_within_range_and_timestamps_consistent(sample: list[Payment]) -> None:
    for p in sample:
        assert FIRST_DATE <= p.payment_date <= LAST_DATE
        midnight = datetime(p.payment_date.year, p.payment_date.month, p.payment_date.day, tzinfo=UTC)
        assert p.created_date.utcoffset() == timedelta(0)
        assert midnight <= p.created_date < midnight + timedelta(days=1)
        assert p.updated_date < END_OF_DATA
        if p.payment_status == "Pending":
            assert p.processed_date is None
            assert p.updated_date == p.created_date
        else:
            assert p.processed_date is not None
            assert p.created_date < p.processed_date < midnight + timedelta(days=1)
            assert p.updated_date >= p.processed_date


def test_payment_ids_follow_payment_dates(sample: list[Payment]) -> None:
    dates = [p.payment_date for p in sample]
    assert dates == sorted(dates)


def test_pending_only_for_most_recent_payments(sample: list[Payment]) -> None:
    pending = [p.payment_date for p in sample if p.payment_status == "Pending"]
    settled = [p.payment_date for p in sample if p.payment_status != "Pending"]
    assert pending
    assert min(pending) > max(settled)


def test_distributions(sample: list[Payment]) -> None:
    n = len(sample)
    customers = {p.customer_id for p in sample}
    assert abs(len(customers) - n / 12) < n / 12 * 0.02
    loans_per_customer = Counter(len(s) for s in _loans_by_customer(sample).values())
    assert set(loans_per_customer) <= {1, 2, 3}
    methods = Counter(p.payment_method for p in sample)
    assert set(methods) <= set(METHODS)
    for method, share in zip(METHODS, (0.55, 0.30, 0.08, 0.05, 0.02), strict=True):
        assert abs(methods[method] / n - share) < 0.02, method
    statuses = Counter(p.payment_status for p in sample)
    assert set(statuses) == set(STATUSES)
    assert 0.90 < statuses["Completed"] / n < 0.96


def _loans_by_customer(sample: list[Payment]) -> dict[int, set[int]]:
    loans: dict[int, set[int]] = defaultdict(set)
    for p in sample:
        loans[p.customer_id].add(p.loan_id)
    return loans


def test_deterministic_for_a_seed(sample: list[Payment]) -> None:
    assert list(iter_payment_rows(SAMPLE_ROWS, seed=42)) == sample
    assert list(iter_payment_rows(500, seed=43)) != sample[:500]


def test_streams_lazily() -> None:
    first = list(islice(iter_payment_rows(200_000, seed=1), 3))
    assert [p.payment_id for p in first] == [1, 2, 3]
    assert inspect.isgenerator(iter_payment_rows(200_000, seed=1))
    assert inspect.isgenerator(iter_copy_lines(200_000, seed=1))


def _copy_text(p: Payment) -> str:
    def field(value: object) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"
        return str(value)

    return "\t".join(field(v) for v in p) + "\n"


def test_copy_lines_match_typed_rows() -> None:
    lines = list(iter_copy_lines(5_000, seed=9))
    assert lines == [_copy_text(p) for p in iter_payment_rows(5_000, seed=9)]
    assert all(line.count("\t") == len(COLUMNS) - 1 for line in lines)


def test_schema_script() -> None:
    text = schema_sql()
    assert "DROP TABLE IF EXISTS public.payments CASCADE;" in text
    assert text.rstrip().endswith("ALTER TABLE public.payments REPLICA IDENTITY FULL;")
    for column in COLUMNS:
        assert re.search(rf"^\s+{column}\s", text, re.MULTILINE), column


def test_load_payments_validates_arguments() -> None:
    with pytest.raises(ValueError):
        load_payments("postgresql://unused", rows=-1)
    with pytest.raises(ValueError):
        load_payments("postgresql://unused", rows=10, batch_rows=0)
