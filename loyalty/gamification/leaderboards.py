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

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Trunc

from accounts.models import Member
from core import sql
from loyalty.models import (
    Currency,
    EntryKind,
    Event,
    EventReversal,
    Leaderboard,
    LeaderboardScore,
    LedgerEntry,
    SourceType,
    StaleLeaderboardSet,
)
from loyalty.periods import LIFETIME_START, local_date, next_period_start, period_start, program_tz
from loyalty.persistence import unit_of_work
from loyalty.persistence.unit_of_work import Write

logger = logging.getLogger(__name__)

GROWTH_KINDS = {EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSE}
POINTS_KINDS = {EntryKind.EARN, EntryKind.BONUS, EntryKind.ACTIVATE, EntryKind.REVERSE}
PERIOD_UNITS = {"day": "day", "week": "week", "month": "month"}


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


# --- The store --------------------------------------------------------------------------------


def hidden_members(board: Leaderboard) -> QuerySet:
    """Ids of the members never shown on the board: those who opted out (a partial index
    finds the few) and those the operator excluded."""
    return (
        Member.objects.filter(leaderboard_opt_out=True)
        .order_by()
        .values_list("pk", flat=True)
        .union(board.excluded_members.order_by().values_list("pk", flat=True))
    )


def hidden_member_ids(board: Leaderboard) -> list[int]:
    """``hidden_members`` read at once, by a statement kept as text: every Redis read asks,
    and building the union as a queryset cost more Python than the rest of a top-10 read.
    (The opt-out is written into the text, not bound, so the partial index serves it.)"""
    excluded = Leaderboard.excluded_members.through._meta.db_table
    rows = sql.fetch(
        f"SELECT id FROM {Member._meta.db_table} WHERE leaderboard_opt_out "
        f"UNION SELECT member_id FROM {excluded} WHERE leaderboard_id = %s",
        [board.pk],
    )
    return [member_id for (member_id,) in rows]


@dataclass(frozen=True)
class Ranked:
    rank: int
    member_id: int
    score: int


# (leaderboard id, period start, member id) → points to add to that score.
ScoreDeltas = dict[tuple[int, date, int], int]


class LeaderboardStore(Protocol):
    def add(self, deltas: ScoreDeltas, *, along: list[Write] = ()) -> None: ...
    def top(self, *, board: Leaderboard, period: date, limit: int) -> list[Ranked]: ...
    def rank(self, *, board: Leaderboard, period: date, member_id: int) -> Ranked | None: ...
    def around(
        self, *, board: Leaderboard, period: date, member_id: int, size: int
    ) -> tuple[list[Ranked], list[Ranked]]: ...
    def count(self, *, board: Leaderboard, period: date) -> int: ...
    def below(self, *, board: Leaderboard, period: date, score: int) -> int: ...
    def forget(self, board: Leaderboard) -> None: ...
    def refresh(self, board: Leaderboard) -> None: ...
    def heal(self, board: Leaderboard, period: date) -> bool: ...


