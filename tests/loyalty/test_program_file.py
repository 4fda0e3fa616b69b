"""The program as a file: export, load idempotently, refuse invalid files with clear errors."""

import json
from datetime import UTC
from decimal import Decimal

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.core.serializers.json import DjangoJSONEncoder

from core.errors import InvalidInput
from loyalty.demo import DEMO_PROGRAM, load_demo_program, simulate_members
from loyalty.models import Action, EarningRule, EarningRuleVersion, Event, MemberStanding, Tier
from loyalty.program.program_file import program_export, program_load

pytestmark = pytest.mark.django_db


def demo_file() -> dict:
    return yaml.safe_load(DEMO_PROGRAM.read_text())


def test_the_demo_program_loads_with_actions_rules_and_five_tiers(db):
    report = program_load(data=demo_file())
    assert report.created == {
        "actions": 9,
        "rules": 13,
        "tiers": 5,
        "streaks": 1,
        "badges": 9,
        "quests": 3,
        "leaderboards": 4,
        "segments": 0,
        "key_actions": 0,
        "gifts": 0,
    }
    assert list(Tier.objects.values_list("code", flat=True)) == [
        "member",
        "silver",
        "gold",
        "platinum",
        "diamond",
    ]
    assert (
        Tier.objects.get(code="gold").privileges.filter(kind="host", code="free-shipping").exists()
    )


def test_loading_the_same_file_twice_changes_nothing(db):
    program_load(data=demo_file())
    versions = EarningRuleVersion.objects.count()
    report = program_load(data=demo_file())
    assert set(report.created.values()) == set(report.updated.values()) == {0}
    assert EarningRuleVersion.objects.count() == versions


def test_an_exported_program_loads_back_unchanged(db, tmp_path):
    program_load(data=demo_file())
    target = tmp_path / "program.json"
    call_command("export_program", "--format", "json", "--output", str(target))
    exported = json.loads(target.read_text())
    assert program_load(data=exported).rule_versions == 0
    assert json.loads(json.dumps(program_export(), default=str)) == exported


def as_file(data) -> dict:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


@pytest.mark.django_db(transaction=True)
def test_the_whole_program_round_trips_through_an_empty_database(tmp_path):
    from datetime import datetime

    from loyalty.models import Gift, KeyAction, Program, Quest, Segment
    from rewards.management.commands.load_demo_catalog import DEMO_CATALOG
    from rewards.models import Reward
    from rewards.referrals.demo import DEMO_REFERRALS
    from rewards.referrals.program_file import referrals_load
    from rewards.services.catalog_file import catalog_load

    program_load(data=demo_file())
    catalog_load(data=yaml.safe_load(DEMO_CATALOG.read_text()))
    referrals_load(yaml.safe_load(DEMO_REFERRALS.read_text()), False)
    Program.objects.filter(pk=1).update(point_value=Decimal("0.05"), money="CNY")
    KeyAction.objects.create(
        action=Action.objects.get(code="check_in"),
        min_per_day=1,
        effective_from=datetime(2026, 1, 1, tzinfo=UTC),
    )
    KeyAction.objects.create(
        action=Action.objects.get(code="purchase"),
        min_per_day=2,
        effective_from=datetime(2026, 6, 1, 8, 30, tzinfo=UTC),
    )
    Gift.objects.create(kind="welcome", points=50)
    Gift.objects.create(kind="birthday", points=200, growth=20, is_active=False)
    app_users = Segment.objects.create(
        code="app-users", name="App users", description="From the app"
    )
    app_users.conditions.create(field="attribute", attribute="channel", operator="eq", value="app")
    app_users.conditions.create(field="tier", operator="in", value="gold,platinum")
    Quest.objects.filter(pk=Quest.objects.first().pk).update(segment=app_users)
    reward = Reward.objects.get(code="gift-tote-bag")
    reward.only_segment = reward.price_segment = app_users
    reward.segment_price = 2000
    reward.translations = {"zh-hans": {"name": "限量帆布袋"}}
    reward.save()
    reward.exclusive_tiers.set(Tier.objects.filter(code__in=["gold", "silver"]))

    before = as_file(program_export())
    assert {"segments", "key_actions", "gifts", "rewards", "referrals"} <= set(before)
    assert before["referrals"]["qualifying_action"] == "purchase"
    assert before["referrals"]["min_amount"] == "50.00"
    assert before["program"]["money"] == "CNY" and len(before["key_actions"]) == 2
    target = tmp_path / "program.yaml"
    call_command("export_program", "--output", str(target))

    call_command("flush", interactive=False)  # an empty database
    assert not Tier.objects.exists() and not Reward.objects.exists()
    call_command("load_program", str(target))
    assert as_file(program_export()) == before
    # Loading it again changes nothing.
    report = program_load(data=yaml.safe_load(target.read_text()))
    assert set(report.created.values()) == set(report.updated.values()) == {0}
    assert report.others == [
        "rewards: 2 pool(s); rewards: 0 created, 4 updated",
        "referrals: on",
    ]
    assert as_file(program_export()) == before


