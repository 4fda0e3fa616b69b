"""What-if: the history replayed under a draft through the real engine, in a scratch, compared
with what happened. The live program replayed gives back exactly what happened; a draft moves
the figures a hand computation says; nothing live is touched."""

import copy
import json
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from loyalty.engine.events import EventInput, record_event
from loyalty.engine.reversals import event_reverse
from loyalty.models import Action, Leaderboard, SimulationRun
from loyalty.simulation.drafts import draft_new, live_definition
from loyalty.simulation.runs import liability, simulation_new, simulation_run
from tests.factories import make_badge, make_leaderboard, make_quest, make_rule, make_tiers
from tests.loyalty.test_leaderboards_redis import redis_store, view  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOW = timezone.now().replace(microsecond=0)
START, END = NOW - timedelta(days=30), NOW + timedelta(minutes=1)


def post(member: str, action: str, days_ago: float, key: str, **attributes):
    return record_event(
        client=None,
        event=EventInput(
            external_id=member,
            action=action,
            idempotency_key=key,
            occurred_at=NOW - timedelta(days=days_ago),
            attributes=attributes,
        ),
    )


@pytest.fixture
def history(db):
    """Sixty days of a small shop through the engine: purchases (1 point a yuan, capped at 500
    a day), check-ins, a quest, a badge, tiers with a points multiplier, and refunds."""
    make_tiers(("member", 0), ("silver", 3000, {"points_multiplier": {"multiplier": "1.5"}}))
    make_rule(
        "purchase",
        code="per-yuan",
        points_per_unit="1",
        growth_per_unit="10",
        unit_attribute="amount",
        apply_tier_multipliers=True,
        caps=[("day", "points", 500)],
    )
    make_rule("check_in", code="daily-visit", points_per_occurrence=5, growth_per_occurrence=1)
    make_quest("three-visits", "weekly", [("check_in", 3)], reward_points=20)
    make_leaderboard("top-points", "points", "all_time")
    make_badge(
        "big-spender", "action_count", action=Action.objects.get(code="purchase"), threshold=5
    )
    rng = random.Random(5)
    keys = iter(range(10**6))
    purchases = []
    for day in range(60, 0, -1):
        for i in range(6):
            member = f"m{i}"
            if rng.random() < 0.5:
                post(member, "check_in", day + 0.1 * i, f"c-{next(keys)}")
            if rng.random() < 0.4:
                amount = str(rng.choice([40, 120, 260, 610]))
                result = post(member, "purchase", day + 0.05 * i, f"p-{next(keys)}", amount=amount)
                purchases.append((result.event_id, amount))
        if day % 9 == 0 and purchases:  # a refund now and then, some partial
            event_id, amount = purchases[-1]
            partial = Decimal(amount) / 2 if day % 2 else None
            event_reverse(
                client=None, event_id=event_id, idempotency_key=f"r-{day}", amount=partial
            )


def test_the_live_program_replayed_gives_back_exactly_what_happened(history):
    run = simulation_run(simulation_new(start=START, end=END))
    assert run.status == "done", run.error
    results = run.results
    assert results["replayed"]["events"] > 200 and results["replayed"]["reversals"] >= 5
    actual, simulated = results["actual"], results["simulated"]
    assert actual["issued"]["earn"]["points"] > 0 and actual["caps"]  # a busy period
    assert simulated == actual  # every figure, to the point
    assert results["tier_moves"] == {"up": 0, "down": 0, "members_up": [], "members_down": []}
    assert results["most_changed"] == []
    assert run.done == run.total > 0


@pytest.fixture
def shop(db):
    """Three members, one point and one growth a yuan, no multiplier; silver at 1,000 growth,
    gold at 5,000. Before the period (35–40 days ago) and in it (5–20 days ago):
    ann 100 then 300 + 300; bob 300 then 200; cy 2,000 then 4 × 500."""
    make_tiers(("member", 0), ("silver", 1000), ("gold", 5000))
    make_rule(
        "purchase",
        code="per-yuan",
        points_per_unit="1",
        growth_per_unit="1",
        unit_attribute="amount",
        caps=[("day", "points", 1000)],
    )
    plan = {
        "ann": [(40, 100), (20, 300), (10, 300)],
        "bob": [(38, 300), (12, 200)],
        "cy": [(36, 2000), (20, 500), (15, 500), (10, 500), (5, 500)],
    }
    for member, purchases in plan.items():
        for days_ago, amount in purchases:
            post(member, "purchase", days_ago, f"{member}-{days_ago}", amount=str(amount))


def per_yuan(draft, **changes):
    rule = next(r for r in draft.definition["rules"] if r["code"] == "per-yuan")
    rule.update(changes)
    draft.save()
    return draft


def test_a_draft_doubling_the_purchase_rate_doubles_its_points_and_moves_tiers(shop):
    draft = per_yuan(
        draft_new(name="Double purchases"), points_per_unit="2.0000", growth_per_unit="2.0000"
    )
    run = simulation_run(simulation_new(start=START, end=END, draft=draft))
    assert run.status == "done", run.error
    actual, simulated = run.results["actual"], run.results["simulated"]
    # In the period: 600 + 200 + 2,000 yuan.
    assert actual["by_rule"]["per-yuan"] == {"points": 2800, "growth": 2800}
    assert simulated["by_rule"]["per-yuan"] == {"points": 5600, "growth": 5600}
    assert liability(simulated) - liability(actual) == 2800
    # Growth at the end, by hand: ann 100 + 2 × 600 = 1,300 (silver, was 700: member); bob
    # 300 + 2 × 200 = 700 (member, as before); cy 2,000 + 2 × 2,000 = 6,000 (gold, was silver).
    assert actual["tiers_at_end"] == {"member": 2, "silver": 1}
    assert simulated["tiers_at_end"] == {"member": 1, "silver": 1, "gold": 1}
    assert run.results["tier_moves"] == {
        "up": 2,
        "down": 0,
        "members_up": [
            {"member": "ann", "from": "member", "to": "silver"},
            {"member": "cy", "from": "silver", "to": "gold"},
        ],
        "members_down": [],
    }
    assert run.results["most_changed"] == [
        {"member": "cy", "actual": 2000, "simulated": 4000, "change": 2000},
        {"member": "ann", "actual": 600, "simulated": 1200, "change": 600},
        {"member": "bob", "actual": 200, "simulated": 400, "change": 200},
    ]
    assert simulated["points_per_member"] == {"p50": 1200, "p90": 4000, "p99": 4000}


