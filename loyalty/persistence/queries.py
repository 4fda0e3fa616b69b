"""The hot path's reads, by name: domain code says which rows it needs, these say how SQL fetches
them. Each is kept as text built once (``core.sql``) and reads a table for every member of a
batch at once; each makes the instances the ORM would make."""

from collections.abc import Iterable, Iterator
from datetime import date

from django.db import connection
from django.db.models import Model, QuerySet

from core import sql
from core.idempotency import of_client
from loyalty.models import (
    ActionTally,
    BadgeAward,
    Event,
    PointLot,
    QuestProgress,
    RuleCounter,
    WebhookEndpoint,
)
from loyalty.periods import LIFETIME_START


def rule_counters_of(member_ids: list[int], floor: date) -> list[RuleCounter]:
    """The members' lifetime rule counters and those of periods starting from ``floor``."""
    members, params = sql.any_of("member_id", member_ids)
    return sql.select(
        RuleCounter,
        f"{members} AND (period = %s OR period_start >= %s)",
        [*params, "lifetime", floor],
    )


def quest_progress_of(member_ids: list[int], floor: date) -> list[QuestProgress]:
    """The members' lifetime quest progress and that of periods starting from ``floor``."""
    members, params = sql.any_of("member_id", member_ids)
    return sql.select(
        QuestProgress,
        f"{members} AND (period_start = %s OR period_start >= %s)",
        [*params, LIFETIME_START, floor],
    )


def tallies_of(member_ids: list[int]) -> list[ActionTally]:
    return sql.select(ActionTally, *sql.any_of("member_id", member_ids))


def badge_holdings_of(member_ids: list[int]) -> dict[tuple[int, int], dict[str, int]]:
    """Per (member, badge) ever awarded: the awards not revoked (``held``) and the last
    sequence given (``last``)."""
    members, params = sql.any_of("member_id", member_ids)
    rows = sql.fetch(
        "SELECT member_id, badge_id, "
        "SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END), MAX(sequence) "
        f"FROM {BadgeAward._meta.db_table} WHERE {members} GROUP BY member_id, badge_id",
        params,
    )
    return {
        (member, badge): {"held": int(held), "last": last} for member, badge, held, last in rows
    }


def stored_events(client: Model | None, keys: list[str]) -> Iterable[Event]:
    """The client's events stored under any of ``keys``. On PostgreSQL one index probe per key
    on (client, key): looked up as a list, the planner may instead walk every event of the
    client and filter, whenever its statistics have not yet seen how many the client has."""
    if connection.vendor != "postgresql":
        return Event.objects.filter(client=client, idempotency_key__in=keys).only(
            "pk", "idempotency_key", "request_hash", "outcome"
        )
    # (OFFSET 0 keeps the subquery apart: joined flat, it is planned as the list was.)
    same_client, params = of_client(client)
    rows = sql.fetch(
        f"SELECT {sql.columns(Event, 'e')} FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL ("
        f"SELECT * FROM {Event._meta.db_table} WHERE {same_client} AND idempotency_key = k.key "
        "OFFSET 0) AS e",
        [keys, *params],
    )
    return sql.rows_to(Event, rows)


def open_lots(
    member_id: int,
    *,
    pending: bool,
    limit: int,
    event_id: int | None = None,
    lot_id: int | None = None,
) -> list[PointLot]:
    """The member's lots with points left (spendable, or pending ones), those closest to expiry
    first (never-expiring last, then oldest first), optionally only one event's or one lot."""
    where, params = "t.member_id = %s AND t.pending = %s AND t.remaining > 0", [member_id, pending]
    if event_id is not None:
        where, params = f"{where} AND t.event_id = %s", [*params, event_id]
    if lot_id is not None:
        where, params = f"{where} AND t.id = %s", [*params, lot_id]
    return sql.select(
        PointLot, f"{where} ORDER BY t.expires_at ASC NULLS LAST, t.id LIMIT %s", [*params, limit]
    )


def active_endpoints() -> list[WebhookEndpoint]:
    return sql.select(WebhookEndpoint, "t.is_active = %s", [True])


def member_ids_in_chunks(rows: QuerySet, chunk_size: int) -> Iterator[list[int]]:
    """The distinct ``member_id`` of ``rows``, ascending, in chunks of ``chunk_size``: keyset
    pages, so that a periodic job over every member streams them."""
    last = 0
    while True:
        ids = list(
            rows.filter(member_id__gt=last)
            .order_by("member_id")
            .values_list("member_id", flat=True)
            .distinct()[:chunk_size]
        )
        if not ids:
            return
        yield ids
        last = ids[-1]