class DatabaseLeaderboardStore:
    """Scores in ``LeaderboardScore``; ranks counted with the (board, period, -score) index.
    Only scores above zero are ranked; opted-out and excluded members never appear.
    Ties share a rank (1, 2, 2, 4)."""

    def _visible(self, board: Leaderboard, period: date) -> QuerySet:
        return LeaderboardScore.objects.filter(
            leaderboard=board, period_start=period, score__gt=0, member__leaderboard_opt_out=False
        ).exclude(member__in=board.excluded_members.all())

    def add(self, deltas: ScoreDeltas, *, along: list[Write] = ()) -> None:
        self._add(deltas, returning=False, along=along)

    def _add(
        self, deltas: ScoreDeltas, *, returning: bool, along: list[Write] = ()
    ) -> list[tuple[int, date, int, int]]:
        """Add to the scores in one statement (an upsert adding to the stored score), with
        ``along`` (writes answering nothing, e.g. the rest of a unit of work's flush) in it;
        with ``returning``, the new scores of the rows it touched."""
        rows = [(*key, delta) for key, delta in sorted(deltas.items()) if delta]
        if not rows:
            unit_of_work.send(list(along))
            return []
        table = LeaderboardScore._meta.db_table
        columns = ["leaderboard_id", "period_start", "member_id", "score"]
        if connection.vendor == "postgresql":
            # Sent as the unit of work sends rows: one array per column, or a few typed VALUES.
            fields = [LeaderboardScore._meta.get_field(column) for column in columns]
            values, params = unit_of_work.row_source(
                fields, [list(c) for c in zip(*rows, strict=True)]
            )
            source = f"SELECT {', '.join(columns)} FROM {values} AS v({', '.join(columns)})"
        else:
            source = f"VALUES {', '.join(['(%s, %s, %s, %s)'] * len(rows))}"
            params = [value for row in rows for value in row]
        with connection.cursor() as cursor:
            cursor.execute(
                *unit_of_work.joined(
                    list(along),
                    f"INSERT INTO {table} ({', '.join(columns)}) {source} "
                    "ON CONFLICT (leaderboard_id, period_start, member_id) "
                    f"DO UPDATE SET score = {table}.score + EXCLUDED.score"
                    + (f" RETURNING {', '.join(columns)}" if returning else ""),
                    params,
                )
            )
            return cursor.fetchall() if returning else []

    def _count(self, board: Leaderboard, period: date, **score_filter) -> int:
        """Visible scores matching the filter: counted through the (board, period, -score)
        index alone, less the few hidden members' (opted out or excluded), found by member."""
        scores = LeaderboardScore.objects.filter(
            leaderboard=board, period_start=period, score__gt=0
        ).filter(**score_filter)
        return scores.count() - scores.filter(member_id__in=hidden_members(board)).count()

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

    def forget(self, board: Leaderboard) -> None:
        """Nothing is kept outside the scores' table."""

    def refresh(self, board: Leaderboard) -> None:
        """Nothing is kept outside the scores' table."""

    def heal(self, board: Leaderboard, period: date) -> bool:
        """Nothing is kept outside the scores' table."""
        return True


