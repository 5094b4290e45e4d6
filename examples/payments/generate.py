"""Deterministic data generator and fast COPY loader for the ``public.payments`` example table.

The data models a small consumer-loan book: about ``rows / 12`` customers, each with 1-3 loans,
and one row per monthly instalment of a loan. Instalments are emitted in chronological order, so
``payment_id`` (1..rows) increases with ``payment_date`` like in a real OLTP table. All dates
fall between 2020-01-01 and 2024-01-31 ("today" for the data set); all timestamps are UTC.

Usage::

    python -m examples.payments.generate --dsn postgresql://user@host:5432/db --rows 500247
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from itertools import islice
from typing import Final, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

__all__ = [
    "FIRST_DATE",
    "LAST_DATE",
    "METHODS",
    "STATUSES",
    "Payment",
    "iter_copy_lines",
    "iter_payment_rows",
    "load_payments",
    "main",
    "schema_sql",
]

FIRST_DATE: Final = date(2020, 1, 1)
LAST_DATE: Final = date(2024, 1, 31)
METHODS: Final = ("ACH", "CARD", "WIRE", "CHECK", "CASH")
STATUSES: Final = ("Pending", "Completed", "Failed", "Refunded", "Reversed")

COLUMNS: Final = (
    "payment_id",
    "customer_id",
    "loan_id",
    "payment_number",
    "payment_date",
    "payment_amount",
    "principal_amount",
    "interest_amount",
    "payment_method",
    "payment_status",
    "transaction_reference",
    "processed_date",
    "created_date",
    "updated_date",
)
COPY_SQL: Final = f"COPY public.payments ({', '.join(COLUMNS)}) FROM STDIN"
# Key constraints and plain indexes of the table, to drop before a bulk load and rebuild after it.
_KEY_CONSTRAINTS_SQL: Final = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = 'public.payments'::regclass AND contype IN ('p', 'u', 'x')
ORDER BY contype, conname
"""
_PLAIN_INDEXES_SQL: Final = """
SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = 'public.payments'::regclass
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname
"""
SETVAL_SQL: Final = (
    "SELECT setval(pg_get_serial_sequence('public.payments', 'payment_id'), max(payment_id)) FROM public.payments"
)

_N_MONTHS: Final = 49  # month index 0 = 2020-01 ... 48 = 2024-01; instalments fall in months 1..48
_MAX_PAYMENTS: Final = _N_MONTHS - 1
_TERMS: Final = (12, 24, 36, 48, 60)
_METHOD_CUM: Final = (0.55, 0.85, 0.93, 0.98)  # ACH 55%, CARD 30%, WIRE 8%, CHECK 5%, CASH 2%
_KEEP_METHOD: Final = 0.85  # share of instalments paid with the loan's usual method
_ACTIVE_SHARE: Final = 0.6  # loans still being repaid in January 2024
_PENDING_FROM_ORD: Final = date(2024, 1, 21).toordinal()  # recent instalments are not settled yet
_P_FAILED: Final = 0.027
_P_REFUNDED: Final = _P_FAILED + 0.010
_P_REVERSED: Final = _P_REFUNDED + 0.009
_US_HOUR: Final = 3_600_000_000
_US_DAY: Final = 24 * _US_HOUR
_LAST_US: Final = (LAST_DATE.toordinal() + 1 - FIRST_DATE.toordinal()) * _US_DAY - 1
_MASK48: Final = (1 << 48) - 1

# payment_id, customer_id, loan_id, payment_number, payment_date (ordinal), amount, principal and
# interest (cents), method, status, reference, processed / created / updated (microseconds after
# midnight UTC of payment_date; processed -1 when NULL).
_Raw = tuple[int, int, int, int, int, int, int, int, str, str, str | None, int, int, int]


class Payment(NamedTuple):
    """One ``public.payments`` row, with the Python types psycopg reads back."""

    payment_id: int
    customer_id: int
    loan_id: int
    payment_number: int
    payment_date: date
    payment_amount: Decimal
    principal_amount: Decimal
    interest_amount: Decimal
    payment_method: str
    payment_status: str
    transaction_reference: str | None
    processed_date: datetime | None
    created_date: datetime
    updated_date: datetime


