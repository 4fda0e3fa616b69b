"""Leaderboards read and kept whole: a board's view (top, my rank, neighbours), the periodic
refresh and heal of the Redis mirror, and the rebuild of every score from the ledger and the
events. The scores' definitions and their stores live in ``loyalty.scores``.

``leaderboards_rebuild`` recomputes every score from the ledger and the events with the same
definitions, so it reproduces the incremental scores exactly.
"""

import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Trunc

from loyalty.models import (
    Currency,
    Event,
    EventReversal,
    Leaderboard,
    LeaderboardScore,
    LedgerEntry,
    SourceType,
    StaleLeaderboardSet,
)
from loyalty.periods import LIFETIME_START, local_date, next_period_start, period_start, program_tz
from loyalty.scores.counting import GROWTH_KINDS, POINTS_KINDS, board_period_start, store
from loyalty.scores.redis_store import mark_stale, one_look

logger = logging.getLogger(__name__)

PERIOD_UNITS = {"day": "day", "week": "week", "month": "month"}


# --- Reading ----------------------------------------------------------------------------------


# The dates a board's period may be asked for; outside, ``resolve_period`` refuses them.
EARLIEST_PERIOD_DAY, LATEST_PERIOD_DAY = date(2000, 1, 1), date(2099, 12, 31)


def resolve_period(board: Leaderboard, period: str | None, *, now: datetime) -> date:
    """``current`` (default), ``previous``, or any date ``YYYY-MM-DD`` inside the period, from
    2000-01-01 to 2099-12-31; anything else raises ``ValueError``, on every board (an all-time
    board has one period, whichever is asked)."""
    day = None
    if period and period not in ("current", "previous"):
        day = date.fromisoformat(period) if len(period) == 10 else None
        if day is None or not EARLIEST_PERIOD_DAY <= day <= LATEST_PERIOD_DAY:
            raise ValueError(f"not a period: {period!r}")
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
    return period_start(
        board.period, datetime.combine(day, datetime.min.time(), tzinfo=program_tz())
    )


@one_look()
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
    ranked = store().count(board=board, period=period)
    view: dict[str, Any] = {
        "leaderboard": board.code,
        "name": board.name,
        "metric": board.metric,
        "period": board.period,
        "period_start": period,
        "period_end": end,
        "ranked": ranked,
        "top": store().top(board=board, period=period, limit=limit or board.size),
        "me": None,
    }
    if member_id is not None:
        me = store().rank(board=board, period=period, member_id=member_id)
        if me is not None:
            above, below = store().around(
                board=board, period=period, member_id=member_id, size=around
            )
            beaten = store().below(board=board, period=period, score=me.score)
            view["me"] = {
                "rank": me.rank,
                "score": me.score,
                "percentile": round(100 * beaten / ranked, 1) if ranked else 0.0,
                "above": above,
                "below": below,
            }
    return view


# --- Rebuilding -------------------------------------------------------------------------------


def leaderboards_refresh() -> int:
    """Drop every board's ready mirrored sets (``store.refresh``), so that each refills from the
    database on its next read: a score whose mirror write was lost (the process stopped between the commit and Redis,
    or Redis could not be reached) is right again from then on. Nothing to do on the database
    store. Returns how many boards there are."""
    boards = list(Leaderboard.objects.all())
    for board in boards:
        store().refresh(board)
    return len(boards)


def leaderboards_heal() -> int:
    """Drop the Redis sets that missed a write (``StaleLeaderboardSet``), so that each refills
    from the database on its next read; run every minute, so a mirror that missed writes while
    Redis was down or slow is right again within minutes of its return. Returns the sets
    healed; those Redis still cannot take stay marked for the next run."""
    healed = 0
    for mark in StaleLeaderboardSet.objects.select_related("leaderboard"):
        # Unmarked first: a write missed while dropping marks the set again.
        StaleLeaderboardSet.objects.filter(pk=mark.pk, marked_at=mark.marked_at).delete()
        if store().heal(mark.leaderboard, mark.period_start):
            healed += 1
        else:
            mark_stale({(mark.leaderboard_id, mark.period_start)})
    return healed


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
        transaction.on_commit(lambda board=board: store().forget(board))
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
        ).exclude(source_type=SourceType.SHORTFALL)
        yield from _shortfall_rows(board)
    bucket = _truncated("effective_at", board)
    if bucket is None:
        for row in entries.values("member_id").annotate(total=Sum("amount")):
            yield row["member_id"], LIFETIME_START, row["total"]
        return
    for row in (
        entries.annotate(bucket=bucket).values("member_id", "bucket").annotate(total=Sum("amount"))
    ):
        yield row["member_id"], _as_period(board, row["bucket"]), row["total"]


def _shortfall_rows(board: Leaderboard):
    """Reversals' shortfalls, off the points boards in their events' periods."""
    shortfalls = EventReversal.objects.filter(shortfall__gt=0)
    bucket = _truncated("event__occurred_at", board)
    if bucket is not None:
        shortfalls = shortfalls.annotate(bucket=bucket)
    for row in shortfalls.values("event__member_id", *(("bucket",) if bucket else ())).annotate(
        total=Sum("shortfall")
    ):
        period = _as_period(board, row["bucket"]) if bucket is not None else LIFETIME_START
        yield row["event__member_id"], period, -row["total"]
