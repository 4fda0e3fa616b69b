"""The leaderboard store's interface, and the database store: the embedded default, and the
source of truth behind the Redis store."""

import logging
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from django.db import connection
from django.db.models import Q, QuerySet

from accounts.models import Member
from core import sql
from loyalty.models import (
    Leaderboard,
    LeaderboardScore,
)
from loyalty.persistence import bulk
from loyalty.persistence.bulk import Write

logger = logging.getLogger(__name__)


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
            bulk.send(list(along))
            return []
        table = LeaderboardScore._meta.db_table
        columns = ["leaderboard_id", "period_start", "member_id", "score"]
        if connection.vendor == "postgresql":
            # Sent as the unit of work sends rows: one array per column, or a few typed VALUES.
            fields = [LeaderboardScore._meta.get_field(column) for column in columns]
            values, params = bulk.row_source(fields, [list(c) for c in zip(*rows, strict=True)])
            source = f"SELECT {', '.join(columns)} FROM {values} AS v({', '.join(columns)})"
        else:
            source = f"VALUES {', '.join(['(%s, %s, %s, %s)'] * len(rows))}"
            params = [value for row in rows for value in row]
        with connection.cursor() as cursor:
            cursor.execute(
                *bulk.joined(
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
