"""Leaderboards: scores kept as the ledger and events move, ranks read through one small
interface (``LeaderboardStore``), with the database as the embedded default.

Scores by metric, in the program's time zone, by when a movement counts (``effective_at``):

- ``growth``: growth earned, bonuses and reversals (not operator adjustments);
- ``points``: spendable points earned, bonuses, activations and reversals (not spends, expiry
  or adjustments);
- ``action_count``: events of the action, less fully reversed ones (by occurrence time).

``leaderboards_rebuild`` recomputes every score from the ledger and the events with the same
definitions, so it reproduces the incremental scores exactly.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Trunc

from accounts.models import Member
from loyalty.models import (
    Currency,
    EntryKind,
    Event,
    EventReversal,
    Leaderboard,
    LeaderboardScore,
    LedgerEntry,
)
from loyalty.periods import LIFETIME_START, local_date, next_period_start, period_start, program_tz
from loyalty.services import unit_of_work

GROWTH_KINDS = {EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSE}
POINTS_KINDS = {EntryKind.EARN, EntryKind.BONUS, EntryKind.ACTIVATE, EntryKind.REVERSE}
PERIOD_UNITS = {"day": "day", "week": "week", "month": "month"}


def board_period_start(board_period: str, at: datetime) -> date:
    return (
        LIFETIME_START
        if board_period == Leaderboard.Period.ALL_TIME
        else period_start(board_period, at)
    )


def counts_for(board: Leaderboard, *, currency: str, kind: str, pending: bool) -> bool:
    if board.metric == Leaderboard.Metric.GROWTH:
        return currency == Currency.GROWTH and kind in GROWTH_KINDS
    if board.metric == Leaderboard.Metric.POINTS:
        return currency == Currency.POINTS and not pending and kind in POINTS_KINDS
    return False


# --- The store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    rank: int
    member_id: int
    score: int


# (leaderboard id, period start, member id) → points to add to that score.
ScoreDeltas = dict[tuple[int, date, int], int]


class LeaderboardStore(Protocol):
    def add(self, deltas: ScoreDeltas) -> None: ...
    def top(self, *, board: Leaderboard, period: date, limit: int) -> list[Ranked]: ...
    def rank(self, *, board: Leaderboard, period: date, member_id: int) -> Ranked | None: ...
    def around(
        self, *, board: Leaderboard, period: date, member_id: int, size: int
    ) -> tuple[list[Ranked], list[Ranked]]: ...
    def count(self, *, board: Leaderboard, period: date) -> int: ...
    def below(self, *, board: Leaderboard, period: date, score: int) -> int: ...


class DatabaseLeaderboardStore:
    """Scores in ``LeaderboardScore``; ranks counted with the (board, period, -score) index.
    Only scores above zero are ranked; opted-out and excluded members never appear.
    Ties share a rank (1, 2, 2, 4)."""

    def _visible(self, board: Leaderboard, period: date) -> QuerySet:
        return LeaderboardScore.objects.filter(
            leaderboard=board, period_start=period, score__gt=0, member__leaderboard_opt_out=False
        ).exclude(member__in=board.excluded_members.all())

    def add(self, deltas: ScoreDeltas) -> None:
        """Add to the scores in one statement (an upsert adding to the stored score)."""
        rows = [(*key, delta) for key, delta in sorted(deltas.items()) if delta]
        if not rows:
            return
        table = LeaderboardScore._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (leaderboard_id, period_start, member_id, score) "
                f"VALUES {', '.join(['(%s, %s, %s, %s)'] * len(rows))} "
                "ON CONFLICT (leaderboard_id, period_start, member_id) "
                f"DO UPDATE SET score = {table}.score + EXCLUDED.score",
                [value for row in rows for value in row],
            )

    def _count(self, board: Leaderboard, period: date, **score_filter) -> int:
        """Visible scores matching the filter: counted through the (board, period, -score)
        index alone, less the few hidden members' (opted out or excluded), found by member."""
        scores = LeaderboardScore.objects.filter(
            leaderboard=board, period_start=period, score__gt=0
        ).filter(**score_filter)
        hidden = Member.objects.filter(
            Q(leaderboard_opt_out=True) | Q(pk__in=board.excluded_members.all())
        ).values("pk")
        return scores.count() - scores.filter(member_id__in=hidden).count()

    def _rank_of(self, board: Leaderboard, period: date, score: int) -> int:
        return self._count(board, period, score__gt=score) + 1

    def top(self, *, board: Leaderboard, period: date, limit: int) -> list[Ranked]:
        rows = list(
            self._visible(board, period)
            .order_by("-score", "member_id")
            .values_list("member_id", "score")[:limit]
        )
        ranked, rank = [], 0
        for position, (member_id, score) in enumerate(rows, start=1):
            if not ranked or ranked[-1].score != score:
                rank = position
            ranked.append(Ranked(rank=rank, member_id=member_id, score=score))
        return ranked

    def rank(self, *, board: Leaderboard, period: date, member_id: int) -> Ranked | None:
        row = (
            self._visible(board, period)
            .filter(member_id=member_id)
            .values_list("score", flat=True)
            .first()
        )
        if row is None:
            return None
        return Ranked(rank=self._rank_of(board, period, row), member_id=member_id, score=row)

    def around(
        self, *, board: Leaderboard, period: date, member_id: int, size: int
    ) -> tuple[list[Ranked], list[Ranked]]:
        me = self.rank(board=board, period=period, member_id=member_id)
        if me is None:
            return [], []
        visible = self._visible(board, period)
        above = list(
            visible.filter(Q(score__gt=me.score) | Q(score=me.score, member_id__lt=member_id))
            .order_by("score", "-member_id")
            .values_list("member_id", "score")[:size]
        )[::-1]
        below = list(
            visible.filter(Q(score__lt=me.score) | Q(score=me.score, member_id__gt=member_id))
            .order_by("-score", "member_id")
            .values_list("member_id", "score")[:size]
        )
        ranks: dict[int, int] = {me.score: me.rank}

        def ranked(rows) -> list[Ranked]:
            out = []
            for other, score in rows:
                if score not in ranks:
                    ranks[score] = self._rank_of(board, period, score)
                out.append(Ranked(rank=ranks[score], member_id=other, score=score))
            return out

        return ranked(above), ranked(below)

    def count(self, *, board: Leaderboard, period: date) -> int:
        return self._count(board, period)

    def below(self, *, board: Leaderboard, period: date, score: int) -> int:
        return self._count(board, period, score__lt=score)


