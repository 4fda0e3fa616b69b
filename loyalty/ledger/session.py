"""A session on one member's books: the transaction, the member's standing lock, and a unit of
work over it (a batch of one), flushed when the block ends without an error.

Every operation outside the event pipeline that moves a member's balances, counters, tier,
badges or activity opens one (an adjustment, a reversal, a redemption, a periodic job's
member, an operator's badge grant), and hands its unit of work to each step, as the pipeline
does for a chunk of events.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from loyalty.models import MemberStanding
from loyalty.persistence.bulk import Write
from loyalty.persistence.locks import lock_standing_with_program
from loyalty.persistence.unit_of_work import UnitOfWork, unit_of_work
from loyalty.program.compiled import CompiledProgram
from loyalty.scores.counting import leaderboards_count_entries, store


@dataclass(frozen=True)
class Session:
    work: UnitOfWork
    standing: MemberStanding
    # The program at the revision read with the lock.
    program: CompiledProgram


@contextmanager
def member_session(
    member_id: int, *, since: datetime | None = None, savepoint: bool = True
) -> Iterator[Session]:
    """Lock the member's standing (creating it if needed) and open a unit of work over it, in
    a transaction; count the posted entries on the boards and flush when the block ends.
    ``since``: the earliest time the operation dates something at (the period rows it may read
    start there; default now). Inside a caller's transaction the session is a savepoint, so that an error
    rolls back the session alone; ``savepoint=False`` spares the round trips where the caller's
    own block ends with the session (an idempotent write)."""
    with transaction.atomic(savepoint=savepoint):
        standing, program = lock_standing_with_program(member_id)
        with unit_of_work(
            {member_id: standing}, {}, since=since or timezone.now(), add_scores=add_scores
        ) as work:
            yield Session(work=work, standing=standing, program=program)
            leaderboards_count_entries(work=work, boards=program.leaderboards)
            work.flush()


def add_scores(deltas: dict[tuple[int, Any, int], int], along: list[Write]) -> None:
    """Leaderboard score deltas to the configured store, ``along`` in their statement."""
    store().add(deltas, along=along)
