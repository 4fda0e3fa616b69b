"""The tasks page and the honour wall show the session member's own quests and badges."""

import re
from urllib.parse import urlsplit

import pytest

from loyalty.engine.events import EventInput, record_event
from loyalty.models import Action
from tests.center.test_check_in import signed_in
from tests.factories import MemberFactory, make_badge, make_quest, make_rule

pytestmark = pytest.mark.django_db


def buy(member: str, key: str):
    record_event(
        client=None,
        event=EventInput(external_id=member, action="purchase", idempotency_key=key),
    )


def test_tasks_show_progress_and_rewards_and_the_wall_shows_badges(db):
    make_rule("purchase", code="buy", points_per_occurrence=10)
    make_quest("first-steps", "onboarding", [("purchase", 2)], reward_points=50)
    purchase = Action.objects.get(code="purchase")
    make_badge("first-buy", "action_count", action=purchase, threshold=1, level="bronze")
    make_badge("big-spender", "action_count", action=purchase, threshold=5)
    make_badge("secret-one", "action_count", action=purchase, threshold=3, secret=True)
    ann = MemberFactory(external_id="ann", display_name="Ann")
    MemberFactory(external_id="bob")
    buy("ann", "a1")
    buy("bob", "b1")
    buy("bob", "b2")
    browser = signed_in(ann)

    tasks = browser.get("/m/tasks/").content.decode()
    assert "Getting started" in tasks and 'id="quest-first-steps"' in tasks
    assert 'data-done="1">1 of 2' in tasks and "50 points" in tasks
    assert "mc-complete" not in tasks  # bob completed it, not ann

    wall = browser.get("/m/badges/").content.decode()
    assert 'id="badge-first-buy"' in wall and "Bronze" in wall
    assert 'id="locked-big-spender"' in wall and "1 of 5" in wall
    assert "secret-one" not in wall  # a secret badge shows once earned


def test_the_leaderboard_shows_my_rank_and_others_by_name_and_i_can_leave_it(db):
    from django.test import Client

    from accounts.models import Member
    from tests.factories import make_leaderboard

    make_rule("purchase", code="buy", points_per_occurrence=10)
    make_leaderboard("top-buyers", "points", "all_time")
    ann = MemberFactory(external_id="ann", display_name="Ann")
    MemberFactory(external_id="bob-123", display_name="")
    for key in ("b1", "b2"):
        buy("bob-123", key)
    buy("ann", "a1")
    browser = signed_in(ann)
    page = browser.get("/m/leaderboards/").content.decode()
    assert "You are <span>#2</span> of 2" in page
    assert "bo***" in page and "bob-123" not in page  # another member: masked, no id
    assert 'class="mc-me"' in page

    browser.post("/m/leaderboards/opt", {"leave": "1"})
    assert Member.objects.get(pk=ann.pk).leaderboard_opt_out
    page = browser.get("/m/leaderboards/").content.decode()
    assert "You do not appear on leaderboards." in page and 'class="mc-me"' not in page
    browser.post("/m/leaderboards/opt", {"leave": "0"})
    assert "#2" in browser.get("/m/leaderboards/").content.decode()
    assert Client().post("/m/leaderboards/opt", {"leave": "1"}).status_code == 403


def test_the_operators_brand_and_a_hosts_own_template(db, settings, tmp_path):
    from django.core.exceptions import ValidationError

    from loyalty.program.compiled import program_settings

    program = program_settings()
    program.name, program.brand_colour = "Tea House", "#aa3300"
    program.logo_url = "https://cdn.example.com/logo.png"
    program.save()
    ann = MemberFactory(external_id="ann")
    browser = signed_in(ann)
    page = browser.get("/m/").content.decode()
    assert "--mc-brand: #aa3300;" in page and "Tea House" in page
    assert 'src="https://cdn.example.com/logo.png"' in page

    program.brand_colour = "red; } body { display: none"
    with pytest.raises(ValidationError):
        program.full_clean()  # nothing but #rrggbb reaches the style sheet

    (tmp_path / "member").mkdir()
    (tmp_path / "member" / "home.html").write_text(
        '{% extends "member/base.html" %}{% block content %}<p id="ours">Our own home</p>'
        "{% endblock %}"
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    page = browser.get("/m/").content.decode()
    assert '<p id="ours">Our own home</p>' in page and "Tea House" in page


def test_a_member_shares_a_badge_on_a_public_page_and_stops(db):
    from django.test import Client

    make_rule("purchase", code="buy", points_per_occurrence=10)
    purchase = Action.objects.get(code="purchase")
    make_badge("first-buy", "action_count", action=purchase, threshold=1, level="gold")
    make_badge("big-spender", "action_count", action=purchase, threshold=5)
    ann = MemberFactory(external_id="ann-secret-id", display_name="Ann")
    buy("ann-secret-id", "a1")
    browser = signed_in(ann)

    wall = browser.post("/m/badges/first-buy/sharing", {"share": "1"}, follow=True)
    url = re.search(r'class="mc-share-url" readonly value="([^"]+)"', wall.content.decode())[1]
    public = Client().get(urlsplit(url).path)  # anyone, no session
    text = public.content.decode()
    assert public.status_code == 200 and "Ann earned First Buy" in text and "Gold" in text
    assert "ann-secret-id" not in text and "mc-nav" not in text  # the badge and name only
    assert browser.post("/m/badges/big-spender/sharing", {"share": "1"}).status_code == 404

    browser.post("/m/badges/first-buy/sharing", {"share": "0"})
    assert Client().get(urlsplit(url).path).status_code == 404


def test_below_the_top_a_member_sees_their_neighbours(db):
    from tests.factories import make_leaderboard

    make_rule("purchase", code="buy", points_per_occurrence=10)
    make_leaderboard("top-buyers", "points", "all_time", size=2)
    for name, times in (("a", 5), ("b", 4), ("c", 3), ("d", 2), ("e", 1)):
        MemberFactory(external_id=name, display_name=name.upper())
        for i in range(times):
            buy(name, f"{name}{i}")
    page = signed_in(MemberFactory._meta.model.objects.get(external_id="d"))
    text = page.get("/m/leaderboards/").content.decode()
    around = text.split('id="around"')[1].split("</ol>")[0]
    assert [int(r) for r in re.findall(r'mc-rank">(\d+)<', around)] == [2, 3, 4, 5]
    assert 'class="mc-me"><span class="mc-rank">4<' in around