@dataclass(slots=True)
class _Loan:
    loan_id: int
    customer_id: int
    day: int  # day of month the instalment is due (1..28)
    first_month: int
    last_month: int
    term: int
    monthly_rate: float
    instalment: int  # cents
    balance: int  # cents
    method: str
    paid: int = 0  # instalments emitted so far


def schema_sql() -> str:
    """Return the text of ``schema.sql`` (drops and recreates ``public.payments``)."""
    return (files("examples.payments") / "schema.sql").read_text(encoding="utf-8")


def _pick_method(u: float) -> str:
    for method, bound in zip(METHODS, _METHOD_CUM, strict=False):
        if u < bound:
            return method
    return METHODS[-1]


def _plan_counts(rows: int, n_loans: int, rng: random.Random) -> list[int]:
    """Instalment count per loan, each 1.._MAX_PAYMENTS, summing to exactly ``rows``."""
    hi = max(1, min(_MAX_PAYMENTS, round(2 * rows / n_loans) - 1))
    counts = [rng.randint(1, hi) for _ in range(n_loans)]
    diff = rows - sum(counts)
    while diff:
        i = rng.randrange(n_loans)
        if diff > 0 and counts[i] < _MAX_PAYMENTS:
            counts[i] += 1
            diff -= 1
        elif diff < 0 and counts[i] > 1:
            counts[i] -= 1
            diff += 1
    return counts