class RedisLeaderboardStore(DatabaseLeaderboardStore):
    """The database's scores mirrored in one Redis sorted set per board and period, so rank
    and neighbours cost O(log n) at any size: the read figures of a million-member board.

    The database stays the source of truth. ``add`` upserts there as the database store does
    and, once the transaction commits, sets each changed score in Redis to its new absolute
    value (a rolled-back write never reaches Redis; a retried one sets the same value). A set
    is filled from the database on first read (``ZADD NX``, so a write racing the fill is never
    overwritten by the older value) and marked ready; until then, and whenever Redis cannot be
    reached, reads answer from the database. Redis keeping nothing on disk is fine: an empty
    Redis refills. ``forget`` drops a board's sets after a rebuild.

    Sets hold every member with a score above zero, stored as ``-score`` so that ascending
    order is the board's order (score down, then member id up). Opted-out and excluded members
    are few; reads leave them out as the database store does.
    """

    FILL_CHUNK = 20_000

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "loyalty:lb",
        timeout: float | None = None,
        pause: float | None = None,
    ) -> None:
        import redis

        # Redis answers within a millisecond when well: a command that takes longer than
        # ``timeout`` is Redis in trouble, and the process leaves it alone for ``pause``
        # seconds (reads from the database, mirror writes marked for healing), so one request
        # spends at most one timeout on it, however many reads it makes.
        timeout = settings.LOYALTY_REDIS_TIMEOUT if timeout is None else timeout
        self.pause = settings.LOYALTY_REDIS_PAUSE if pause is None else pause
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.redis = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # a retry would add a timeout: the database answers
        )
        self.prefix = prefix
        self._avoid_until = 0.0

    @property
    def available(self) -> bool:
        """False for ``pause`` seconds after Redis failed or was slow in this process."""
        return time.monotonic() >= self._avoid_until

    def _failed(self) -> None:
        self._avoid_until = time.monotonic() + self.pause
        logger.warning(
            "Leaderboard store: Redis unreachable or slow, answering from the database for %s s",
            self.pause,
        )

    def _key(self, board_id: int, period: date) -> str:
        return f"{self.prefix}:{board_id}:{period.isoformat()}"

    @staticmethod
    def _name(member_id: int) -> str:
        return f"{member_id:012d}"

    def add(self, deltas: ScoreDeltas, *, along: list[Write] = ()) -> None:
        if scores := self._add(deltas, returning=True, along=along):
            transaction.on_commit(lambda: self._mirror(scores))

    def _mirror(self, scores: list[tuple[int, date, int, int]]) -> None:
        # One ZADD (and one ZREM) per set, not per member: a batch changes hundreds of scores
        # in a few sets, and building each command costs more than Redis spends on it.
        added: dict[str, dict[str, int]] = {}
        removed: dict[str, list[str]] = {}
        for board_id, period, member_id, score in scores:
            key, name = self._key(board_id, period), self._name(member_id)
            if score > 0:
                added.setdefault(key, {})[name] = -score
            else:
                removed.setdefault(key, []).append(name)
        pipe = self.redis.pipeline(transaction=False)
        for key, members in added.items():
            pipe.zadd(key, members)
        for key, names in removed.items():
            pipe.zrem(key, *names)
        if self._safely(pipe.execute) is None:
            # The sets missed these scores: the heal job drops them, to refill from the
            # database (``heal``).
            _mark_stale({(board_id, period) for board_id, period, _, _ in scores})

    def _safely(self, call):
        """``call()``, or None if Redis fails (or failed within the pause)."""
        import redis

        if not self.available:
            return None
        try:
            return call()
        except redis.RedisError:
            self._failed()
            return None

    def _ready(self, board: Leaderboard, period: date) -> str | None:
        """The set's key once it mirrors the database, filling it if nobody is; else None."""
        key = self._key(board.pk, period)
        state = self._safely(lambda: self.redis.get(f"{key}:state"))
        if state == b"ready":
            return key
        if state is None and self._safely(
            lambda: self.redis.set(f"{key}:state", "filling", nx=True, ex=600)
        ):
            return key if self._safely(lambda: self._fill(board, period, key)) else None
        return None

    def _fill(self, board: Leaderboard, period: date, key: str) -> bool:
        scores = (
            LeaderboardScore.objects.filter(leaderboard=board, period_start=period, score__gt=0)
            .values_list("member_id", "score")
            .iterator(chunk_size=self.FILL_CHUNK)
        )
        chunk: dict[str, int] = {}
        for member_id, score in scores:
            chunk[self._name(member_id)] = -score
            if len(chunk) == self.FILL_CHUNK:
                self.redis.zadd(key, chunk, nx=True)
                chunk = {}
        if chunk:
            self.redis.zadd(key, chunk, nx=True)
        self.redis.set(f"{key}:state", "ready")
        return True

    def forget(self, board: Leaderboard) -> None:
        """Drop the board's sets (after a rebuild): they refill from the database."""

        def drop() -> None:
            if keys := list(self.redis.scan_iter(f"{self.prefix}:{board.pk}:*")):
                self.redis.delete(*keys)

        self._safely(drop)

    def refresh(self, board: Leaderboard) -> None:
        """Drop the board's ready sets, so that they refill from the database on their next
        read. A set being filled is left alone: it is being read from the database already, and
        dropping it under the fill would let the fill mark ready a set missing what it had
        written before."""

        def drop_ready() -> None:
            for state in self.redis.scan_iter(f"{self.prefix}:{board.pk}:*:state"):
                self._drop_set(state.decode().removesuffix(":state"), when=lambda s: s == b"ready")

        self._safely(drop_ready)

    def heal(self, board: Leaderboard, period: date) -> bool:
        """Drop the set of a board period marked stale, so that it refills from the database;
        True once done (or nothing to drop). A set being filled is left for the next run (its
        fill may have read the database before the missed write)."""
        key = self._key(board.pk, period)
        return bool(self._safely(lambda: self._drop_set(key, when=lambda s: s != b"filling")))

    def _drop_set(self, key: str, *, when: Callable[[bytes | None], bool]) -> bool:
        """Drop the set ``key`` and its state if ``when(state)`` holds, watching the state so
        that a fill or a forget that comes first wins; whether it was dropped."""
        import redis

        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(f"{key}:state")
                if not when(pipe.get(f"{key}:state")):
                    return False
                pipe.multi()
                pipe.delete(key, f"{key}:state")
                pipe.execute()
                return True
            except redis.WatchError:
                return False  # a fill or a forget came first: the set is fresh

    def _hidden(self, board: Leaderboard, key: str) -> dict[int, int]:
        """The hidden members on the board: member id → score."""
        ids = hidden_member_ids(board)
        if not ids:
            return {}
        scores = self.redis.zmscore(key, [self._name(i) for i in ids])
        return {i: int(-s) for i, s in zip(ids, scores, strict=True) if s is not None}

    def _rows(
        self, key: str, start: int, stop: int, hidden: dict[int, int]
    ) -> list[tuple[int, int]]:
        if stop < start:
            return []
        rows = self.redis.zrange(key, start, stop, withscores=True)
        return [(int(n), int(-s)) for n, s in rows if int(n) not in hidden]

    def _ranked(self, key: str, rows, hidden: dict[int, int]) -> list[Ranked]:
        """Rank the rows: one more than the visible members scoring higher, counted for each
        distinct score in one round trip."""
        scores = sorted({score for _, score in rows})
        pipe = self.redis.pipeline(transaction=False)
        for score in scores:
            pipe.zcount(key, "-inf", f"({-score}")
        above = dict(zip(scores, pipe.execute(), strict=True))
        return [
            Ranked(
                rank=above[score] - sum(1 for s in hidden.values() if s > score) + 1,
                member_id=member_id,
                score=score,
            )
            for member_id, score in rows
        ]

    def _read(self, board: Leaderboard, period: date, read, fallback):
        """``read(key, hidden)`` from the board's set when it is ready; else, or if Redis fails
        on the way, ``fallback()`` from the database. Inside ``one_look`` the set's readiness
        and its hidden members are looked up once."""
        import redis

        looked = _looks.get()
        key, hidden = (
            looked.get((board.pk, period), (None, None)) if looked is not None else (None, None)
        )
        if not self.available:
            return fallback()
        if key is None and (key := self._ready(board, period)) is None:
            return fallback()
        try:
            if hidden is None:
                hidden = self._hidden(board, key)
                if looked is not None:
                    looked[(board.pk, period)] = (key, hidden)
            return read(key, hidden)
        except redis.RedisError:
            self._failed()
            return fallback()

    def top(self, *, board: Leaderboard, period: date, limit: int) -> list[Ranked]:
        def read(key: str, hidden: dict[int, int]) -> list[Ranked]:
            rows = self._rows(key, 0, limit + len(hidden) - 1, hidden)[:limit]
            return self._ranked(key, rows, hidden)

        return self._read(
            board,
            period,
            read,
            lambda: super(RedisLeaderboardStore, self).top(board=board, period=period, limit=limit),
        )

    def rank(self, *, board: Leaderboard, period: date, member_id: int) -> Ranked | None:
        def read(key: str, hidden: dict[int, int]) -> Ranked | None:
            score = None if member_id in hidden else self.redis.zscore(key, self._name(member_id))
            if score is None:
                return None
            return self._ranked(key, [(member_id, int(-score))], hidden)[0]

        return self._read(
            board,
            period,
            read,
            lambda: super(RedisLeaderboardStore, self).rank(
                board=board, period=period, member_id=member_id
            ),
        )

    def around(
        self, *, board: Leaderboard, period: date, member_id: int, size: int
    ) -> tuple[list[Ranked], list[Ranked]]:
        def read(key: str, hidden: dict[int, int]) -> tuple[list[Ranked], list[Ranked]]:
            position = None if member_id in hidden else self.redis.zrank(key, self._name(member_id))
            if position is None:
                return [], []
            reach = size + len(hidden)
            above = self._rows(key, max(position - reach, 0), position - 1, hidden)[-size:]
            below = self._rows(key, position + 1, position + reach, hidden)[:size]
            return self._ranked(key, above, hidden), self._ranked(key, below, hidden)

        return self._read(
            board,
            period,
            read,
            lambda: super(RedisLeaderboardStore, self).around(
                board=board, period=period, member_id=member_id, size=size
            ),
        )

    def count(self, *, board: Leaderboard, period: date) -> int:
        return self._read(
            board,
            period,
            lambda key, hidden: self.redis.zcard(key) - len(hidden),
            lambda: super(RedisLeaderboardStore, self).count(board=board, period=period),
        )

    def below(self, *, board: Leaderboard, period: date, score: int) -> int:
        def read(key: str, hidden: dict[int, int]) -> int:
            return self.redis.zcount(key, f"({-score}", "+inf") - sum(
                1 for s in hidden.values() if s < score
            )

        return self._read(
            board,
            period,
            read,
            lambda: super(RedisLeaderboardStore, self).below(
                board=board, period=period, score=score
            ),
        )


