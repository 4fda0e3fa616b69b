"""Row locks on member standings: the one place they are taken.

Every write to a member's balances, counters or tier happens inside a transaction holding that
member's standing row lock. Several members are always locked in primary-key order, so two
transactions can never deadlock on each other.
"""

from collections.abc import Iterable

from loyalty.models import MemberStanding


def lock_standing(member_id: int) -> MemberStanding:
    """Lock (creating if needed) the member's standing row. Call inside ``transaction.atomic``."""
    return lock_standings([member_id])[member_id]


def lock_standings(member_ids: Iterable[int]) -> dict[int, MemberStanding]:
    """Lock (creating if needed) several members' standings, in primary-key order: one
    statement, two more for members without one yet. Call inside ``transaction.atomic``."""
    ids = sorted(set(member_ids))
    locked = MemberStanding.objects.select_for_update().filter(pk__any=ids).order_by("pk")
    standings = {standing.pk: standing for standing in locked}
    if missing := [member_id for member_id in ids if member_id not in standings]:
        # Racing creators: ON CONFLICT DO NOTHING lets one insert win, then both lock it.
        MemberStanding.objects.bulk_create(
            [MemberStanding(member_id=member_id) for member_id in missing], ignore_conflicts=True
        )
        standings.update((s.pk, s) for s in locked.filter(pk__any=missing))
    return standings


def lock_standings_of(external_ids: Iterable[str]) -> dict[int, MemberStanding]:
    """Lock the standings of the members with these host ids, in primary-key order, each with
    its ``member`` read beside it: one statement. Members without a standing (or unknown) are
    not in the answer; lock theirs with ``lock_standings``. Call inside ``transaction.atomic``."""
    return {
        standing.pk: standing
        for standing in MemberStanding.objects.select_for_update(of=("self",))
        .select_related("member")
        .filter(member__external_id__any=sorted(set(external_ids)))
        .order_by("pk")
    }
