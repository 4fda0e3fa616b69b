"""Tallies of actions and streaks of days: the rows badges count. The caller holds the member's
standing lock."""

from datetime import date

from core import sql
from loyalty.models import (
    ActionTally,
    MemberStreak,
    Streak,
)
from loyalty.persistence.queries import tallies_of
from loyalty.persistence.unit_of_work import UnitOfWork


def tally_add(*, work: UnitOfWork, member_id: int, action_id: int, delta: int) -> None:
    """Count (or, with -1, uncount) an occurrence of the action; never below zero."""
    tally = tally_row(work, member_id, action_id)
    count = max(tally.count + delta, 0)
    if count != tally.count:
        tally.count = count
        work.changed(tally)


def tally_row(work: UnitOfWork, member_id: int, action_id: int) -> ActionTally:
    return work.row(
        ActionTally,
        (member_id, action_id),
        index=lambda t: (t.member_id, t.action_id),
        query=tallies_of,
        new=lambda: ActionTally(member_id=member_id, action_id=action_id, count=0),
    )


def streak_state(work: UnitOfWork, member_id: int, streak_id: int) -> MemberStreak:
    return work.row(
        MemberStreak,
        (member_id, streak_id),
        index=lambda s: (s.member_id, s.streak_id),
        query=lambda ids: MemberStreak.objects.filter(sql.AnyOf("member_id", ids)),
        new=lambda: MemberStreak(member_id=member_id, streak_id=streak_id),
    )


def streak_touch(
    *, work: UnitOfWork, member_id: int, streak: Streak, day: date, freezes_per_month: int
) -> MemberStreak:
    """Count the local ``day`` for the streak: the next day extends it; a gap is bridged by the
    member's streak freezes for that month (a tier privilege) if enough are left, else the
    streak starts again at 1. A day already counted, or an earlier one, changes nothing."""
    state = streak_state(work, member_id, streak.pk)
    if state.last_day is not None and day <= state.last_day:
        return state
    month = day.replace(day=1)
    if state.freezes_month != month:
        state.freezes_month, state.freezes_used = month, 0
    if state.last_day is None:
        state.current = 1
    else:
        missed = (day - state.last_day).days - 1
        if missed == 0:
            state.current += 1
        elif missed <= freezes_per_month - state.freezes_used:
            state.freezes_used += missed
            state.current += 1
        else:
            state.current = 1
    state.last_day = day
    state.longest = max(state.longest, state.current)
    work.changed(state)
    return state