# Inside ``one_look``: per (board, period), the ready set's key and its hidden members.
_looks: ContextVar[dict[tuple[int, date], tuple[str, dict[int, int]]] | None] = ContextVar(
    "leaderboard_looks", default=None
)


@contextmanager
def one_look() -> Iterator[None]:
    """Store reads inside share one look at each set (is it ready, who is hidden): a
    leaderboard view asks the store five times, which would make five of each."""
    token = _looks.set({})
    try:
        yield
    finally:
        _looks.reset(token)


def _configured_store() -> LeaderboardStore:
    url = settings.LOYALTY_LEADERBOARD_REDIS_URL
    return RedisLeaderboardStore(url) if url else DatabaseLeaderboardStore()


store: LeaderboardStore = _configured_store()


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
            if counts_for(
                board,
                currency=entry.currency,
                kind=entry.kind,
                pending=entry.pending,
                source_type=entry.source_type,
            ):
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


def leaderboards_record_shortfall(
    *, member_id: int, occurred_at: datetime, points: int, boards: Iterable[Leaderboard]
) -> None:
    """A reversal of the event at ``occurred_at`` fell ``points`` short: the points boards drop
    them at once, in the event's period, as if taken back (their later repayment does not
    count again). Caller holds the lock."""
    _add(
        {
            (board.pk, board_period_start(board.period, occurred_at), member_id): -points
            for board in boards
            if board.metric == Leaderboard.Metric.POINTS
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


def leaderboards_refresh() -> int:
    """Drop every board's ready mirrored sets (``store.refresh``), so that each refills from the
    database on its next read: a score whose mirror write was lost (the process stopped between the commit and Redis,
    or Redis could not be reached) is right again from then on. Nothing to do on the database
    store. Returns how many boards there are."""
    boards = list(Leaderboard.objects.all())
    for board in boards:
        store.refresh(board)
    return len(boards)


def _mark_stale(sets: set[tuple[int, date]]) -> None:
    """Board periods whose Redis sets missed a write: kept in the database (which is up: the
    write followed its commit) for ``leaderboards_heal``."""
    StaleLeaderboardSet.objects.bulk_create(
        [StaleLeaderboardSet(leaderboard_id=board, period_start=period) for board, period in sets],
        update_conflicts=True,
        unique_fields=["leaderboard", "period_start"],
        update_fields=["marked_at"],
    )


def leaderboards_heal() -> int:
    """Drop the Redis sets that missed a write (``StaleLeaderboardSet``), so that each refills
    from the database on its next read; run every minute, so a mirror that missed writes while
    Redis was down or slow is right again within minutes of its return. Returns the sets
    healed; those Redis still cannot take stay marked for the next run."""
    healed = 0
    for mark in StaleLeaderboardSet.objects.select_related("leaderboard"):
        # Unmarked first: a write missed while dropping marks the set again.
        StaleLeaderboardSet.objects.filter(pk=mark.pk, marked_at=mark.marked_at).delete()
        if store.heal(mark.leaderboard, mark.period_start):
            healed += 1
        else:
            _mark_stale({(mark.leaderboard_id, mark.period_start)})
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
        transaction.on_commit(lambda board=board: store.forget(board))
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
