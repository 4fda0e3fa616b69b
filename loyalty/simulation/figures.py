"""A period's figures, read the same way from the live tables (what happened) and from a
simulation's scratch (what would have happened): the same SQL, pointed at one schema or the
other, so that a simulation of the live program can be held to the live figures exactly.

A period holds the events that occurred in it, and the ledger entries dated in it (earned,
bonus and reversed; spending, expiry and adjustments are not simulated and left out of both).
"""

from collections import Counter
from datetime import datetime
from typing import Any

from core import sql

ISSUED_KINDS = ("earn", "bonus", "reverse")


def _quoted(schema: str) -> str:
    return f'"{schema}"'


def _keyed(rows: list[tuple]) -> dict[str, dict[str, int]]:
    """(key, currency, amount) rows as {key: {currency: amount}}."""
    found: dict[str, dict[str, int]] = {}
    for key, currency, amount in rows:
        found.setdefault(key or "", {})[currency] = int(amount)
    return found


def _entries(s: str, join: str = "") -> str:
    """The period's issued entries (``le``), with ``join`` (tables joined to them)."""
    return (
        f"FROM {s}.loyalty_ledgerentry le {join} "
        "WHERE le.effective_at >= %(start)s AND le.effective_at < %(end)s "
        "AND le.kind = ANY(%(kinds)s)"
    )


def _events(s: str, join: str = "") -> str:
    """The events (``e``) that occurred in the period, with ``join`` (e.g. an outcome's list
    unnested)."""
    return (
        f"FROM {s}.loyalty_event e {join} "
        "WHERE e.occurred_at >= %(start)s AND e.occurred_at < %(end)s"
    )


def _each(list_name: str, alias: str, *, text: bool = False) -> str:
    """A join unnesting one of an event outcome's lists."""
    function = "jsonb_array_elements_text" if text else "jsonb_array_elements"
    return f", {function}(e.outcome->'{list_name}') {alias}"


