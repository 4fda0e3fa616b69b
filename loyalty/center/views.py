"""The member center's pages (docs/member-center.md). Thin: the session's member, one selector
or service, a template."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from accounts.services import member_link_redeem
from loyalty.center.access import SESSION_KEY, closed, framed, member_page
from loyalty.program.compiled import program_settings
from loyalty.selectors import member_summary


@require_GET
@xframe_options_exempt
def enter(request: HttpRequest) -> HttpResponse:
    """Exchange a link minted by the host app for a session of the member's own, once; then
    show the home page at an address without the link's token."""
    link = member_link_redeem(token=request.GET.get("t", ""))
    if link is None:
        return closed(request, "link")
    request.session.flush()  # a new session: nothing of whoever used this browser before
    request.session[SESSION_KEY] = link.member.pk
    request.session.set_expiry(settings.LOYALTY_MEMBER_SESSION_SECONDS)
    response = redirect("member-center:home")
    if link.language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            link.language,
            max_age=settings.LOYALTY_MEMBER_SESSION_SECONDS,
            samesite=settings.SESSION_COOKIE_SAMESITE,
            secure=settings.SESSION_COOKIE_SECURE,
        )
    return framed(response)


@require_GET
@member_page
def home(request: HttpRequest) -> HttpResponse:
    """The growth card: tier, the way to the next, privileges, points and what expires soon."""
    summary = member_summary(request.member)
    progress = None
    if summary["next_tier"]:
        threshold = summary["next_tier"]["growth_threshold"] or 1
        progress = min(100, int(100 * summary["next_tier"]["qualifying_growth"] / threshold))
    return render(
        request,
        "member/home.html",
        {
            "program": program_settings(),
            "member": request.member,
            "summary": summary,
            "progress": progress,
            "expiring": summary["expiring"][0] if summary["expiring"] else None,
            "page": "home",
        },
    )
