"""``ddbridge tombstones purge`` and ``ddbridge truncate recover``: sweeps of the target."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from ddbridge.app import tombstones_app, truncate_app
from ddbridge.output import emit, run, say, state


@tombstones_app.command("purge")
def tombstones_purge(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Purge although a backfill of the table is recorded as in progress.")
    ] = False,
) -> None:
    """Delete tombstones past their grace (migration.tombstone_grace_days), never during a backfill.

    Run it after cutover of reads (readers must treat `_deleted` items as absent until then). Each
    delete is conditional on the item still being that tombstone.
    """
    from reconcile.tombstones import purge

    settings = run(state.settings)
    result = run(lambda: purge(settings, table, dry_run=dry_run, force=force))
    verb = "would delete" if dry_run else "deleted"
    emit(
        asdict(result),
        lambda: say(
            f"{result.table}: {result.tombstones:,} tombstones; {verb} {result.purged:,} past their grace, "
            f"{result.not_due:,} still within it, {result.changed:,} changed meanwhile (kept)"
        ),
    )


@truncate_app.command("recover")
def truncate_recover(
    table: Annotated[str | None, typer.Option("--table", "-t", help="Mapped table (default: the only one).")] = None,
    lsn: Annotated[
        int | None, typer.Option(help="LSN of the TRUNCATE (default: the one the bridge stopped at and recorded).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Recover although bridges or a backfill of the table seem to be running.")
    ] = False,
) -> None:
    """After the bridge stopped at a TRUNCATE: set the table's LSN floor and remove what the truncate deleted.

    Stop every `ddbridge stream` of the group first. Afterwards DynamoDB holds only the stream's writes
    from after the truncate, and the bridge drops every change from before it; start the bridges again.
    """
    from reconcile.truncate import recover

    settings = run(state.settings)
    result = run(lambda: recover(settings, table, lsn, force=force))
    emit(
        asdict(result),
        lambda: say(
            f"{result.table}: TRUNCATE at LSN {result.lsn} recovered: floor set; {result.scanned:,} items scanned, "
            f"{result.removed:,} removed, {result.kept:,} written after the truncate kept"
            + (f", {result.changed:,} rewritten meanwhile (kept)" if result.changed else "")
            + ". Start the bridges again (`ddbridge stream`)"
        ),
    )
