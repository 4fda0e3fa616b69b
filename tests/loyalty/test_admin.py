"""The operators' admin: pages render, saves go through the services."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiClient, Member
from loyalty.demo import load_demo_program, simulate_members
from loyalty.models import (
    Action,
    Badge,
    BadgeAward,
    EarningRule,
    Event,
    EventBatchJob,
    Leaderboard,
    LedgerEntry,
    MemberStanding,
    Program,
    Quest,
    Streak,
    Tier,
    TierChange,
)
from tests.helpers import form_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    load_demo_program()
    simulate_members(members=4, days=10)


@pytest.mark.parametrize(
    "model",
    [
        Program,
        Action,
        EarningRule,
        Tier,
        Event,
        LedgerEntry,
        MemberStanding,
        EventBatchJob,
        Member,
        ApiClient,
        Badge,
        BadgeAward,
        Quest,
        Streak,
        Leaderboard,
    ],
)
def test_every_admin_list_and_page_renders(admin_client, demo, model):
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    obj = model.objects.first()
    if obj is not None:
        page = admin_client.get(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )
        assert page.status_code == 200


def test_the_member_page_shows_tier_history_and_recent_activity(admin_client, demo):
    standing = MemberStanding.objects.order_by("-events_count").first()
    page = admin_client.get(reverse("admin:loyalty_memberstanding_change", args=[standing.pk]))
    content = page.content.decode()
    assert "tier history" in content.lower()
    assert "check_in" in content


def test_saving_a_rule_in_the_admin_publishes_a_new_version(admin_client, demo):
    rule = EarningRule.objects.get(code="check-in-daily")
    url = reverse("admin:loyalty_earningrule_change", args=[rule.pk])
    form = form_fields(admin_client.get(url).content.decode(), containing="code")
    form["points_per_occurrence"] = ["7"]
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(rule.versions.order_by("version").values_list("version", flat=True)) == [1, 2]
    assert rule.versions.get(version=2).definition["points_per_occurrence"] == 7


def test_the_preview_runs_a_dry_run_and_stores_nothing(admin_client, demo):
    events = Event.objects.count()
    url = reverse("admin:loyalty_earningrule_preview")
    # Choosing the action brings a field for each attribute its rules read.
    chosen = admin_client.post(url, {"external_id": "someone", "action": "purchase", "choose": "1"})
    fields = form_fields(chosen.content.decode(), containing="external_id")
    assert fields["external_id"] == ["someone"]
    assert "attribute:amount" in fields
    fields.update({"attribute:amount": ["150.00"], "preview": ["1"]})

    response = admin_client.post(url, fields)

    assert response.status_code == 200
    # Base plus the new-member double, plus the first-purchase badge's bonus.
    assert response.context["outcome"]["points"] == 350
    assert response.context["outcome"]["bonuses"][0]["code"] == "first-purchase"
    assert Event.objects.count() == events
    assert not Member.objects.filter(external_id="someone").exists()


def test_the_preview_names_why_nothing_was_credited(admin_client, demo):
    url = reverse("admin:loyalty_earningrule_preview")
    response = admin_client.post(
        url,
        {
            "external_id": "someone",
            "action": "purchase",
            "attribute:amount": "",
            "more_attributes": "{}",
            "preview": "1",
        },
    )
    page = response.content.decode()
    assert "Amount missing or unusable" in page
    assert "invalid_attribute</td>" not in page


def test_the_member_page_names_the_member_and_shows_local_times(admin_client, demo):
    standing = MemberStanding.objects.select_related("member").first()
    standing.member.display_name = "Ada Lovelace"
    standing.member.save()

    page = admin_client.get(
        reverse("admin:loyalty_memberstanding_change", args=[standing.pk])
    ).content.decode()

    assert f"Ada Lovelace ({standing.member.external_id})" in page
    assert f"standing of {standing.pk}" not in page
    assert "+00:00" not in page  # no raw ISO times in the tables


def test_locking_a_tier_in_the_admin_goes_through_the_service(admin_client, demo):
    standing = MemberStanding.objects.first()
    gold = Tier.objects.get(code="gold")
    url = reverse("admin:loyalty_memberstanding_change", args=[standing.pk])
    assert admin_client.post(url, {"locked_tier": gold.pk}).status_code == 302
    standing.refresh_from_db()
    assert (standing.locked_tier, standing.tier) == (gold, gold)
    assert TierChange.objects.filter(member_id=standing.pk, reason="lock").exists()


def test_ledger_and_events_are_read_only_in_the_admin(admin_client, demo):
    entry = LedgerEntry.objects.first()
    url = reverse("admin:loyalty_ledgerentry_change", args=[entry.pk])
    admin_client.post(url, {"amount": 999999})
    entry.refresh_from_db()
    assert entry.amount != 999999
    assert admin_client.get(reverse("admin:loyalty_ledgerentry_add")).status_code == 403


def test_creating_an_api_client_in_the_admin_shows_the_key_once(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_apiclient_add"),
        {"name": "shop", "scopes": ["members:read"], "is_active": "on"},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    assert any("lk_" in m for m in shown)
    key = next(word for m in shown for word in m.split() if word.startswith("lk_"))
    from accounts.services import api_client_authenticate

    assert api_client_authenticate(key=key) == ApiClient.objects.get(name="shop")
    page = admin_client.get(
        reverse("admin:accounts_apiclient_change", args=[ApiClient.objects.get().pk])
    )
    assert key not in page.content.decode()


def test_the_liability_page_shows_outstanding_points(admin_client, demo):
    page = admin_client.get(reverse("admin:loyalty_program_liability"))
    assert page.status_code == 200
    outstanding = sum(MemberStanding.objects.values_list("points", flat=True))
    assert page.context["report"]["points_outstanding"] == outstanding
    assert str(outstanding) in page.content.decode()


def test_operator_changes_are_kept_with_who_when_and_what(admin_client, admin_user, demo):
    tier = Tier.objects.get(code="gold")
    url = reverse("admin:loyalty_tier_change", args=[tier.pk])
    form = {
        "code": "gold",
        "name": "Gold Plus",
        "position": tier.position,
        "growth_threshold": 2500,
        "window": tier.window,
        "window_days": tier.window_days,
        "grace_days": tier.grace_days,
        "description": "",
        "privileges-TOTAL_FORMS": 0,
        "privileges-INITIAL_FORMS": 0,
    }
    assert admin_client.post(url, form).status_code == 302
    latest = tier.history.first()
    assert latest.history_user == admin_user
    delta = latest.diff_against(latest.prev_record)
    assert {c.field: (c.old, c.new) for c in delta.changes} == {
        "name": ("Gold", "Gold Plus"),
        "growth_threshold": (2000, 2500),
    }
    page = admin_client.get(reverse("admin:loyalty_program_audit"))
    assert page.status_code == 200
    assert "growth_threshold: 2000 → 2500" in page.content.decode()
    assert (
        admin_client.get(reverse("admin:loyalty_tier_history", args=[tier.pk])).status_code == 200
    )


def test_a_badge_saved_in_the_admin_is_back_filled(
    admin_client, demo, django_capture_on_commit_callbacks
):
    from loyalty.models import ActionTally

    most = ActionTally.objects.filter(action__code="check_in").order_by("-count").first()
    form = {
        "code": "regular",
        "name": "Regular",
        "level": "",
        "criterion": "action_count",
        "action": most.action_id,
        "threshold": most.count,
        "bonus_growth": 0,
        "bonus_points": 0,
        "is_active": "on",
        "position": 100,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:loyalty_badge_add"), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert BadgeAward.objects.filter(
        badge__code="regular", member_id=most.member_id, backfilled=True
    ).exists()


def test_grant_and_standings_pages(admin_client, demo):
    badge = Badge.objects.get(code="onboarded")
    member = Member.objects.first()
    admin_client.post(
        reverse("admin:loyalty_badge_grant", args=[badge.pk]), {"external_ids": member.external_id}
    )
    assert BadgeAward.objects.filter(badge=badge, member=member).exists()
    board = Leaderboard.objects.get(code="weekly-growth")
    page = admin_client.get(reverse("admin:loyalty_leaderboard_standings", args=[board.pk]))
    assert page.status_code == 200


def test_webhook_and_activity_admin(admin_client, demo):
    from loyalty.models import WebhookEndpoint

    response = admin_client.post(
        reverse("admin:loyalty_webhookendpoint_add"),
        {
            "name": "host",
            "url": "https://host.example.com/hooks",
            "event_types": ["badge.awarded"],
            "is_active": "on",
        },
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert any(endpoint.secret in str(m) for m in response.context["messages"])
    for name in (
        "webhookendpoint",
        "webhookdelivery",
        "memberactivity",
        "activitytransition",
        "gift",
        "giftgrant",
        "keyaction",
    ):
        assert admin_client.get(reverse(f"admin:loyalty_{name}_changelist")).status_code == 200, (
            name
        )


def test_a_key_action_saved_in_the_admin_applies_to_the_next_event(admin_client, demo):
    from loyalty.engine.events import EventInput, record_event
    from loyalty.models import Action, MemberActivity

    review = Action.objects.get(code="review")
    # After the demo's own key action (the daily check-in, from the simulation's start).
    since = timezone.localtime() - timedelta(minutes=1)
    response = admin_client.post(
        reverse("admin:loyalty_keyaction_add"),
        {
            "action": review.pk,
            "min_per_day": 1,
            "effective_from_0": since.date().isoformat(),
            "effective_from_1": since.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302, response.content
    record_event(
        client=None,
        event=EventInput(external_id="newcomer", action="review", idempotency_key="kr"),
    )
    activity = MemberActivity.objects.get(member__external_id="newcomer")
    assert activity.last_key_day is not None


@pytest.mark.parametrize(
    ("url", "filled", "field", "message"),
    [
        (
            "admin:rewards_reward_add",
            {"code": "c", "name": "C", "kind": "coupon", "cost_points": "100"},
            "pool",
            "A coupon reward needs a coupon pool to hand out its codes from.",
        ),
        (
            "admin:rewards_reward_add",
            {"code": "c", "name": "C", "kind": "digital", "cost_points": "0"},
            "cost_points",
            "A reward costs at least 1 point.",
        ),
        (
            "admin:loyalty_tier_add",
            {
                "code": "vip",
                "name": "VIP",
                "position": "9",
                "growth_threshold": "1",
                "window": "rolling_days",
            },
            "window_days",
            "A rolling window needs its number of days.",
        ),
    ],
)
def test_a_constraint_an_operator_trips_reads_plainly_on_its_field(
    admin_client, demo, url, filled, field, message
):
    page = admin_client.get(reverse(url)).content.decode()
    fields = form_fields(page, containing="code")
    fields.update({name: [value] for name, value in filled.items()})

    response = admin_client.post(reverse(url), fields)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {field: [message]}
    assert "Constraint" not in response.content.decode()


def test_a_rule_that_ends_before_it_starts_is_refused_on_its_end(admin_client, demo):
    url = reverse("admin:loyalty_earningrule_add")
    fields = form_fields(admin_client.get(url).content.decode(), containing="code")
    fields.update(
        code=["window"],
        name=["Window"],
        action=[str(Action.objects.get(code="purchase").pk)],
        valid_from_0=["2026-12-10"],
        valid_from_1=["00:00:00"],
        valid_until_0=["2026-12-01"],
        valid_until_1=["00:00:00"],
    )

    response = admin_client.post(url, fields)

    assert response.context["adminform"].form.errors == {
        "valid_until": ["The rule must end after it starts."]
    }


def test_a_rewards_payload_is_written_as_key_value_lines(admin_client, demo):
    from rewards.models import Reward

    url = reverse("admin:rewards_reward_add")
    fields = form_fields(admin_client.get(url).content.decode(), containing="code")
    fields.update(
        code=["ebook"],
        name=["E-book"],
        kind=["digital"],
        cost_points=["100"],
        payload=["url: https://example.com/book.pdf\ndays: 30"],
    )

    response = admin_client.post(url, fields)

    assert response.status_code == 302, response.context["adminform"].form.errors
    reward = Reward.objects.get(code="ebook")
    assert reward.payload == {"url": "https://example.com/book.pdf", "days": 30}
    page = admin_client.get(reverse("admin:rewards_reward_change", args=[reward.pk]))
    assert "url: https://example.com/book.pdf" in page.content.decode()