def test_a_draft_lowering_a_cap_reports_the_caps_hit(shop):
    draft = per_yuan(draft_new(name="Tighter cap"))
    next(r for r in draft.definition["rules"] if r["code"] == "per-yuan")["caps"] = [
        {"period": "day", "measure": "points", "limit": 300}
    ]
    draft.save()
    run = simulation_run(simulation_new(start=START, end=END, draft=draft))
    assert run.status == "done", run.error
    assert run.results["actual"]["caps"] == {}
    # cy's four purchases of 500 each stop at 300; nobody else buys more than 300 a day.
    assert run.results["simulated"]["caps"] == {"per-yuan": 4, "per-yuan:capped": 4}
    assert run.results["simulated"]["by_rule"]["per-yuan"]["points"] == 600 + 200 + 4 * 300


def test_isolation_nothing_live_changes(
    redis_store,  # noqa: F811 (a fixture): set before the history, which it then mirrors
    history,
    django_capture_on_commit_callbacks,
):
    tables = [
        "loyalty_event",
        "loyalty_ledgerentry",
        "loyalty_memberstanding",
        "loyalty_pointlot",
        "loyalty_rulecounter",
        "loyalty_questprogress",
        "loyalty_badgeaward",
        "loyalty_webhookevent",
        "loyalty_leaderboardscore",
        "loyalty_tierchange",
        "loyalty_earningrule",
        "loyalty_program",
    ]

    def fingerprint():
        found = {}
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
                )
                found[table] = cursor.fetchone()[0]
            cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sim_%%'")
            found["schemas"] = cursor.fetchall()
        return found

    def redis_sets():
        sets = {}
        for key in sorted(redis_store.redis.scan_iter(f"{redis_store.prefix}:*")):
            kind = redis_store.redis.type(key)
            sets[key] = (
                redis_store.redis.zrange(key, 0, -1, withscores=True)
                if kind == b"zset"
                else redis_store.redis.get(key)
            )
        return sets

    view(Leaderboard.objects.get(code="top-points"))  # fills the board's set in Redis
    before, redis_before = fingerprint(), redis_sets()
    assert any(isinstance(value, list) and value for value in redis_before.values())
    draft = draft_new(name="Everything off")
    definition = copy.deepcopy(draft.definition)
    definition["rules"] = []
    draft.definition = definition
    draft.save()
    with django_capture_on_commit_callbacks() as callbacks:
        run = simulation_run(simulation_new(start=START, end=END, draft=draft))
    assert run.status == "done", run.error
    assert run.results["simulated"]["by_rule"] == {}
    assert fingerprint() == before
    assert redis_sets() == redis_before
    assert callbacks == [] and mail.outbox == []
    assert live_definition() == draft_new(name="x").definition  # the live program is as it was


def test_a_cancelled_run_stops_and_leaves_no_scratch(history):
    run = simulation_new(start=START, end=END)
    SimulationRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    run = simulation_run(run)
    assert run.status == "cancelled" and run.results is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'sim_%%'")
        assert cursor.fetchone()[0] == 0


def test_an_operator_runs_a_simulation_from_the_admin_and_reads_it_again(
    shop, admin_client, django_capture_on_commit_callbacks
):
    draft = per_yuan(draft_new(name="Double"), points_per_unit="2.0000")
    form = {
        "draft": draft.pk,
        "start_0": START.strftime("%Y-%m-%d"),
        "start_1": START.strftime("%H:%M:%S"),
        "end_0": END.strftime("%Y-%m-%d"),
        "end_1": END.strftime("%H:%M:%S"),
    }
    with django_capture_on_commit_callbacks(execute=True):  # the worker's task, inline
        response = admin_client.post("/admin/loyalty/simulationrun/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    run = SimulationRun.objects.get()
    assert run.status == "done" and run.label == "Double", run.error
    page = admin_client.get(f"/admin/loyalty/simulationrun/{run.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' not in page  # done: the page stops refreshing
    assert 'data-section="rule_points"' in page and "canvas" in page
    assert "<td>per-yuan</td><td>2,800</td><td>5,600</td><td>+2,800</td>" in page
    assert "The period's points liability changes by 2,800 points (28.00 CNY" in page

    bad = {**form, "end_0": form["start_0"], "end_1": form["start_1"]}
    assert (
        "The period must end after it starts."
        in admin_client.post("/admin/loyalty/simulationrun/add/", bad).content.decode()
    )


def test_the_command_simulates_a_draft_by_name_and_answers_json(shop, capsys):
    from django.core.management import call_command

    per_yuan(draft_new(name="Double"), points_per_unit="2.0000")
    call_command("simulate_program", "Double", "--since", "30d", "--json")
    answer = json.loads(capsys.readouterr().out)
    assert answer["simulated"]["by_rule"]["per-yuan"]["points"] == 5600
    call_command("simulate_program", "--since", "30d")
    text = capsys.readouterr().out
    assert "Points by rule" in text and "per-yuan" in text
