"""Opening the member center: the host app's server mints a link through the API; the link is
exchanged once for a session of the member's own and leaves the address bar; a used, expired
or forged link is refused, and one member's session never shows another's data."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiClient, Member, MemberLinkUse
from accounts.services import member_link_issue, member_links_forget
from tests.factories import give_points, make_tiers

pytestmark = pytest.mark.django_db(transaction=True)


def minted_url(api, external_id: str, **body) -> str:
    response = api.post(f"/api/v1/members/{external_id}/token", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["url_expires_at"] and answer["token"]
    return answer["url"]


def opened(url: str) -> tuple[Client, object]:
    """A browser of its own opening the link (the address's path and query only)."""
    browser = Client()
    parts = urlsplit(url)
    response = browser.get(parts.path, parse_qs(parts.query))
    return browser, response


def test_a_minted_link_opens_the_members_own_page_once(api):
    make_tiers(("member", 0), ("silver", 1000))
    give_points("ann", 250)
    Member.objects.filter(external_id="ann").update(display_name="Ann")
    url = minted_url(api, "ann")
    assert urlsplit(url).path == "/m/enter"

    browser, response = opened(url)
    assert response.status_code == 302 and response["Location"] == "/m/"  # the token leaves
    page = browser.get("/m/")
    text = page.content.decode()
    assert page.status_code == 200 and "Hello, Ann" in text
    assert '<span id="points">250</span>' in text
    assert "frame-ancestors 'self'" in page["Content-Security-Policy"]
    assert "no-store" in page["Cache-Control"]

    _again, reused = opened(url)  # the same link, a second time
    assert reused.status_code == 403
    assert "used already, or it has expired" in reused.content.decode()


def test_each_session_shows_its_own_member_only(api):
    give_points("ann", 250)
    give_points("bob", 40)
    ann, _ = opened(minted_url(api, "ann"))
    bob, _ = opened(minted_url(api, "bob"))
    assert '<span id="points">250</span>' in ann.get("/m/").content.decode()
    bobs = bob.get("/m/").content.decode()
    assert '<span id="points">40</span>' in bobs and "250" not in bobs
    assert Client().get("/m/").status_code == 403  # no session, no page


def test_expired_forged_and_revoked_links_are_refused(api, settings):
    give_points("ann", 10)
    member = Member.objects.get(external_id="ann")
    client = ApiClient.objects.get()
    expired = member_link_issue(member=member, client=client, ttl_seconds=1)
    MemberLinkUse.objects.all().delete()
    settings.LOYALTY_MEMBER_LINK_TTL = 120
    stale = expired.token
    forged = stale[:-3] + ("aaa" if not stale.endswith("aaa") else "bbb")
    for token in (forged, "", "nonsense"):
        assert Client().get("/m/enter", {"t": token}).status_code == 403
    fresh = member_link_issue(member=member, client=client)
    ApiClient.objects.filter(pk=client.pk).update(is_active=False)  # the key revoked
    assert Client().get("/m/enter", {"t": fresh.token}).status_code == 403
    assert not MemberLinkUse.objects.exists()


def test_a_link_names_the_pages_language(api):
    give_points("ann", 10)
    browser, _ = opened(minted_url(api, "ann", language="zh-hans"))
    page = browser.get("/m/").content.decode()
    assert '<html lang="zh-hans">' in page and "积分" in page


def test_the_uses_of_expired_links_are_forgotten(api):
    give_points("ann", 10)
    opened(minted_url(api, "ann"))
    assert MemberLinkUse.objects.count() == 1
    assert member_links_forget() == 0
    assert member_links_forget(now=timezone.now() + timedelta(minutes=5)) == 1


def test_the_members_own_language_when_the_link_names_none(api):
    give_points("ann", 10)
    assert api.put("/api/v1/members/ann", json={"language": "zh-hans"}).status_code == 200
    browser, _ = opened(minted_url(api, "ann"))
    assert '<html lang="zh-hans">' in browser.get("/m/").content.decode()
    browser, _ = opened(minted_url(api, "ann", language="en"))  # the link's wins
    assert '<html lang="en">' in browser.get("/m/").content.decode()
    assert api.put("/api/v1/members/ann", json={"language": "fr"}).status_code == 400
