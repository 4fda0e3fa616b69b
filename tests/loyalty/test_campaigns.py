"""Campaigns on PostgreSQL: audience snapshots, idempotent runs, holdouts, budgets raced by
concurrent runs, contact-frequency limits across campaigns, schedules, and recall."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from loyalty.campaigns.runs import (
    campaign_run_serve,
    campaign_run_start,
    held_out,
    latest_slot,
    outcomes,
    recall,
    run_due_campaigns,
)
from loyalty.models import (
    Adjustment,
    Campaign,
    CampaignRun,
    CampaignTarget,
    KeyActiveDay,
    LedgerEntry,
    MemberActivity,
    MemberStanding,
    Segment,
    SegmentCondition,
)
from loyalty.periods import local_date
from tests.concurrency import race
from tests.factories import MemberFactory
from tests.helpers import assert_balances_match_ledger

pytestmark = pytest.mark.django_db


def segment_of(prefix: str) -> Segment:
    segment = Segment.objects.create(code=f"seg-{prefix}", name=prefix)
    SegmentCondition.objects.create(
        segment=segment, field="attribute", attribute="group", operator="eq", value=prefix
    )
    return segment


def members(prefix: str, n: int, **fields) -> list:
    return [
        MemberFactory(external_id=f"{prefix}-{i:03d}", attributes={"group": prefix}, **fields)
        for i in range(n)
    ]


def campaign(code: str, segment: Segment, **fields) -> Campaign:
    fields.setdefault("kind", Campaign.Kind.POINTS)
    fields.setdefault("amount", 100)
    fields.setdefault("starts_at", timezone.now() - timedelta(minutes=1))
    return Campaign.objects.create(code=code, name=code, segment=segment, **fields)


def run_now(c: Campaign) -> CampaignRun:
    run = campaign_run_start(c, scheduled_for=timezone.now())
    campaign_run_serve(run)
    return run


def test_a_grant_campaign_credits_each_member_once_even_when_served_again():
    group = members("vip", 5)
    run = run_now(campaign("welcome-back", segment_of("vip")))
    assert run.audience == 5 and outcomes(run) == {"granted": 5}
    # Served again (a retry after a crash): nothing is granted twice.
    CampaignRun.objects.filter(pk=run.pk).update(status="running")
    run.targets.update(outcome="pending")
    campaign_run_serve(run)
    assert Adjustment.objects.count() == 5
    assert sorted(MemberStanding.objects.values_list("points", flat=True)) == [100] * 5
    assert {a.member_id for a in Adjustment.objects.all()} == {m.pk for m in group}
    assert_balances_match_ledger()


def test_the_audience_is_the_segment_when_the_run_starts():
    members("late", 2)
    c = campaign("snap", segment_of("late"))
    run = campaign_run_start(c, scheduled_for=timezone.now())
    members("late-joiner", 1)  # not in the segment
    MemberFactory(external_id="newcomer", attributes={"group": "late"})  # joins after the snapshot
    campaign_run_serve(run)
    assert run.targets.count() == 2
    assert not MemberStanding.objects.filter(member__external_id="newcomer").exists()


def test_holdout_members_get_nothing_and_are_reported():
    group = members("hold", 60)
    c = campaign("with-holdout", segment_of("hold"), holdout_percent=30)
    run = run_now(c)
    held = {t.member_id for t in run.targets.filter(outcome="holdout")}
    assert held == {m.pk for m in group if held_out(run, m.pk, 30)}
    assert 5 < len(held) < 35  # about 30 %
    assert not LedgerEntry.objects.filter(member_id__in=held).exists()
    assert outcomes(run) == {"holdout": len(held), "granted": 60 - len(held)}
    assert recall(run)["holdout"].targets == len(held)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_budget_raced_by_concurrent_runs_is_never_overspent():
    members("race", 12)
    c = campaign("budgeted", segment_of("race"), budget=650, repeat=Campaign.Repeat.DAILY)
    slot = timezone.now()
    runs = [campaign_run_start(c, scheduled_for=slot + timedelta(seconds=i)) for i in range(4)]
    results = race(4, lambda i: campaign_run_serve(runs[i]))
    assert not [r for r in results if isinstance(r, Exception)], results
    c.refresh_from_db()
    granted = LedgerEntry.objects.filter(source_type="adjustment").aggregate(s=Sum("amount"))["s"]
    # 48 targets of 100 points each against 650: six grants, never a seventh.
    assert granted == c.spent == 600
    total = {k: sum(outcomes(r).get(k, 0) for r in runs) for k in ("granted", "over_budget")}
    assert total == {"granted": 6, "over_budget": 42}
    assert_balances_match_ledger()


@override_settings(LOYALTY_CONTACTS_PER_WEEK=2)
def test_the_contact_limit_holds_across_campaigns():
    (member,) = members("msg", 1, email="m@example.com")
    segment = segment_of("msg")
    first = campaign(
        "news", segment, kind="email", subject="Hi {{ name }}", body="You have {{ points }} points."
    )
    second = campaign("promo", segment, kind="email", subject="Promo", body="Come back")
    assert outcomes(run_now(first)) == {"sent": 1}
    assert outcomes(run_now(first)) == {"sent": 1}
    assert outcomes(run_now(second)) == {"too_often": 1}
    assert len(mail.outbox) == 2
    assert mail.outbox[0].subject == f"Hi {member.display_name}"
    assert mail.outbox[0].body == "You have 0 points."
    # A week later the member may be contacted again.
    CampaignTarget.objects.filter(outcome="sent").update(at=timezone.now() - timedelta(days=8))
    assert outcomes(run_now(second)) == {"sent": 1}


def test_active_members_are_left_alone_unless_the_operator_says_otherwise():
    quiet, busy = members("act", 2, email="a@example.com")
    MemberActivity.objects.create(member=busy, state="active", since=timezone.now())
    segment = segment_of("act")
    run = run_now(campaign("recall", segment, kind="email", subject="s", body="b"))
    assert {t.member_id: t.outcome for t in run.targets.all()} == {
        quiet.pk: "sent",
        busy.pk: "active",
    }
    everyone = run_now(
        campaign("all-in", segment, kind="email", subject="s", body="b", include_active=True)
    )
    assert outcomes(everyone) == {"sent": 2}


def test_a_daily_schedule_runs_each_slot_once():
    members("daily", 1)
    start = timezone.now() - timedelta(days=2, hours=1)
    segment = segment_of("daily")
    c = campaign("every-day", segment, repeat=Campaign.Repeat.DAILY, starts_at=start)
    assert latest_slot(c, timezone.now()) == start + timedelta(days=2)
    assert len(run_due_campaigns()) == 1
    assert run_due_campaigns() == []  # the slot has its run
    later = timezone.now() + timedelta(days=1)
    assert [r.scheduled_for for r in run_due_campaigns(now=later)] == [start + timedelta(days=3)]
    once = campaign("once", segment, starts_at=timezone.now() + timedelta(hours=1))
    assert latest_slot(once, timezone.now()) is None


def test_recall_compares_the_reached_with_the_holdout():
    group = members("rc", 40)
    run = run_now(campaign("winback", segment_of("rc"), holdout_percent=50, return_days=7))
    day = local_date(run.scheduled_for)
    reached = [t.member_id for t in run.targets.filter(outcome="granted")]
    held = [t.member_id for t in run.targets.filter(outcome="holdout")]
    # Half of the reached come back within the week, one of the held-out does; two reached
    # members are still active in the fifth week.
    comers = reached[: len(reached) // 2]
    days = [(m, day + timedelta(days=3)) for m in comers + held[:1]]
    days += [(m, day + timedelta(days=30)) for m in reached[:2]]
    joined = {m.pk: local_date(m.joined_at) for m in group}
    KeyActiveDay.objects.bulk_create(
        [
            KeyActiveDay(
                member_id=m, day=d, joined=joined[m], day_offset=0, week_offset=0, month_offset=0
            )
            for m, d in days
        ]
    )
    found = recall(run)
    assert (found["reached"].targets, found["reached"].returned, found["reached"].retained) == (
        len(reached),
        len(comers),
        2,
    )
    assert (found["holdout"].targets, found["holdout"].returned) == (len(held), 1)
    assert found["reached"].delivered == len(reached)


def test_an_operator_runs_a_campaign_from_the_admin_and_reads_its_recall(
    admin_client, django_capture_on_commit_callbacks
):
    members("adm", 3)
    c = campaign("from-admin", segment_of("adm"), holdout_percent=0)
    with django_capture_on_commit_callbacks(execute=True):  # the worker's task, inline
        response = admin_client.post(
            "/admin/loyalty/campaign/",
            {"action": "run_now", "_selected_action": [c.pk], "index": 0, "select_across": 0},
            follow=True,
        )
    assert "From-admin: a run for 3 members has started." in response.content.decode()
    run = c.runs.get()
    page = admin_client.get(f"/admin/loyalty/campaignrun/{run.pk}/change/").content.decode()
    assert 'id="recall"' in page and "Granted: 3" in page
    assert admin_client.get(f"/admin/loyalty/campaign/{c.pk}/change/").status_code == 200


@override_settings(
    EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
    EMAIL_HOST="127.0.0.1",
    EMAIL_PORT=9,  # nothing listens: a real SMTP connection, refused
    EMAIL_TIMEOUT=2,
)
def test_an_e_mail_the_server_refuses_is_reported_and_the_run_ends():
    members("bounce", 2, email="b@example.com")
    run = run_now(campaign("mail", segment_of("bounce"), kind="email", subject="s", body="b"))
    assert outcomes(run) == {"failed": 2}
    run.refresh_from_db()
    assert run.status == "done"


def test_a_reward_campaign_gives_each_member_a_coupon_once_within_stock_and_budget():
    from rewards.models import Redemption
    from tests.factories import make_reward

    make_reward("cinema", codes=3, kind="coupon", limit_per_member=1)
    group = members("fans", 5)
    c = campaign("cinema-night", segment_of("fans"), kind=Campaign.Kind.REWARD, reward="cinema")
    run = run_now(c)
    # Three codes in the pool: three gifts; the other two members find the stock gone.
    assert outcomes(run) == {"granted": 3, "refused": 2}
    assert sorted(run.targets.values_list("detail", flat=True)) == [""] * 3 + ["out_of_stock"] * 2
    gifts = Redemption.objects.filter(reward__code="cinema")
    assert gifts.count() == 3 and {g.points_cost for g in gifts} == {0}
    assert {g.member_id for g in gifts} == {
        t.member_id for t in run.targets.filter(outcome="granted")
    }
    assert all(g.coupon_code.startswith("CINEMA-") and g.spend_entry_id is None for g in gifts)
    assert not LedgerEntry.objects.filter(member__in=group).exists()  # no points moved
    # Served again: nobody gets a second code.
    CampaignRun.objects.filter(pk=run.pk).update(status="running")
    run.targets.update(outcome="pending", detail="")
    campaign_run_serve(run)
    assert gifts.count() == 3 and outcomes(run) == {"granted": 3, "refused": 2}
    # A second run: the reward's own limit (one per member) refuses the members who have one.
    second = run_now(c)
    assert (
        sorted(second.targets.values_list("detail", flat=True))
        == ["limit_reached"] * 3 + ["out_of_stock"] * 2
    )

    # A budget counts rewards: two in all, whatever the stock.
    make_reward("mug")
    mugs = campaign("mugs", c.segment, kind=Campaign.Kind.REWARD, reward="mug", budget=2)
    assert outcomes(run_now(mugs)) == {"granted": 2, "over_budget": 3}
    mugs.refresh_from_db()
    assert mugs.spent == 2 == Redemption.objects.filter(reward__code="mug").count()
    assert_balances_match_ledger()


def test_the_admin_refuses_a_reward_campaign_without_a_known_reward():
    from loyalty.admin.campaigns import CampaignForm
    from tests.factories import make_reward

    make_reward("mug")
    segment = segment_of("any")
    base = {
        "code": "c",
        "name": "C",
        "segment": segment.pk,
        "kind": "reward",
        "amount": 0,
        "starts_at": "2026-12-01 10:00",
        "repeat": "once",
        "holdout_percent": 0,
        "return_days": 7,
        "is_active": True,
    }
    form = CampaignForm(data={**base, "reward": "no-such"})
    assert not form.is_valid()
    assert form.errors.as_data()["reward"][0].code == "unknown_reward"
    assert CampaignForm(data={**base, "reward": "mug"}).is_valid()
    points = CampaignForm(data={**base, "kind": "points", "reward": ""})
    assert points.errors.as_data()["amount"][0].code == "amount_required"
