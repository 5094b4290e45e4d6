"""Live application traffic on the payments table, for the demo and the tests: what a payments
service does all day while the migration runs.

Each step is one short transaction: a new instalment (Pending), a Pending payment settled
(Completed, with a transaction reference) or Failed, a refund, an amount correction, a payment-date
correction (which moves the DynamoDB item: the date is part of its sort key), or a cancelled
payment deleted. Steps are paced to ``rate`` per second.

Usage::

    python -m examples.payments.traffic --dsn postgresql://... --rate 20 --duration 60
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg

KINDS = ("new", "settled", "failed", "refund", "amount", "date", "delete")
WEIGHTS = (25, 22, 6, 10, 15, 12, 10)


def _pick(conn: psycopg.Connection[Any], rng: random.Random, where: str = "TRUE") -> tuple[Any, ...] | None:
    """A random row (by a random point in the id range, then the next id) matching ``where``."""
    low, high = conn.execute("SELECT min(payment_id), max(payment_id) FROM payments").fetchone() or (None, None)
    if low is None or high is None:
        return None
    start = rng.randint(int(low), int(high))
    query = (
        "SELECT payment_id, loan_id, customer_id, payment_number, payment_date, payment_amount, "
        f"principal_amount, interest_amount, payment_method FROM payments WHERE {where} AND payment_id >= %s "
        "ORDER BY payment_id LIMIT 1"
    )
    return conn.execute(query, (start,)).fetchone() or conn.execute(query, (low,)).fetchone()


def step(conn: psycopg.Connection[Any], rng: random.Random) -> str:
    """Apply one random change; returns what it did (one of KINDS, or 'none')."""
    kind = rng.choices(KINDS, WEIGHTS)[0]
    if kind == "new":
        row = _pick(conn, rng)
        if row is None:
            return "none"
        _, loan, customer, _, day, amount, principal, interest, method = row
        conn.execute(
            "INSERT INTO payments (customer_id, loan_id, payment_number, payment_date, payment_amount, "
            "principal_amount, interest_amount, payment_method, payment_status) "
            "SELECT %s, %s, coalesce(max(payment_number), 0) + 1, %s::date + 30, %s, %s, %s, %s, 'Pending' "
            "FROM payments WHERE loan_id = %s",
            (customer, loan, day, amount, principal, interest, method, loan),
        )
        return kind
    if kind in ("settled", "failed"):
        row = _pick(conn, rng, "payment_status = 'Pending'")
        if row is None:
            return "none"
        if kind == "settled":
            conn.execute(
                "UPDATE payments SET payment_status = 'Completed', processed_date = now(), updated_date = now(), "
                "transaction_reference = 'TXN-LIVE-' || payment_id WHERE payment_id = %s",
                (row[0],),
            )
        else:
            conn.execute(
                "UPDATE payments SET payment_status = 'Failed', processed_date = now(), updated_date = now() "
                "WHERE payment_id = %s",
                (row[0],),
            )
        return kind
    if kind == "refund":
        row = _pick(conn, rng, "payment_status = 'Completed'")
        if row is None:
            return "none"
        conn.execute(
            "UPDATE payments SET payment_status = 'Refunded', updated_date = now() WHERE payment_id = %s", (row[0],)
        )
        return kind
    if kind == "amount":
        row = _pick(conn, rng)
        if row is None:
            return "none"
        cents = rng.choice([-100, -25, 25, 100, 250])
        conn.execute(
            "UPDATE payments SET payment_amount = payment_amount + %s / 100.0, "
            "interest_amount = interest_amount + %s / 100.0, updated_date = now() "
            "WHERE payment_id = %s AND interest_amount + %s / 100.0 >= 0 AND payment_amount + %s / 100.0 > 0",
            (cents, cents, row[0], cents, cents),
        )
        return kind
    if kind == "date":
        row = _pick(conn, rng)
        if row is None:
            return "none"
        conn.execute(
            "UPDATE payments SET payment_date = payment_date + %s, updated_date = now() WHERE payment_id = %s",
            (rng.choice([-3, -2, -1, 1, 2, 3]), row[0]),
        )
        return kind
    row = _pick(conn, rng, "payment_status IN ('Pending', 'Failed')")
    if row is None:
        return "none"
    conn.execute("DELETE FROM payments WHERE payment_id = %s", (row[0],))
    return "delete"


def run(
    dsn: str, stop: threading.Event, *, rate: float = 20.0, seed: int = 1, duration: float | None = None
) -> Counter[str]:
    """Apply changes at about ``rate`` per second until ``stop`` is set (or ``duration`` passes)."""
    rng = random.Random(seed)
    done: Counter[str] = Counter()
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set() and (duration is None or time.monotonic() - started < duration):
            done[step(conn, rng)] += 1
            lag = started + sum(done.values()) / rate - time.monotonic()
            if lag > 0:
                stop.wait(lag)
    return done


def describe(done: Counter[str]) -> str:
    """A one-line summary of what the traffic did."""
    words = {
        "new": "new payments",
        "settled": "settled",
        "failed": "failed",
        "refund": "refunds",
        "amount": "amount corrections",
        "date": "date corrections (item moves)",
        "delete": "deletes",
    }
    return ", ".join(f"{done[k]:,} {words[k]}" for k in KINDS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--rate", type=float, default=20.0, help="changes per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    done = run(args.dsn, threading.Event(), rate=args.rate, seed=args.seed, duration=args.duration)
    print(describe(done))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