def period_figures(schema: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Everything a simulation compares, for the period [start, end) in ``schema``."""
    s = _quoted(schema)
    p = {"start": start, "end": end, "kinds": list(ISSUED_KINDS)}
    issued: dict[str, dict[str, int]] = {}
    for kind, currency, amount in sql.fetch(
        f"SELECT le.kind, le.currency, sum(le.amount) {_entries(s)} GROUP BY 1, 2", p
    ):
        issued.setdefault(kind, {})[currency] = int(amount)
    by_rule = _keyed(
        sql.fetch(
            "SELECT r.code, le.currency, sum(le.amount) "
            + _entries(
                s,
                f"JOIN {s}.loyalty_earningruleversion v ON v.id = le.rule_version_id "
                f"JOIN {s}.loyalty_earningrule r ON r.id = v.rule_id",
            )
            + " AND le.kind = 'earn' GROUP BY 1, 2",
            p,
        )
    )
    by_action = _keyed(
        sql.fetch(
            "SELECT ev.action_code, le.currency, sum(le.amount) "
            + _entries(s, f"JOIN {s}.loyalty_event ev ON ev.id = le.event_id")
            + " GROUP BY 1, 2",
            p,
        )
    )
    by_tier = {
        tier or "": {"growth": int(growth), "points": int(points)}
        for tier, growth, points in sql.fetch(
            f"SELECT e.outcome->>'tier', sum(e.growth), sum(e.points) {_events(s)} GROUP BY 1", p
        )
    }
    badges = sql.fetch(
        f"SELECT b->>'badge', count(*) {_events(s, _each('badges_awarded', 'b'))} GROUP BY 1", p
    )
    quests = sql.fetch(
        f"SELECT q, count(*) {_events(s, _each('quests_completed', 'q', text=True))} GROUP BY 1",
        p,
    )
    capped = Counter()
    for rule, reason, count in sql.fetch(
        f"SELECT c->>'rule', 'capped', count(*) {_events(s, _each('credits', 'c'))} "
        "AND (c->>'capped')::boolean GROUP BY 1 "
        f"UNION ALL SELECT k->>'rule', 'refused', count(*) {_events(s, _each('skipped', 'k'))} "
        "AND k->>'reason' = 'cap_reached' GROUP BY 1",
        p,
    ):
        capped[rule] += int(count)
        capped[f"{rule}:{reason}"] += int(count)
    per_member = sql.fetch(
        f"WITH active AS (SELECT DISTINCT e.member_id {_events(s)}), "
        f"earned AS (SELECT le.member_id, sum(le.amount) AS points {_entries(s)} "
        "AND le.currency = 'points' GROUP BY 1) "
        "SELECT count(*), "
        "percentile_disc(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY coalesce(earned.points, 0)) "
        "FROM active LEFT JOIN earned USING (member_id)",
        p,
    )
    members, percentiles = per_member[0]
    tiers_at_end = Counter(code for _member, code in sql.fetch(_tiers_at(s, end), p))
    return {
        "issued": issued,
        "by_rule": by_rule,
        "by_action": by_action,
        "by_tier": by_tier,
        "badges": {code: int(n) for code, n in badges},
        "quests": {code: int(n) for code, n in quests},
        "caps": dict(capped),
        "members": int(members),
        "points_per_member": dict(
            zip(("p50", "p90", "p99"), [int(v or 0) for v in percentiles or [0, 0, 0]], strict=True)
        ),
        "tiers_at_end": {code or "": n for code, n in tiers_at_end.items()},
    }


def _tiers_at(s: str, end: datetime) -> str:
    """Each member's tier at the period's end, as SQL (member_id, code): the tier their last
    event before the end left them in (its answer names it), read alike from both schemas.
    Tier reviews, which the replay does not run, are left out of both."""
    return (
        "SELECT DISTINCT ON (e.member_id) e.member_id, e.outcome->>'tier' AS code "
        f"FROM {s}.loyalty_event e WHERE e.occurred_at < %(end)s "
        "AND e.outcome->>'tier' IS NOT NULL "
        "ORDER BY e.member_id, e.occurred_at DESC, e.id DESC"
    )


def tier_moves(live: str, simulated: str, end: datetime, limit: int = 20) -> dict[str, Any]:
    """Members whose tier at the period's end differs between the two schemas: how many move
    up and down (by the tiers' order in the simulation), and the first ``limit`` of each."""
    a, b = (_tiers_at(_quoted(name), end) for name in (live, simulated))
    rows = sql.fetch(
        f"WITH a AS ({a}), b AS ({b}) "
        "SELECT m.external_id, a.code, b.code FROM a FULL JOIN b USING (member_id) "
        f'JOIN "{live}".accounts_member m ON m.id = member_id '
        "WHERE a.code IS DISTINCT FROM b.code ORDER BY m.external_id",
        {"end": end},
    )
    order = {
        code: position
        for code, position in sql.fetch(
            f'SELECT code, position FROM "{simulated}".loyalty_tier', {}
        )
    }
    up, down = [], []
    for external_id, before, after in rows:
        rising = order.get(after, -1) > order.get(before, -1)
        (up if rising else down).append({"member": external_id, "from": before, "to": after})
    return {
        "up": len(up),
        "down": len(down),
        "members_up": up[:limit],
        "members_down": down[:limit],
    }


def most_changed(live: str, simulated: str, start: datetime, end: datetime, limit: int = 20):
    """The members whose points in the period differ most between the two schemas."""
    earned = (
        "SELECT le.member_id, sum(le.amount) AS points FROM {s}.loyalty_ledgerentry le "
        "WHERE le.effective_at >= %(start)s AND le.effective_at < %(end)s "
        "AND le.kind = ANY(%(kinds)s) AND le.currency = 'points' GROUP BY 1"
    )
    a, b = (earned.format(s=_quoted(name)) for name in (live, simulated))
    rows = sql.fetch(
        f"WITH a AS ({a}), b AS ({b}) "
        "SELECT m.external_id, coalesce(a.points, 0), coalesce(b.points, 0) "
        "FROM a FULL JOIN b USING (member_id) "
        f'JOIN "{live}".accounts_member m ON m.id = member_id '
        "WHERE coalesce(a.points, 0) <> coalesce(b.points, 0) "
        "ORDER BY abs(coalesce(b.points, 0) - coalesce(a.points, 0)) DESC, m.external_id "
        "LIMIT %(limit)s",
        {"start": start, "end": end, "kinds": list(ISSUED_KINDS), "limit": limit},
    )
    return [
        {"member": external_id, "actual": int(a), "simulated": int(b), "change": int(b - a)}
        for external_id, a, b in rows
    ]
