"""The unit of work (the session): the rows an operation touches, read once and written in bulk.

Every operation that moves a member's balances, counters or tier opens one over the standings
it locked: a chunk of the event pipeline (``pipeline.CHUNK_EVENTS`` events), or a batch of one
for an adjustment, a reversal, a redemption, a periodic job's member (``ledger.session``).
Each step is handed it as an argument. Recording an event reads and changes a handful of small
rows per member (standing, rule counters, tallies, streaks, quest progress, activity,
leaderboard scores) and appends others (the event, badge awards, ledger entries, point lots):
each table is read once, for every member of the batch, on first use; changes stay in memory;
``flush`` writes each table in one bulk statement and appends the new rows in dependency order
(events, badge awards, entries, lots, lot movements, tier changes).

Values computed in memory are exact because the caller holds every member's standing lock for
the whole transaction, and every write to these rows goes through here. Rare outcomes (a gift,
a completed quest, an activity transition, a redemption, webhooks) are written at once, to
other rows (``save_now``); their ledger entries go through here too, as do the standing's tier
columns and its tier history.
"""

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from django.db.models import (
    Model,
    QuerySet,
)
from django.utils import timezone

from accounts import services as accounts_services
from core import sql
from loyalty.models import (
    BadgeAward,
    Currency,
    Event,
    LedgerEntry,
    LotMovement,
    MemberStanding,
    PointLot,
    TierChange,
)
from loyalty.periods import period_start
from loyalty.persistence import bulk
from loyalty.persistence.bulk import Write

# Writes leaderboard score deltas, keyed (board id, period start, member id), with writes along.
AddScores = Callable[[dict[tuple[int, Any, int], int], list[Write]], None]


