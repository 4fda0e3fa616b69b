"""Invite friends (邀请有礼) in the member center: the member's code and link, how it works,
their friends and where each stands; a new code on request."""

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from core.errors import DomainError
from loyalty.center.access import member_page
from loyalty.center.nav import NavPage
from loyalty.program.compiled import compiled_program, program_settings
from rewards.referrals.codes import invite_code_regenerate
from rewards.referrals.program import referral_rules
from rewards.referrals.selectors import invitees_of, masked_name, referral_summary


def referrals_on() -> bool:
    return referral_rules(compiled_program().revision).is_active


NAV = NavPage("invite", "member-invite:invite", _("Invite"), shown=referrals_on)


@require_GET
@member_page
def invite(request: HttpRequest) -> HttpResponse:
    if not referrals_on():
        raise Http404
    friends = [
        {"name": masked_name(referral.invitee.display_name), "referral": referral}
        for referral in invitees_of(member=request.member)[:100]
    ]
    return render(
        request,
        "member/invite.html",
        {
            "program": program_settings(),
            "summary": referral_summary(member=request.member),
            "friends": friends,
            "page": "invite",
        },
    )


@require_POST
@member_page
def new_code(request: HttpRequest) -> HttpResponse:
    if not referrals_on():
        raise Http404
    try:
        code = invite_code_regenerate(member=request.member)
    except DomainError as refused:
        messages.error(request, str(refused.message))
        return redirect("member-invite:invite")
    messages.success(
        request,
        gettext("Your new code is %(code)s; the old one no longer works.") % {"code": code.code},
    )
    return redirect("member-invite:invite")


app_name = "member-invite"
urlpatterns = [
    path("", invite, name="invite"),
    path("new-code/", new_code, name="new-code"),
]