def _plan_loans(rows: int, rng: random.Random) -> list[_Loan]:
    """Customers, their loans and each loan's schedule; only per-loan state is kept in memory."""
    n_customers = max(1, (rows + 6) // 12)
    owners = [c for c in range(1, n_customers + 1) for _ in range(rng.choices((1, 2, 3), (45, 35, 20))[0])]
    owners = owners[:rows]  # tiny data sets: at least one instalment per loan
    counts = _plan_counts(rows, len(owners), rng)
    loans: list[_Loan] = []
    for loan_id, (customer_id, count) in enumerate(zip(owners, counts, strict=True), start=1):
        active = rng.random() < _ACTIVE_SHARE  # still repaying in January 2024
        last_month = _MAX_PAYMENTS if active else rng.randint(count, _MAX_PAYMENTS)
        principal = rng.randrange(20, 1001) * 2_500  # $500 .. $25,000
        monthly_rate = rng.randrange(599, 3000) / 120_000  # APR 5.99% .. 29.99%
        term = rng.choice([t for t in _TERMS if t >= count])
        instalment = round(principal * monthly_rate / (1 - (1 + monthly_rate) ** -term))
        loans.append(
            _Loan(
                loan_id=loan_id,
                customer_id=customer_id,
                day=rng.randint(1, 28),
                first_month=last_month - count + 1,
                last_month=last_month,
                term=term,
                monthly_rate=monthly_rate,
                instalment=instalment,
                balance=principal,
                method=_pick_method(rng.random()),
            )
        )
    return loans


def _txn_salt(seed: int) -> tuple[int, int]:
    r = random.Random(f"txn-{seed}")
    return r.getrandbits(48) | 1, r.getrandbits(48)


def _loan_order(loan: _Loan) -> tuple[int, int]:
    return loan.day, loan.loan_id


def _iter_raw(rows: int, seed: int) -> Iterator[_Raw]:
    """Core generator: compact rows (ints and strings only) in ``payment_id`` order."""
    if rows <= 0:
        return
    rng = random.Random(seed)
    rand = rng.random
    starts: list[list[_Loan]] = [[] for _ in range(_N_MONTHS)]
    for loan in _plan_loans(rows, rng):
        starts[loan.first_month].append(loan)
    mult, add = _txn_salt(seed)
    active: list[_Loan] = []
    payment_id = 0
    for month in range(1, _N_MONTHS):
        active = [loan for loan in active if loan.last_month >= month]
        active.extend(starts[month])
        active.sort(key=_loan_order)
        month_ord = date(2020 + month // 12, month % 12 + 1, 1).toordinal() - 1
        for loan in active:
            payment_id += 1
            number = loan.paid = loan.paid + 1
            pay_ord = month_ord + loan.day
            balance = loan.balance
            interest = int(balance * loan.monthly_rate + 0.5)
            principal = balance if number >= loan.term else min(loan.instalment - interest, balance)
            method = loan.method if rand() < _KEEP_METHOD else _pick_method(rand())
            created = int(rand() * 2 * _US_HOUR)  # scheduled run, 00:00-02:00 UTC
            reference: str | None = None
            if pay_ord >= _PENDING_FROM_ORD:
                status = "Pending"
                loan.balance = balance - principal
                processed = -1
                updated = created
            else:
                processed = 2 * _US_HOUR + int(rand() * 8 * _US_HOUR)  # settled 02:00-10:00 UTC
                updated = processed
                u = rand()
                if u >= _P_REVERSED:
                    status = "Completed"
                    loan.balance = balance - principal
                elif u < _P_FAILED:
                    status = "Failed"
                else:
                    status = "Refunded" if u < _P_REFUNDED else "Reversed"
                    # refunded / reversed 1-10 days later, never after the end of the data set
                    last = _LAST_US - (pay_ord - FIRST_DATE.toordinal()) * _US_DAY
                    updated = min(processed + (1 + int(rand() * 10)) * _US_DAY, last)
                if status != "Failed":
                    x = (payment_id * mult + add) & _MASK48
                    x ^= x >> 21
                    x = (x * 0x5DEECE66D) & _MASK48  # odd multiplier: bijective, so unique per id
                    reference = f"TXN-{x:012X}"
            yield (
                payment_id,
                loan.customer_id,
                loan.loan_id,
                number,
                pay_ord,
                principal + interest,
                principal,
                interest,
                method,
                status,
                reference,
                processed,
                created,
                updated,
            )


def _cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def iter_payment_rows(rows: int, seed: int = 42) -> Iterator[Payment]:
    """Yield exactly ``rows`` deterministic payments (ids 1..rows), streaming without a table in memory."""
    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    first_ord = FIRST_DATE.toordinal()
    for r in _iter_raw(rows, seed):
        midnight = epoch + timedelta(days=r[4] - first_ord)
        yield Payment(
            r[0],
            r[1],
            r[2],
            r[3],
            date.fromordinal(r[4]),
            _cents(r[5]),
            _cents(r[6]),
            _cents(r[7]),
            r[8],
            r[9],
            r[10],
            None if r[11] < 0 else midnight + timedelta(microseconds=r[11]),
            midnight + timedelta(microseconds=r[12]),
            midnight + timedelta(microseconds=r[13]),
        )


def iter_copy_lines(rows: int, seed: int = 42) -> Iterator[str]:
    """Yield the rows of :func:`iter_payment_rows` as COPY text-format lines (``\\n``-terminated)."""
    first_ord = FIRST_DATE.toordinal()
    day_str = [date.fromordinal(o).isoformat() for o in range(first_ord, LAST_DATE.toordinal() + 1)]
    hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
    money = [f"{c // 100}.{c % 100:02d}" for c in range(200_000)]  # amounts up to 1,999.99
    n_money = len(money)
    null = "\\N"
    for (
        pid,
        cust,
        loan,
        num,
        pay_ord,
        amount,
        principal,
        interest,
        method,
        status,
        ref,
        proc,
        cre,
        upd,
    ) in _iter_raw(rows, seed):
        day = pay_ord - first_ord
        ds = day_str[day]
        sec, micro = divmod(cre, 1_000_000)
        created = f"{ds} {hms[sec]}.{micro:06d}+00"
        if proc < 0:
            processed = null
            updated = created
        else:
            sec, micro = divmod(proc, 1_000_000)
            processed = f"{ds} {hms[sec]}.{micro:06d}+00"
            if upd == proc:
                updated = processed
            else:
                days, sec = divmod(upd // 1_000_000, 86_400)
                updated = f"{day_str[day + days]} {hms[sec]}.{upd % 1_000_000:06d}+00"
        yield (
            f"{pid}\t{cust}\t{loan}\t{num}\t{ds}\t"
            f"{money[amount] if amount < n_money else f'{amount // 100}.{amount % 100:02d}'}\t"
            f"{money[principal] if principal < n_money else f'{principal // 100}.{principal % 100:02d}'}\t"
            f"{money[interest] if interest < n_money else f'{interest // 100}.{interest % 100:02d}'}\t"
            f"{method}\t{status}\t{ref or null}\t{processed}\t{created}\t{updated}\n"
        )


def _detach_indexes(cur: psycopg.Cursor[TupleRow]) -> list[sql.SQL | sql.Composed]:
    """Drop the table's key constraints and indexes; return the statements that rebuild them."""
    rebuild: list[sql.SQL | sql.Composed] = []
    for name, definition in cur.execute(_KEY_CONSTRAINTS_SQL).fetchall():
        cur.execute(sql.SQL("ALTER TABLE public.payments DROP CONSTRAINT {}").format(sql.Identifier(name)))
        rebuild.append(
            sql.SQL("ALTER TABLE public.payments ADD CONSTRAINT {} {}").format(
                sql.Identifier(name), sql.SQL(definition)
            )
        )
    for name, definition in cur.execute(_PLAIN_INDEXES_SQL).fetchall():
        cur.execute(sql.SQL("DROP INDEX public.{}").format(sql.Identifier(name)))
        rebuild.append(sql.SQL(definition))
    return rebuild


def load_payments(
    dsn: str,
    rows: int = 500_247,
    *,
    seed: int = 42,
    reset: bool = True,
    batch_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Load ``rows`` generated payments into ``public.payments`` with COPY; return the row count.

    With ``reset`` the table is dropped and recreated from ``schema.sql`` first; without it the
    table must exist and hold no conflicting ``payment_id`` / ``transaction_reference`` values.
    Everything runs in one transaction. ``progress`` is called with the running total after each
    batch of ``batch_rows`` rows.
    """
    if rows < 0:
        raise ValueError("rows must be >= 0")
    if batch_rows <= 0:
        raise ValueError("batch_rows must be > 0")
    lines = iter_copy_lines(rows, seed)
    loaded = 0
    rebuild: list[sql.SQL | sql.Composed] = []
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        copy_sql = COPY_SQL
        if reset:
            cur.execute(schema_sql())
            # Fresh table in this transaction: build indexes once after the load (several times
            # faster than maintaining seven B-trees row by row) and write rows already frozen.
            rebuild = _detach_indexes(cur)
            copy_sql += " (FREEZE)"
        while loaded < rows:
            batch = min(batch_rows, rows - loaded)
            with cur.copy(copy_sql) as copy:
                done = 0
                while done < batch:
                    chunk = min(2_000, batch - done)  # small writes keep client and server busy
                    copy.write("".join(islice(lines, chunk)))
                    done += chunk
            loaded += batch
            if progress is not None:
                progress(loaded)
        for statement in rebuild:
            cur.execute(statement)
        cur.execute(SETVAL_SQL)
        cur.execute("ANALYZE public.payments")
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: load the payments example table and report the elapsed time."""
    parser = argparse.ArgumentParser(
        prog="python -m examples.payments.generate", description="Load the payments example table."
    )
    parser.add_argument(
        "--dsn",
        default=os.environ.get("DDBRIDGE_SOURCE__DSN", "postgresql://ddbridge:ddbridge@127.0.0.1:55432/ddbridge"),
        help="PostgreSQL connection string (default: $DDBRIDGE_SOURCE__DSN or the local stack)",
    )
    parser.add_argument("--rows", type=int, default=500_247, help="rows to load (default: 500247)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument("--batch-rows", type=int, default=100_000, help="rows per COPY (default: 100000)")
    parser.add_argument(
        "--no-reset", dest="reset", action="store_false", help="keep the existing table (must be empty)"
    )
    args = parser.parse_args(argv)

    def report(n: int) -> None:
        print(f"  {n:,} / {args.rows:,} rows", file=sys.stderr, flush=True)

    started = time.perf_counter()
    loaded = load_payments(
        args.dsn, args.rows, seed=args.seed, reset=args.reset, batch_rows=args.batch_rows, progress=report
    )
    print(f"loaded {loaded:,} rows into public.payments in {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