store: LeaderboardStore = DatabaseLeaderboardStore()


# --- Keeping scores as things happen ----------------------------------------------------------


def leaderboards_record_entries(
    *, member_id: int, entries: Iterable[LedgerEntry], boards: Iterable[Leaderboard]
) -> None:
    """Add ledger entries to the growth and points boards. Caller holds the member's lock."""
    deltas: ScoreDeltas = {}
    for board in boards:
        if board.metric == Leaderboard.Metric.ACTION_COUNT:
            continue
        for entry in entries:
            if counts_for(board, currency=entry.currency, kind=entry.kind, pending=entry.pending):
                key = (board.pk, board_period_start(board.period, entry.effective_at), member_id)
                deltas[key] = deltas.get(key, 0) + entry.amount
    _add(deltas)


def leaderboards_record_action(
    *,
    member_id: int,
    action_id: int,
    occurred_at: datetime,
    delta: int,
    boards: Iterable[Leaderboard],
) -> None:
    """Count (or, with -1, uncount) one occurrence on the action boards. Caller holds the lock."""
    _add(
        {
            (board.pk, board_period_start(board.period, occurred_at), member_id): delta
            for board in boards
            if board.metric == Leaderboard.Metric.ACTION_COUNT and board.action_id == action_id
        }
    )


def _add(deltas: ScoreDeltas) -> None:
    """To the store now, or with the unit of work's flush if one is running."""
    work = unit_of_work.current()
    if work is None:
        store.add(deltas)
        return
    for key, delta in deltas.items():
        work.scores[key] = work.scores.get(key, 0) + delta


# --- Reading ----------------------------------------------------------------------------------


def resolve_period(board: Leaderboard, period: str | None, *, now: datetime) -> date:
    """``current`` (default), ``previous``, or any date ``YYYY-MM-DD`` inside the period."""
    current = board_period_start(board.period, now)
    if not period or period == "current" or board.period == Leaderboard.Period.ALL_TIME:
        return current
    if period == "previous":
        day_before = current.toordinal() - 1
        return period_start(
            board.period,
            datetime.combine(
                date.fromordinal(day_before), datetime.min.time(), tzinfo=program_tz()
            ),
        )
    day = date.fromisoformat(period)
    return period_start(
        board.period, datetime.combine(day, datetime.min.time(), tzinfo=program_tz())
    )


