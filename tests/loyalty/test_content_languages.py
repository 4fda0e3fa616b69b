"""Program content members read, in more than one language: operators give a tier, badge,
quest or reward its name and description in each language; members read them in theirs."""

import pytest
from django.urls import reverse

from loyalty.models import Badge, Tier
from loyalty.program.program_file import program_export, program_load
from tests.factories import ActionFactory, make_badge, make_reward, make_tiers

pytestmark = pytest.mark.django_db


def tier_form(tier, **changes) -> dict:
    return {
        "code": tier.code,
        "name": tier.name,
        "position": tier.position,
        "growth_threshold": tier.growth_threshold,
        "window": tier.window,
        "window_days": tier.window_days or "",
        "grace_days": tier.grace_days,
        "description": tier.description,
        "privileges-TOTAL_FORMS": 0,
        "privileges-INITIAL_FORMS": 0,
        **changes,
    }


def test_an_operator_names_a_tier_in_chinese_and_members_read_it_in_their_language(
    admin_client, api
):
    (base,) = make_tiers(("member", 0))
    url = reverse("admin:loyalty_tier_change", args=[base.pk])
    form = admin_client.get(url).content.decode()
    assert "Name (简体中文)" in form and "Description (简体中文)" in form

    # The program's language is English: the other language's fields are the translations.
    response = admin_client.post(
        url, tier_form(base, translations_0="普通会员", translations_1="注册即得")
    )
    assert response.status_code == 302
    base.refresh_from_db()
    assert base.translations == {"zh-hans": {"name": "普通会员", "description": "注册即得"}}
    change = base.history.first().diff_against(base.history.first().prev_record)
    assert [c.field for c in change.changes] == ["translations"]  # kept in the audit log

    api.post(
        "/api/v1/events",
        json={"external_id": "m1", "action": "check_in", "idempotency_key": "k1"},
    )
    chinese = api.get("/api/v1/members/m1", headers={"Accept-Language": "zh-hans"}).json()
    english = api.get("/api/v1/members/m1", headers={"Accept-Language": "en"}).json()
    assert chinese["tier"]["name"] == "普通会员"
    assert english["tier"]["name"] == "Member"


def test_blank_translations_fall_back_to_the_programs_language(admin_client):
    (base,) = make_tiers(("member", 0))
    url = reverse("admin:loyalty_tier_change", args=[base.pk])
    admin_client.post(url, tier_form(base, translations_0="普通会员", translations_1=""))
    base.refresh_from_db()
    assert base.translations == {"zh-hans": {"name": "普通会员"}}
    assert base.translated("description", "zh-hans") == base.description
    assert base.translated("name", "zh-hans") == "普通会员"
    assert base.translated("name", "en") == "Member"


def test_rewards_are_offered_under_their_translated_names(api):
    make_reward("mug", cost_points=10, translations={"zh-hans": {"name": "马克杯"}})
    english = api.get("/api/v1/rewards").json()
    chinese = api.get("/api/v1/rewards", headers={"Accept-Language": "zh-hans"}).json()
    names = lambda page: [offer["name"] for offer in page]  # noqa: E731
    assert names(english) == ["Mug"] and names(chinese) == ["马克杯"]


def test_the_program_file_carries_translations_both_ways():
    make_tiers(("member", 0))
    Tier.objects.update(translations={"zh-hans": {"name": "普通会员"}})
    make_badge(
        "first-steps",
        "action_count",
        action=ActionFactory(code="check_in"),
        threshold=1,
        translations={"zh-hans": {"name": "第一步"}},
    )
    exported = program_export()
    assert exported["tiers"][0]["translations"] == {"zh-hans": {"name": "普通会员"}}
    Tier.objects.update(translations={})
    Badge.objects.update(translations={})
    program_load(data=exported)
    assert Tier.objects.get().translations == {"zh-hans": {"name": "普通会员"}}
    assert Badge.objects.get().translations == {"zh-hans": {"name": "第一步"}}
