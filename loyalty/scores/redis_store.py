"""The Redis store: ranks read from sorted sets mirroring the database's scores."""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date

from django.conf import settings
from django.db import transaction

from loyalty.models import (
    Leaderboard,
    LeaderboardScore,
    StaleLeaderboardSet,
)
from loyalty.persistence.bulk import Write
from loyalty.scores.db_store import DatabaseLeaderboardStore, Ranked, ScoreDeltas, hidden_member_ids

logger = logging.getLogger(__name__)


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
            mark_stale({(board_id, period) for board_id, period, _, _ in scores})

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


def mark_stale(sets: set[tuple[int, date]]) -> None:
    """Board periods whose Redis sets missed a write: kept in the database (which is up: the
    write followed its commit) for ``leaderboards_heal``."""
    StaleLeaderboardSet.objects.bulk_create(
        [StaleLeaderboardSet(leaderboard_id=board, period_start=period) for board, period in sets],
        update_conflicts=True,
        unique_fields=["leaderboard", "period_start"],
        update_fields=["marked_at"],
    )
