"""The member center's figure: each page's server time for a member with a long history, and
what a page weighs before images (its HTML, the style sheet and htmx, uncompressed), on the
bench data
(``python -m bench --only member_center``). Rendered in process, through the whole Django
stack, as a member who opened a link."""

from pathlib import Path

from django.test import Client

from bench.console import render_times

PAGES = {
    "home": "/m/",
    "check-in": "/m/check-in/",
    "tasks": "/m/tasks/",
    "badges": "/m/badges/",
    "leaderboards": "/m/leaderboards/",
    "mall": "/m/mall/",
    "history": "/m/history/",
    "invite": "/m/invite/",
}
STATIC = Path(__file__).resolve().parent.parent / "loyalty/static/loyalty"
# What every page loads besides its HTML (no images): the style sheet and htmx.
ASSETS = (STATIC / "member.css", STATIC / "vendor/htmx/htmx.min.js")


def page_times(*, samples: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Milliseconds of server time for each page, and each page's bytes before images."""
    from accounts.models import ApiClient, Member
    from accounts.services import api_client_create, member_link_issue
    from bench.generate import HEAVY_MEMBER
    from loyalty.models import Action

    Action.objects.filter(code="check_in").update(in_member_center=True)
    member = Member.objects.get(external_id=HEAVY_MEMBER)
    minter = ApiClient.objects.filter(is_active=True).first()
    if minter is None:
        minter, _key = api_client_create(name="bench-member-center", scopes=["members:token"])
    client = Client()
    token = member_link_issue(member=member, client=minter).token
    assert client.get("/m/enter", {"t": token}).status_code == 302
    assets = sum(asset.stat().st_size for asset in ASSETS)
    times, sizes = render_times(client, PAGES, samples=samples)
    return times, {name: size + assets for name, size in sizes.items()}