class UnitOfWork:
    def __init__(
        self,
        standings: dict[int, MemberStanding],
        external_ids: dict[int, str],
        since: datetime,
        add_scores: "AddScores",
    ):
        self.standings = standings
        self._add_scores_to_store = add_scores
        self.external_ids = external_ids
        self.since = since  # the batch's earliest event time: older period rows are not read
        self.events: list[Event] = []
        self.entries: list[LedgerEntry] = []
        self._growth_posted: dict[int, list[LedgerEntry]] = {}
        self.lots: list[PointLot] = []
        self.lot_movements: list[LotMovement] = []
        self.awards: list[BadgeAward] = []
        self.tier_changes: list[TierChange] = []
        self._sourced: list[tuple[LedgerEntry, Model]] = []  # entries whose source is unwritten
        self.touched: set[int] = set()
        self.scores: dict[tuple[int, Any, int], int] = {}  # leaderboard score deltas
        # Bonuses given in the flow (badges, quests, gifts), for the events' answers.
        self.bonuses: list[dict[str, Any]] = []
        self._rows: dict[type[Model], dict[Hashable, Model]] = {}
        self._dirty: dict[type[Model], dict[int, Model]] = {}  # changed rows by identity
        self._later: list[Write] = []  # writes answering nothing, sent with a later statement
        self._memo: dict[Hashable, Any] = {}

    # --- Reading ------------------------------------------------------------------------------

    @property
    def member_ids(self) -> list[int]:
        return list(self.standings)

    @property
    def period_floor(self) -> date:
        """The first day of every day, week or month period holding one of the batch's events:
        period rows (counters, quest progress) starting earlier are never read."""
        return min(period_start("week", self.since), period_start("month", self.since))

    def row(
        self,
        model: type[Model],
        key: Hashable,
        *,
        index: Callable[[Model], Hashable],
        query: Callable[[list[int]], QuerySet],
        new: Callable[[], Model],
    ) -> Model:
        """One of the batch's rows of ``model``, found by ``key`` among those that
        ``query(member_ids)`` reads, once, the first time the table is asked for (keyed by
        ``index``); ``new()`` when missing, kept for the next asker."""
        if model not in self._rows:
            self._rows[model] = {index(row): row for row in query(self.member_ids)}
        rows = self._rows[model]
        if key not in rows:
            rows[key] = new()
        return rows[key]

    def external_id(self, member_id: int) -> str | None:
        """The host app's id of a member (known for the batch's members, else read once)."""
        if member_id not in self.external_ids:
            self.external_ids[member_id] = accounts_services.member_external_id(member_id)
        return self.external_ids[member_id]

    def memo(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """A value read once per unit of work (e.g. the key action definitions)."""
        if key not in self._memo:
            self._memo[key] = load()
        return self._memo[key]

    def growth_since(self, member_id: int, start: datetime) -> int:
        """The member's growth effective from ``start``: what the ledger held when the batch
        began (one query for all members per window start) plus what the batch posted."""
        sums = self.memo(("growth_since", start), lambda: self._growth_sums(start))
        posted = sum(
            entry.amount
            for entry in self._growth_posted.get(member_id, ())
            if entry.effective_at >= start
        )
        return (sums.get(member_id) or 0) + posted

    def _growth_sums(self, start: datetime) -> dict[int, int]:
        members, params = sql.any_of("member_id", self.member_ids)
        return dict(
            sql.fetch(
                "SELECT member_id, CAST(SUM(amount) AS BIGINT) "
                f"FROM {LedgerEntry._meta.db_table} "
                f"WHERE {members} AND currency = %s AND effective_at >= %s GROUP BY member_id",
                [*params, Currency.GROWTH, start],
            )
        )

    # --- Writing ------------------------------------------------------------------------------

    def post(self, entries: list[LedgerEntry], sources: list[Model | None]) -> None:
        """Ledger entries to write (``ledger_post``); an entry's source
        row, if given, is written first and its id becomes the entry's source id."""
        self.entries += entries
        self._sourced += [
            (entry, source) for entry, source in zip(entries, sources, strict=True) if source
        ]
        for entry in entries:
            self.touched.add(entry.member_id)
            if entry.currency == Currency.GROWTH:
                self._growth_posted.setdefault(entry.member_id, []).append(entry)

    def tier_moved(self, standing: MemberStanding, change: TierChange | None = None) -> None:
        """The standing's tier columns changed in memory (and ``change`` records why): the
        flush writes both."""
        self.standing_changed(standing)
        if change is not None:
            self.tier_changes.append(change)

    def standing_changed(self, standing: MemberStanding) -> None:
        """A column of the standing changed in memory: the flush writes it."""
        self.touched.add(standing.pk)

    def award(self, award: BadgeAward) -> None:
        """A badge award to write (before the ledger entries of its bonus)."""
        self.awards.append(award)

    def changed(self, row: Model) -> None:
        """Mark a row taken from ``row`` as changed: ``flush`` writes it."""
        self._dirty.setdefault(type(row), {})[id(row)] = row

    def write_later(self, writes: list[Write]) -> None:
        """Writes answering nothing, to rows the unit of work does not track, sent along the
        flush: unless a read of those rows comes first, which must send them before it
        (``written_later``)."""
        self._later += writes

    def written_later(self) -> None:
        """Send the writes kept for later now: a read of their rows follows."""
        writes, self._later = self._later, []
        bulk.send(writes)

    def save_now(self, row: Model) -> None:
        """Write a row at once (when its id is needed, or others count it) instead of with
        the flush."""
        row.save()
        self._dirty.get(type(row), {}).pop(id(row), None)  # nothing left to flush for it

    def flush(self) -> None:
        """Write everything, in as few statements as the tables allow (``bulk.write_all``):
        the last step of the unit of work. New rows go in the order they point at each other
        (an entry at its event, a lot at its entry); the leaderboard scores go last, with the
        rest riding along their statement."""
        standings = [self.standings[pk] for pk in sorted(self.touched)]
        now = timezone.now()
        for standing in standings:
            standing.updated_at = now
        bulk.write_all(
            new=[
                (model, rows)
                for model, rows in (
                    (Event, self.events),
                    (BadgeAward, self.awards),
                    (LedgerEntry, self.entries),
                    (PointLot, self.lots),
                    (LotMovement, self.lot_movements),
                    (TierChange, self.tier_changes),
                )
                if rows
            ],
            upserted=[(model, list(rows.values())) for model, rows in self._dirty.items()],
            updated=[(MemberStanding, standings)],
            link=self._link_sources,
            link_before=LedgerEntry,
            finish=self._add_scores,
            along=self._later,
        )

    def _link_sources(self) -> None:
        """An entry's source id is its source row's, known once that row has an id."""
        for entry, source in self._sourced:
            entry.source_id = str(source.pk)

    def _add_scores(self, along: list[Write]) -> None:
        """Add the leaderboard score deltas, with ``along`` in their statement."""
        if not self.scores:
            bulk.send(along)
            return
        self._add_scores_to_store(self.scores, along)


@contextmanager
def unit_of_work(
    standings: dict[int, MemberStanding],
    external_ids: dict[int, str],
    *,
    since: datetime,
    add_scores: "AddScores",
) -> Iterator[UnitOfWork]:
    """A unit of work over these locked standings; the caller flushes before leaving.
    ``add_scores(deltas, along)`` writes the leaderboard score deltas with ``along`` (the
    leaderboard store, which sits above this layer)."""
    yield UnitOfWork(standings, external_ids, since, add_scores)
