"""Why items differ: differences that share one shape are named with their likely cause. Pure.

The shape that matters most during a long migration is a schema change: ``ADD COLUMN … DEFAULT`` writes
no WAL for existing rows, so every row the application has not changed since lacks the new attribute in
DynamoDB; DROP COLUMN leaves the old attribute on them. The remedy is ``reconcile --repair`` (each
repair is conditional on the item being the version observed, so the bridge's newer writes win), not
a backfill: the backfill never overwrites what the stream wrote.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bridge.schemas import SchemaChange
from reconcile.recheck import Difference

ABSENT = "(absent)"


def shape(diff: Difference) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(attributes DynamoDB lacks, attributes only DynamoDB has, attributes whose values differ)."""
    lacking = tuple(sorted(f.attribute for f in diff.fields if f.actual == ABSENT))
    extra = tuple(sorted(f.attribute for f in diff.fields if f.expected == ABSENT))
    values = tuple(sorted(f.attribute for f in diff.fields if ABSENT not in (f.actual, f.expected)))
    return lacking, extra, values


def causes(
    differences: Sequence[Difference], changes: Sequence[SchemaChange], attribute_of: dict[str, str]
) -> list[str]:
    """Plain-words causes of the "different" items whose differences are only attributes one side lacks.

    ``attribute_of`` maps source columns to attribute names (to match recorded schema changes)."""
    shapes = Counter(shape(d) for d in differences if d.kind == "different")
    out: list[str] = []
    for (lacking, extra, values), count in shapes.most_common():
        if values or not (lacking or extra):
            continue
        words = []
        if lacking:
            added = [c for c in changes for col in c.added if attribute_of.get(col) in lacking]
            when = f" (the bridge saw it added at LSN {added[-1].lsn}, {added[-1].at})" if added else ""
            words.append(
                f"DynamoDB lacks {', '.join(lacking)}: a column added to the source after these items were "
                f"written{when}, which ADD COLUMN does not replay for existing rows"
            )
        if extra:
            dropped = [c for c in changes for col in c.dropped if attribute_of.get(col) in extra]
            when = f" (the bridge saw it dropped at LSN {dropped[-1].lsn}, {dropped[-1].at})" if dropped else ""
            words.append(f"DynamoDB still has {', '.join(extra)}: a column dropped from the source{when}")
        out.append(
            f"{count:,} items differ only in that {'; '.join(words)}. Run `ddbridge reconcile --repair` "
            "(conditional rewrites from PostgreSQL; repeat while more than reconcile.max_candidates differ)"
        )
    return out