def leaderboard_view(
    *,
    board: Leaderboard,
    period: date,
    member_id: int | None = None,
    around: int = 2,
    limit: int | None = None,
) -> dict[str, Any]:
    """Top N, the number ranked, and for a member: rank, score, percentile and neighbours."""
    end = (
        next_period_start(board.period, period)
        if board.period != Leaderboard.Period.ALL_TIME
        else None
    )
    ranked = store.count(board=board, period=period)
    view: dict[str, Any] = {
        "leaderboard": board.code,
        "name": board.name,
        "metric": board.metric,
        "period": board.period,
        "period_start": period,
        "period_end": end,
        "ranked": ranked,
        "top": store.top(board=board, period=period, limit=limit or board.size),
        "me": None,
    }
    if member_id is not None:
        me = store.rank(board=board, period=period, member_id=member_id)
        if me is not None:
            above, below = store.around(
                board=board, period=period, member_id=member_id, size=around
            )
            beaten = store.below(board=board, period=period, score=me.score)
            view["me"] = {
                "rank": me.rank,
                "score": me.score,
                "percentile": round(100 * beaten / ranked, 1) if ranked else 0.0,
                "above": above,
                "below": below,
            }
    return view


# --- Rebuilding -------------------------------------------------------------------------------


@transaction.atomic
def leaderboards_rebuild(*, boards: Iterable[Leaderboard] | None = None) -> int:
    """Recompute every score of the boards from the ledger and the events. Returns rows written."""
    boards = list(boards if boards is not None else Leaderboard.objects.all())
    written = 0
    for board in boards:
        LeaderboardScore.objects.filter(leaderboard=board).delete()
        totals: dict[tuple[int, date], int] = {}
        for member_id, period, amount in _source_rows(board):
            key = (member_id, period)
            totals[key] = totals.get(key, 0) + amount
        rows = [
            LeaderboardScore(
                leaderboard=board, member_id=member_id, period_start=period, score=score
            )
            for (member_id, period), score in totals.items()
            if score
        ]
        LeaderboardScore.objects.bulk_create(rows, batch_size=2000)
        written += len(rows)
    return written


def _truncated(field: str, board: Leaderboard):
    if board.period == Leaderboard.Period.ALL_TIME:
        return None
    return Trunc(field, PERIOD_UNITS[board.period], tzinfo=program_tz())


def _as_period(board: Leaderboard, value) -> date:
    if board.period == Leaderboard.Period.ALL_TIME:
        return LIFETIME_START
    return local_date(value) if isinstance(value, datetime) else value


def _source_rows(board: Leaderboard):
    if board.metric == Leaderboard.Metric.ACTION_COUNT:
        reversed_fully = EventReversal.objects.filter(fraction__gte=1).values("event_id")
        events = Event.objects.filter(action_id=board.action_id).exclude(pk__in=reversed_fully)
        bucket = _truncated("occurred_at", board)
        if bucket is None:
            for row in events.values("member_id").annotate(n=Count("id")):
                yield row["member_id"], LIFETIME_START, row["n"]
            return
        for row in (
            events.annotate(bucket=bucket).values("member_id", "bucket").annotate(n=Count("id"))
        ):
            yield row["member_id"], _as_period(board, row["bucket"]), row["n"]
        return
    if board.metric == Leaderboard.Metric.GROWTH:
        entries = LedgerEntry.objects.filter(currency=Currency.GROWTH, kind__in=GROWTH_KINDS)
    else:
        entries = LedgerEntry.objects.filter(
            currency=Currency.POINTS, pending=False, kind__in=POINTS_KINDS
        )
    bucket = _truncated("effective_at", board)
    if bucket is None:
        for row in entries.values("member_id").annotate(total=Sum("amount")):
            yield row["member_id"], LIFETIME_START, row["total"]
        return
    for row in (
        entries.annotate(bucket=bucket).values("member_id", "bucket").annotate(total=Sum("amount"))
    ):
        yield row["member_id"], _as_period(board, row["bucket"]), row["total"]
