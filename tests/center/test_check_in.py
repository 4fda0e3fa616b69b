"""Checking in from the member center: the action goes through the engine as a host app's event
does, once a day, and the calendar and the streak show it; only actions the program opens to
members can be posted, and only with the page's CSRF token."""

import pytest
from django.test import Client

from accounts.models import ApiClient, Member
from accounts.scopes import SCOPES
from accounts.services import api_client_create, member_link_issue
from loyalty.models import Action, Event, MemberStanding, Streak
from loyalty.periods import local_date
from loyalty.program.compiled import program_changed
from tests.factories import MemberFactory, make_rule

pytestmark = pytest.mark.django_db


def signed_in(member: Member, *, csrf: bool = False) -> Client:
    client = ApiClient.objects.first() or api_client_create(name="app", scopes=list(SCOPES))[0]
    browser = Client(enforce_csrf_checks=csrf)
    token = member_link_issue(member=member, client=client).token
    assert browser.get("/m/enter", {"t": token}).status_code == 302
    return browser


@pytest.fixture
def check_in_program(db):
    make_rule("check_in", code="daily", points_per_occurrence=5, growth_per_occurrence=1)
    action = Action.objects.get(code="check_in")
    action.in_member_center = True
    action.save()
    Streak.objects.create(code="daily-streak", name="Daily streak", action=action)
    program_changed()
    return action


def test_a_member_checks_in_once_a_day_through_the_engine(check_in_program):
    ann = MemberFactory(external_id="ann")
    browser = signed_in(ann)
    page = browser.get("/m/check-in/").content.decode()
    assert 'id="do-check_in"' in page and "0 days in a row" in page

    done = browser.post("/m/check-in/check_in", follow=True).content.decode()
    assert "You earned 5 points and 1 growth." in done
    assert 'id="done-check_in"' in done and "1 day in a row" in done
    today = local_date(Event.objects.get().occurred_at).day
    assert f'aria-label="{today}, done"' in done

    again = browser.post("/m/check-in/check_in", follow=True).content.decode()
    assert "Already done today." in again
    assert Event.objects.count() == 1
    assert MemberStanding.objects.get(member=ann).points == 5


def test_only_open_actions_with_the_pages_token_and_a_session(check_in_program):
    make_rule("purchase", code="buy", points_per_occurrence=100)
    ann = MemberFactory(external_id="ann")
    browser = signed_in(ann)
    assert browser.post("/m/check-in/purchase").status_code == 404  # not open to members
    assert Client().post("/m/check-in/check_in").status_code == 403  # no session
    strict = signed_in(ann, csrf=True)
    assert strict.post("/m/check-in/check_in").status_code == 403  # no CSRF token
    assert not Event.objects.exists()
