"""In-flight tolerance: a candidate difference is reported only when it survives re-checks made after
the bridge caught up.

One re-check of a key reads its row from PostgreSQL (noting the WAL position), waits until the bridge
has applied everything up to that position, reads the item from DynamoDB (strongly consistent), and
reads the row again. The key is *resolved* when DynamoDB equals the latest row. It counts towards
*confirmed* only when the row did not change between the two reads (so no commit raced the
DynamoDB read) and the bridge had caught up; ``confirm_rounds`` such re-checks in a row confirm it.
Keys that keep changing, or a bridge that never catches up, leave the key *unsettled* at the deadline.

A few candidates (at most ``FIRST_LOOK_LIMIT``) first get one look without waiting, which spares the
wait for the slot to move when every difference was in flight; many candidates (a schema change, an
unfinished backfill) go straight to the re-checks, where a look costs more than the wait.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from bridge.config import Settings
from bridge.dynamo import make_reader
from bridge.errors import CodecError
from reconcile.canonical import FieldDiff, Item, KeyTexts, bookkeeping_names, content, digest, field_diff
from reconcile.catchup import CatchUp, CatchUpState
from reconcile.compare import Candidate
from reconcile.source import SourceTable
from reconcile.target import get_items

if TYPE_CHECKING:
    pass

FIRST_LOOK_LIMIT = 1_000

DiffKind = Literal["missing", "extra", "different", "unstorable", "unsettled"]


@dataclass
class Difference:
    """A confirmed (or unsettled) difference, with both sides as last read."""

    key: KeyTexts
    kind: DiffKind
    pk: tuple[str, ...] | None
    expected: Item | None  # what PostgreSQL says the item must be (content only)
    actual: Item | None  # the DynamoDB item as read, bookkeeping included (None: absent)
    fields: list[FieldDiff] = field(default_factory=list)
    detail: str = ""


@dataclass
class RecheckResult:
    confirmed: list[Difference] = field(default_factory=list)
    unsettled: list[Difference] = field(default_factory=list)
    resolved: int = 0
    rounds: int = 0
    catchup: CatchUpState | None = None


@dataclass
class _Track:
    candidate: Candidate
    streak: int = 0
    expected: Item | None = None
    actual: Item | None = None
    detail: str = ""


def _digest(item: Item | None) -> bytes | None:
    return None if item is None else digest(item)


class Rechecker:
    """Re-checks candidate keys until each is resolved, confirmed or unsettled."""

    def __init__(
        self,
        settings: Settings,
        source: SourceTable,
        catchup: CatchUp,
        *,
        sleep: Callable[[float], None] = time.sleep,
        confirm_rounds: int | None = None,
    ) -> None:
        self.settings = settings
        self.confirm_rounds = settings.reconcile.confirm_rounds if confirm_rounds is None else confirm_rounds
        self.source = source
        self.catchup = catchup
        self.sleep = sleep
        self.book = settings.bookkeeping
        self.hidden = bookkeeping_names(self.book)
        self.key_names = source.mapper.key_names
        self.key_types = source.mapper.key_types
        workers = settings.reconcile.scan_segments  # as many as the Scan
        self.batch_get = make_reader(settings.dynamodb, "BatchGetItem", pool_size=workers + 2, attempts=8)

    # -- reading both sides --------------------------------------------------------------------

    def _items(self, keys: Sequence[KeyTexts]) -> dict[KeyTexts, Item]:
        target, workers = self.source.mapping.target, self.settings.reconcile.scan_segments
        return get_items(self.batch_get, target, self.key_names, self.key_types, keys, workers=workers)

    def _expected(self, pks: Sequence[tuple[str, ...]]) -> tuple[str, dict[KeyTexts, Item], dict[KeyTexts, str]]:
        """PostgreSQL's items for these primary keys (by item key), unencodable rows' reasons, and the
        WAL position of the read."""
        with self.source.connect() as conn:
            lsn, records = self.source.fetch(conn, pks)
        items: dict[KeyTexts, Item] = {}
        errors: dict[KeyTexts, str] = {}
        for record in records:
            try:
                key, item = self.source.item(self.source.row(record))
                items[key] = item
            except CodecError as exc:
                with contextlib.suppress(CodecError):  # not even the key: the full pass reports it
                    errors[self.source.key_only(record)[0]] = str(exc)
        return lsn, items, errors

    def _live(self, item: Item | None) -> Item | None:
        if item is None or self.book.deleted in item:
            return None
        return content(item, self.hidden)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, candidates: Sequence[Candidate]) -> RecheckResult:
        """Re-check every candidate (unstorable rows are confirmed as they are: no wait fixes them)."""
        result = RecheckResult()
        pending: dict[KeyTexts, _Track] = {}
        for candidate in candidates:
            if candidate.kind == "unstorable" or not candidate.key:
                result.confirmed.append(
                    Difference(candidate.key, "unstorable", candidate.pk, None, None, detail=candidate.detail)
                )
            else:
                pending.setdefault(candidate.key, _Track(candidate))
        if not pending:
            return result
        deadline = time.monotonic() + self.settings.reconcile.in_flight_timeout_s
        waiting = len(pending) > FIRST_LOOK_LIMIT  # a first look only drops what already agrees: no wait
        while pending:
            state = self._round(pending, result, deadline if waiting else None)
            if state is not None:
                result.catchup = state
            if waiting:
                result.rounds += 1
            if not pending:
                break
            if time.monotonic() >= deadline:
                why = result.catchup.detail if result.catchup and result.catchup.status == "behind" else ""
                for key, track in pending.items():
                    result.unsettled.append(self._difference(key, track, "unsettled", why or track.detail))
                break
            if waiting and (state is None or state.status == "no-stream"):
                self.sleep(1.0)
            waiting = True
        return result

    def _round(
        self, pending: dict[KeyTexts, _Track], result: RecheckResult, deadline: float | None
    ) -> CatchUpState | None:
        keys = list(pending)
        unknown = [k for k in keys if pending[k].candidate.pk is None]
        if unknown:
            for key, item in self._items(unknown).items():
                pending[key].candidate.pk = self.source.primary_key_of_item(key, item)
        pks = [t.candidate.pk for t in pending.values() if t.candidate.pk is not None]
        state: CatchUpState | None = None
        before: dict[KeyTexts, Item] = {}
        if deadline is not None:  # a waited re-check: the row as it was before the wait, and the wait
            lsn, before, _ = self._expected(pks)
            state = self.catchup.wait(lsn, deadline)
        actual = self._items(keys)
        _, after, errors = self._expected(pks)
        for key in keys:
            track = pending[key]
            track.expected, track.actual = after.get(key), actual.get(key)
            if key in errors:
                result.confirmed.append(self._difference(key, track, "unstorable", errors[key]))
                del pending[key]
                continue
            if _digest(self._live(track.actual)) == _digest(track.expected):
                result.resolved += 1
                del pending[key]
                continue
            if deadline is None:
                continue
            if _digest(before.get(key)) != _digest(track.expected):
                track.streak, track.detail = 0, "the row kept changing while it was re-checked"
            elif state is not None and state.status == "behind":
                track.streak, track.detail = 0, state.detail
            else:
                track.streak += 1
            if track.streak >= self.confirm_rounds:
                result.confirmed.append(self._difference(key, track, self._kind(track), ""))
                del pending[key]
        return state

    def _kind(self, track: _Track) -> DiffKind:
        live = self._live(track.actual)
        if track.expected is None:
            return "extra"
        return "missing" if live is None else "different"

    def _difference(self, key: KeyTexts, track: _Track, kind: DiffKind, detail: str) -> Difference:
        live = self._live(track.actual)
        if not detail and track.actual is not None:
            src = track.actual.get(self.book.source, {}).get("S", "not ddbridge")
            lsn = track.actual.get(self.book.lsn, {}).get("N")
            tomb = " (a tombstone: deleted)" if self.book.deleted in track.actual else ""
            detail = f"DynamoDB item written by {src}" + (f" at LSN {lsn}" if lsn else "") + tomb
        return Difference(
            key,
            kind,
            track.candidate.pk,
            track.expected,
            track.actual,
            field_diff(track.expected, live) if kind in ("different", "unsettled") else [],
            detail,
        )
