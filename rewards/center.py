"""The points mall (积分商城) in the member center: the catalog with the member's own price and
whether they can redeem now, a confirmation step, and their redemptions with codes. Redeeming
goes through ``redeem``, as the API's does."""

import uuid

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import DomainError
from loyalty.center.access import member_page
from loyalty.center.nav import NavPage
from loyalty.program.compiled import program_settings
from loyalty.selectors import member_standing
from rewards.models import Redemption
from rewards.services.catalog import catalog_for, offer_for
from rewards.services.redemptions import redeem

NAV = NavPage("mall", "member-mall:catalog", _("Mall"))


@require_GET
@member_page
def catalog(request: HttpRequest) -> HttpResponse:
    offers = catalog_for(member=request.member)
    return render(
        request,
        "member/mall.html",
        {
            "program": program_settings(),
            "offers": offers,
            "points": member_standing(request.member).points,
            "page": "mall",
        },
    )


@require_http_methods(["GET", "POST"])
@member_page
def confirm(request: HttpRequest, code: str) -> HttpResponse:
    """Show the reward, the price and the balance after; redeem on confirmation. The form's
    key makes a second press of the same form answer as the first."""
    offer = offer_for(member=request.member, code=code)
    if offer is None:
        raise Http404
    if request.method == "POST":
        key = request.POST.get("key", "")[:64]
        try:
            result = redeem(
                member=request.member, reward_code=code, idempotency_key=f"member-center:{key}"
            )
        except DomainError as refused:
            messages.error(request, str(refused.message))
            return redirect("member-mall:catalog")
        done = result.redemption
        if done.coupon_code:
            messages.success(
                request,
                gettext("Redeemed! Your code: %(code)s") % {"code": done.coupon_code},
            )
        else:
            messages.success(request, gettext("Redeemed!"))
        return redirect("member-mall:redemptions")
    points = member_standing(request.member).points
    return render(
        request,
        "member/mall_confirm.html",
        {
            "program": program_settings(),
            "offer": offer,
            "points": points,
            "after": points - offer.price,
            "key": uuid.uuid4().hex,
            "page": "mall",
        },
    )


@require_GET
@member_page
def redemptions(request: HttpRequest) -> HttpResponse:
    mine = (
        Redemption.objects.filter(member=request.member)
        .select_related("reward")
        .order_by("-created_at")[:100]
    )
    return render(
        request,
        "member/mall_redemptions.html",
        {"program": program_settings(), "redemptions": mine, "page": "mall"},
    )


app_name = "member-mall"
urlpatterns = [
    path("", catalog, name="catalog"),
    path("mine/", redemptions, name="redemptions"),
    path("<slug:code>/", confirm, name="confirm"),
]
