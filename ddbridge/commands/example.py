"""``ddbridge example load|traffic``: the payments example data set."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ddbridge.app import example_app
from ddbridge.output import emit, run, say, state


@example_app.command("load")
def example_load(
    rows: Annotated[int, typer.Option(help="Rows to generate (the guide's scale is 500,247).")] = 500_247,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    reset: Annotated[bool, typer.Option(help="Drop and recreate the payments table first.")] = True,
) -> None:
    """Create the payments schema and load generated rows with COPY."""
    from examples.payments.generate import load_payments

    settings = run(state.settings)
    started = time.monotonic()
    loaded = run(lambda: load_payments(settings.source.dsn.get_secret_value(), rows, seed=seed, reset=reset))
    elapsed = time.monotonic() - started
    emit({"rows": loaded, "seconds": round(elapsed, 2)}, lambda: say(f"loaded {loaded:,} payments in {elapsed:.1f} s"))


@example_app.command("traffic")
def example_traffic(
    rate: Annotated[float, typer.Option(help="Changes per second.")] = 20.0,
    duration: Annotated[float, typer.Option(help="Seconds to run.")] = 60.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """Live application traffic on the payments table: new payments, settlements, failures, refunds,
    amount and date corrections (moves), deletes."""
    import threading

    from examples.payments import traffic

    settings = run(state.settings)
    say(f"applying about {rate:g} changes/s for {duration:g} s to {settings.mapping().source}")
    done = traffic.run(
        settings.source.dsn.get_secret_value(), threading.Event(), rate=rate, seed=seed, duration=duration
    )
    emit(dict(done), lambda: say(traffic.describe(done)))
