"""Who is looking at the member center: the member a link opened a session for, and nobody
else. Every page is the session member's own; a request without one gets the closed page."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt

from accounts.models import Member

SESSION_KEY = "member_center"


def session_member(request: HttpRequest) -> Member | None:
    member_id = request.session.get(SESSION_KEY)
    return Member.objects.filter(pk=member_id).first() if member_id else None


def framed(response: HttpResponse) -> HttpResponse:
    """The pages may be framed by the host app's own pages only (a setting), never by others;
    and they are the member's own, never kept by a shared cache."""
    response["Content-Security-Policy"] = (
        f"frame-ancestors {settings.LOYALTY_MEMBER_CENTER_FRAME_ANCESTORS}"
    )
    response["Cache-Control"] = "private, no-store"
    return response


def closed(request: HttpRequest, reason: str) -> HttpResponse:
    return framed(render(request, "member/closed.html", {"reason": reason}, status=403))


def member_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page for the session's member (``request.member``)."""

    @wraps(view)
    @xframe_options_exempt
    def page(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        member = session_member(request)
        if member is None:
            return closed(request, "no_session")
        request.member = member
        return framed(view(request, *args, **kwargs))

    return page