def test_a_rules_hold_and_expiry_load_export_and_apply(db, earn):
    data = {
        "actions": [{"code": "purchase", "name": "Purchase"}],
        "rules": [
            {
                "code": "held",
                "action": "purchase",
                "name": "Held",
                "points_per_occurrence": 100,
                "hold_days": 7,
                "points_expiry": "days",
                "points_expiry_n": 30,
            }
        ],
        "program": {"points_expiry": "end_of_month", "points_expiry_n": 3},
    }
    program_load(data=data)

    rule = program_export()["rules"][0]
    assert (rule["hold_days"], rule["points_expiry"], rule["points_expiry_n"]) == (7, "days", 30)
    assert program_export()["program"]["points_expiry"] == "end_of_month"
    outcome = earn()
    assert (outcome["balances"]["points"], outcome["balances"]["points_pending"]) == (0, 100)
    from loyalty.models import PointLot

    lot = PointLot.objects.get()
    assert lot.pending
    assert (lot.expires_at - lot.activates_at).days == 23  # 30 days from earning, 7 on hold


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (
            {"rules": [{"code": "r", "action": "a", "name": "R", "cooldown_secs": 60}]},
            "rules[0].cooldown_secs: Unknown key.",
        ),
        ({"campaigns": []}, "campaigns: Unknown key."),
        ({"program": {"points_expiry": "never", "expiry": "x"}}, "program.expiry: Unknown key."),
        (
            {"tiers": [{"code": "t", "name": "T", "growth_threshold": 0, "perks": []}]},
            "tiers[0].perks: Unknown key.",
        ),
        (
            {"badges": [{"code": "b", "name": "B", "criterion": "manual", "colour": "red"}]},
            "badges[0].colour: Unknown key.",
        ),
        (
            {
                "rules": [
                    {
                        "code": "r",
                        "action": "a",
                        "name": "R",
                        "caps": [{"period": "day", "measure": "points", "limit": 1, "x": 1}],
                    }
                ]
            },
            "rules[0].caps[0].x: Unknown key.",
        ),
    ],
)
def test_an_unknown_key_is_refused_naming_its_path(db, data, path):
    with pytest.raises(InvalidInput) as error:
        program_load(data={"actions": [{"code": "a", "name": "A"}], **data})
    assert path in error.value.details
    assert not EarningRule.objects.exists()


def test_a_changed_rule_in_the_file_makes_a_new_version(db):
    program_load(data=demo_file())
    changed = demo_file()
    changed["rules"][1]["points_per_occurrence"] = 8
    report = program_load(data=changed)
    assert report.updated["rules"] == 1
    assert report.rule_versions == 1
    assert EarningRule.objects.get(code="check-in-daily").versions.count() == 2


