"""The data generator every benchmark shares: the demo program, members with long-tailed
activity (a few very active, most occasional), and their events over six months with
attributes, ledger entries, point lots, balances and leaderboard scores.

It writes through the engine's bulk path: PostgreSQL COPY, in chunks of members, with the
same rows the engine writes (balances equal the ledger sums, so ``verify_ledger`` passes).
Memory stays flat as sizes grow: nothing is held beyond one chunk.
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import psycopg
from django.conf import settings
from django.utils import timezone

SIZES = {
    # name: (members, events)
    "smoke": (1_000, 10_000),
    "small": (10_000, 100_000),
    "medium": (100_000, 1_000_000),
    "large": (1_000_000, 5_000_000),
}
HEAVY_MEMBER = "bench-heavy"
ID_TABLES = (
    "accounts_member",
    "loyalty_event",
    "loyalty_ledgerentry",
    "loyalty_pointlot",
    "loyalty_leaderboardscore",
    "loyalty_actiontally",
    "loyalty_badgeaward",
)
BOARD = "bench-growth"


def dsn() -> str:
    """The engine's database, for plain psycopg, reached as the engine reaches it."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise SystemExit("The benchmarks need PostgreSQL: set DATABASE_URL=postgres://…")
    return conninfo(db)


def conninfo(db: dict, dbname: str | None = None) -> str:
    """A libpq connection string for Django's database settings ``db``: as Django connects,
    an empty host means the server's local socket, not TCP (the raw limit must take the same
    way as the engine)."""
    given = {
        "host": db.get("HOST"),
        "port": db.get("PORT"),
        "dbname": dbname or db["NAME"],
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
    }
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in given.items() if v})


@dataclass
class Generated:
    members: int = 0
    events: int = 0
    entries: int = 0
    seconds: float = 0.0


def _columns(model) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]


