"""What counts on a board and by how much. Scores by metric, in the program's time zone, by when
a movement counts (``effective_at``):

- ``growth``: growth earned, bonuses and reversals (not operator adjustments);
- ``points``: spendable points earned, bonuses, activations and reversals (not spends, expiry
  or adjustments);
- ``action_count``: events of the action, less fully reversed ones (by occurrence time).

Deltas go to the unit of work, whose flush writes them to the store."""

import logging
from collections.abc import Iterable
from datetime import date, datetime

from django.conf import settings

from loyalty.models import (
    Currency,
    EntryKind,
    Leaderboard,
    SourceType,
)
from loyalty.periods import LIFETIME_START, period_start
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.scores.db_store import DatabaseLeaderboardStore, LeaderboardStore, ScoreDeltas
from loyalty.scores.redis_store import RedisLeaderboardStore

logger = logging.getLogger(__name__)

GROWTH_KINDS = {EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSE}
POINTS_KINDS = {EntryKind.EARN, EntryKind.BONUS, EntryKind.ACTIVATE, EntryKind.REVERSE}


def board_period_start(board_period: str, at: datetime) -> date:
    return (
        LIFETIME_START
        if board_period == Leaderboard.Period.ALL_TIME
        else period_start(board_period, at)
    )


def counts_for(
    board: Leaderboard, *, currency: str, kind: str, pending: bool, source_type: str = ""
) -> bool:
    """Whether a ledger entry counts on the board. A shortfall's repayment does not: the
    reversal that fell short already took the whole shortfall off the points boards."""
    if board.metric == Leaderboard.Metric.GROWTH:
        return currency == Currency.GROWTH and kind in GROWTH_KINDS
    if board.metric == Leaderboard.Metric.POINTS:
        return (
            currency == Currency.POINTS
            and not pending
            and kind in POINTS_KINDS
            and source_type != SourceType.SHORTFALL
        )
    return False


def leaderboards_count_entries(*, work: UnitOfWork, boards: Iterable[Leaderboard]) -> None:
    """Add every entry the unit of work posted to the growth and points boards: the last step
    before its flush (the pipeline's and a member session's)."""
    deltas: ScoreDeltas = {}
    for board in boards:
        if board.metric == Leaderboard.Metric.ACTION_COUNT:
            continue
        for entry in work.entries:
            if counts_for(
                board,
                currency=entry.currency,
                kind=entry.kind,
                pending=entry.pending,
                source_type=entry.source_type,
            ):
                key = (
                    board.pk,
                    board_period_start(board.period, entry.effective_at),
                    entry.member_id,
                )
                deltas[key] = deltas.get(key, 0) + entry.amount
    _add(work, deltas)


def leaderboards_record_action(
    *,
    work: UnitOfWork,
    member_id: int,
    action_id: int,
    occurred_at: datetime,
    delta: int,
    boards: Iterable[Leaderboard],
) -> None:
    """Count (or, with -1, uncount) one occurrence on the action boards. Caller holds the lock."""
    _add(
        work,
        {
            (board.pk, board_period_start(board.period, occurred_at), member_id): delta
            for board in boards
            if board.metric == Leaderboard.Metric.ACTION_COUNT and board.action_id == action_id
        },
    )


def leaderboards_record_shortfall(
    *,
    work: UnitOfWork,
    member_id: int,
    occurred_at: datetime,
    points: int,
    boards: Iterable[Leaderboard],
) -> None:
    """A reversal of the event at ``occurred_at`` fell ``points`` short: the points boards drop
    them at once, in the event's period, as if taken back (their later repayment does not
    count again). Caller holds the lock."""
    _add(
        work,
        {
            (board.pk, board_period_start(board.period, occurred_at), member_id): -points
            for board in boards
            if board.metric == Leaderboard.Metric.POINTS
        },
    )


def _add(work: UnitOfWork, deltas: ScoreDeltas) -> None:
    """Kept for the unit of work's flush, which writes them to the store."""
    for key, delta in deltas.items():
        work.scores[key] = work.scores.get(key, 0) + delta


# The store an operator's settings choose, made on first use (tests may set ``override``).
override: LeaderboardStore | None = None
_made: dict[str, LeaderboardStore] = {}


def store() -> LeaderboardStore:
    """The leaderboard store ``LOYALTY_LEADERBOARD_REDIS_URL`` chooses: Redis in front of the
    database when set, the database alone otherwise. Read at use, not at import."""
    if override is not None:
        return override
    url = settings.LOYALTY_LEADERBOARD_REDIS_URL or ""
    if (made := _made.get(url)) is None:
        made = _made[url] = RedisLeaderboardStore(url) if url else DatabaseLeaderboardStore()
    return made