def test_reordering_tiers_follows_the_file(db):
    data = {
        "tiers": [
            {"code": "a", "name": "A", "growth_threshold": 0},
            {"code": "b", "name": "B", "growth_threshold": 10},
        ]
    }
    program_load(data=data)
    data["tiers"][0]["growth_threshold"] = 5
    program_load(data=data)
    assert list(Tier.objects.order_by("position").values_list("code", "position")) == [
        ("a", 0),
        ("b", 1),
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["rules"][0].update(action="fly"), "Unknown actions: fly"),
        (lambda d: d["rules"][0]["caps"][0].update(period="fortnight"), "rules[0].caps[0].period"),
        (lambda d: d["rules"][0].update(rounding="sideways"), "rules[0].rounding"),
        (
            lambda d: d["rules"][6]["conditions"][0].update(operator="matches"),
            "rules[6].conditions[0].operator",
        ),
        (lambda d: d["tiers"].reverse(), "lowest first"),
        (lambda d: d["actions"].append(dict(d["actions"][0])), "Codes used twice: register"),
        (lambda d: d["tiers"][0].update(window_days=None), "tiers[0].window_days"),
    ],
)
def test_an_invalid_file_is_refused_whole_with_the_place_named(db, mutate, expected):
    data = demo_file()
    mutate(data)
    with pytest.raises(InvalidInput) as error:
        program_load(data=data)
    assert any(expected in line for line in error.value.details), error.value.details
    assert not Action.objects.exists()


def test_the_load_command_reports_errors_and_exits_non_zero(db, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - code: x\n    action: nowhere\n    name: X\n")
    with pytest.raises(CommandError, match="Unknown actions: nowhere"):
        call_command("load_program", str(bad))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_program", str(tmp_path / "missing.yaml"))


def test_the_demo_simulation_runs_once_and_keeps_the_ledger_in_step(db):
    from tests.helpers import assert_balances_match_ledger

    load_demo_program()
    report = simulate_members(members=6, days=20)
    assert report.events > 6
    assert MemberStanding.objects.count() == 6
    assert MemberStanding.objects.filter(tier__isnull=False).count() == 6
    assert simulate_members(members=6, days=20).skipped
    assert Event.objects.count() == report.events
    assert_balances_match_ledger()


def test_quickstart_sets_everything_up_and_a_rerun_keeps_what_the_operator_changed(
    db, capsys, monkeypatch
):
    from django.contrib.auth import get_user_model

    from accounts.services import api_client_authenticate
    from loyalty.models import EarningRule
    from loyalty.program.compiled import earning_rule_publish
    from rewards.models import Reward

    monkeypatch.setattr(
        "loyalty.management.commands.load_demo.simulate_members",
        lambda **kw: simulate_members(members=3, days=5),
    )
    call_command("quickstart", "--no-serve")
    first = capsys.readouterr().out
    assert "Operator login: admin /" in first
    key = next(w for w in first.split() if w.startswith("lk_"))
    # The operator edits a rule's rate and a reward's cost.
    rule = EarningRule.objects.filter(points_per_unit__gt=0).first()
    rule.points_per_unit = Decimal("2.0")
    rule.save()
    earning_rule_publish(rule=rule)
    reward = Reward.objects.first()
    Reward.objects.filter(pk=reward.pk).update(cost_points=999)

    call_command("quickstart", "--no-serve")
    second = capsys.readouterr().out

    assert "password unchanged" in second
    assert "left as it is" in second
    rule.refresh_from_db()
    assert rule.points_per_unit == Decimal("2.0")
    assert Reward.objects.get(pk=reward.pk).cost_points == 999
    assert api_client_authenticate(key=key).name == "demo"  # the key in use still works
    assert "--rotate-key" in second and key not in second

    call_command("quickstart", "--no-serve", "--rotate-key", "--reset-password")
    third = capsys.readouterr().out
    new_key = next(w for w in third.split() if w.startswith("lk_"))
    assert api_client_authenticate(key=new_key).name == "demo"
    assert api_client_authenticate(key=key) is None
    password = third.split("Operator login: admin / ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