def generate(
    *,
    members: int,
    events: int,
    heavy_entries: int = 10_000,
    seed: int = 1,
    chunk: int = 5_000,
    progress: Callable[[str], None] = print,
) -> Generated:
    """Add ``members`` members with about ``events`` events in all, plus one member with
    ``heavy_entries`` ledger entries. Needs the demo program loaded."""
    from accounts.models import Member
    from loyalty.models import (
        ActionTally,
        Badge,
        BadgeAward,
        EarningRuleVersion,
        Event,
        Leaderboard,
        LeaderboardScore,
        LedgerEntry,
        MemberStanding,
        PointLot,
        Tier,
    )

    started = time.monotonic()
    rng = random.Random(seed)
    versions = {
        v.definition["action"]: v.pk
        for v in EarningRuleVersion.objects.filter(
            rule__code__in=["purchase-base", "check-in-daily"]
        ).order_by("version")
    }
    actions = dict(
        __import__("loyalty.models", fromlist=["Action"]).Action.objects.values_list("code", "pk")
    )
    board, _ = Leaderboard.objects.get_or_create(
        code=BOARD,
        defaults={"name": "Bench: growth, all time", "metric": "growth", "period": "all_time"},
    )
    # Members stand where their history put them: in their tier, with their tallies and the
    # first-purchase badge, so that measured events meet the steady state, not first times.
    tiers = list(Tier.objects.order_by("-growth_threshold").values_list("growth_threshold", "pk"))
    first_purchase = (
        Badge.objects.filter(code="first-purchase").values_list("pk", flat=True).first()
    )
    now = timezone.now()
    mean = max(events / max(members, 1), 1)
    result = Generated()
    with psycopg.connect(dsn(), autocommit=True) as conn:  # a real transaction per chunk
        # The generator draws ids itself (COPY), from each table's highest, and moves the
        # tables' sequences past them at the end.
        ids = {
            table: conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
            for table in ID_TABLES
        }
        done = 0
        while done < members + 1:
            size = min(chunk, members + 1 - done)
            rows = {
                name: []
                for name in (
                    "member",
                    "standing",
                    "event",
                    "entry",
                    "lot",
                    "score",
                    "tally",
                    "award",
                )
            }
            for offset in range(size):
                index = done + offset
                heavy = index == members
                ids["accounts_member"] += 1
                member_id = ids["accounts_member"]
                external_id = HEAVY_MEMBER if heavy else f"bench-{member_id}"
                joined = now - timedelta(days=180 + rng.random() * 200)
                rows["member"].append(
                    (
                        member_id,
                        external_id,
                        f"Bench member {member_id}",
                        "",
                        joined,
                        None,
                        "{}",
                        "",  # language: the member's browser's
                        False,
                        None,
                        joined,
                        joined,
                    )
                )
                count = (
                    heavy_entries // 2
                    if heavy
                    else max(1, round(mean * rng.paretovariate(1.3) / 4.33))
                )
                growth = points = 0
                last = None
                tally = {"purchase": 0, "check_in": 0}
                for _ in range(count):
                    ids["loyalty_event"] += 1
                    event_id = ids["loyalty_event"]
                    at = now - timedelta(seconds=rng.random() * 180 * 86400)
                    last = at if last is None or at > last else last
                    if rng.random() < 0.3:
                        action, amount = "purchase", Decimal(rng.randint(500, 40000)) / 100
                        g, p = 10 + int(amount / 10), int(amount)
                        attributes = f'{{"amount": "{amount}"}}'
                    else:
                        action, g, p, attributes = "check_in", 2, 5, "{}"
                    growth, points = growth + g, points + p
                    tally[action] += 1
                    rows["event"].append(
                        (
                            event_id,
                            None,
                            f"b{event_id}",
                            "",
                            member_id,
                            actions[action],
                            action,
                            at,
                            at,
                            attributes,
                            "credited",
                            "",
                            g,
                            p,
                            "{}",
                        )
                    )
                    ids["loyalty_ledgerentry"] += 2
                    growth_id, points_id = (
                        ids["loyalty_ledgerentry"] - 1,
                        ids["loyalty_ledgerentry"],
                    )
                    version = versions[action]
                    for entry_id, currency, amount in (
                        (growth_id, "growth", g),
                        (points_id, "points", p),
                    ):
                        rows["entry"].append(
                            (entry_id, member_id, currency, "earn", amount, False, "event")
                            + (str(event_id), event_id, version, None, "", at, at)
                        )
                    ids["loyalty_pointlot"] += 1
                    rows["lot"].append(
                        (
                            ids["loyalty_pointlot"],
                            member_id,
                            points_id,
                            event_id,
                            p,
                            p,
                            False,
                            None,
                            None,
                            None,
                            at,
                        )
                    )
                    result.events += 1
                    result.entries += 2
                tier_id = next((pk for threshold, pk in tiers if growth >= threshold), None)
                rows["standing"].append(
                    (
                        member_id,
                        growth,
                        points,
                        0,
                        points,
                        0,
                        0,
                        0,  # points owed
                        tier_id,
                        joined if tier_id else None,
                        None,
                        None,
                        count,
                        last,
                        now,
                    )
                )
                for action, done_count in tally.items():
                    if done_count:
                        ids["loyalty_actiontally"] += 1
                        rows["tally"].append(
                            (ids["loyalty_actiontally"], member_id, actions[action], done_count)
                        )
                if tally["purchase"] and first_purchase:
                    ids["loyalty_badgeaward"] += 1
                    rows["award"].append(
                        (ids["loyalty_badgeaward"], member_id, first_purchase, 1, last, True)
                        + (None, None, "")
                    )
                ids["loyalty_leaderboardscore"] += 1
                rows["score"].append(
                    (ids["loyalty_leaderboardscore"], board.pk, "1970-01-01", member_id, growth)
                )
            with conn.transaction():
                for model, name in (
                    (Member, "member"),
                    (MemberStanding, "standing"),
                    (Event, "event"),
                    (LedgerEntry, "entry"),
                    (PointLot, "lot"),
                    (LeaderboardScore, "score"),
                    (ActionTally, "tally"),
                    (BadgeAward, "award"),
                ):
                    columns = ", ".join(_columns(model))
                    with conn.cursor().copy(
                        f"COPY {model._meta.db_table} ({columns}) FROM STDIN"
                    ) as copy:
                        for row in rows[name]:
                            copy.write_row(row)
            done += size
            result.members += size
            progress(f"  generated {done:,} members, {result.events:,} events")
        for table in ID_TABLES:
            if ids[table]:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {ids[table]})"
                )
        conn.execute("VACUUM ANALYZE")
    result.seconds = time.monotonic() - started
    return result
