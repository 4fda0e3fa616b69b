"""The member center's bottom navigation: the loyalty pages, and those other apps register
from their ``ready()`` (the rewards catalog's points mall)."""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class NavPage:
    key: str  # the page's ``page`` in its template context: marks the current one
    url_name: str
    label: str | Promise
    # Shown only while this says so (a page of a feature an operator can switch off).
    shown: Callable[[], bool] | None = None


PAGES = [
    NavPage("home", "member-center:home", _("Home")),
    NavPage("check_in", "member-center:check-in", _("Check in")),
    NavPage("tasks", "member-center:tasks", _("Tasks")),
    NavPage("leaderboards", "member-center:leaderboards", _("Ranks")),
]


def register_page(page: NavPage, *, before: str | None = None) -> None:
    """Add a page to the navigation (once), before the page keyed ``before`` or last."""
    if any(existing.key == page.key for existing in PAGES):
        return
    keys = [existing.key for existing in PAGES]
    PAGES.insert(keys.index(before) if before in keys else len(PAGES), page)


def member_nav(request: HttpRequest) -> dict:
    """A context processor: the navigation, on the member center's pages only."""
    if not request.path.startswith("/m/"):
        return {}
    return {"member_nav": [page for page in PAGES if page.shown is None or page.shown()]}
