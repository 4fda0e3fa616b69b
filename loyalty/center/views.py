"""The member center's pages (docs/member-center.md). Thin: the session's member, one selector
or service, a template."""

import calendar

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Member
from accounts.services import member_link_redeem, member_upsert
from loyalty.center.access import SESSION_KEY, closed, framed, member_page
from loyalty.engine.events import EventInput, record_event
from loyalty.gamification.badges import badge_share, badge_shared, badge_unshare
from loyalty.gamification.leaderboards import leaderboard_view, resolve_period
from loyalty.models import Action, Badge, BadgeShare, Currency, EntryKind, Leaderboard
from loyalty.periods import local_date
from loyalty.program.compiled import program_settings
from loyalty.segments.filters import member_in_segment
from loyalty.selectors import (
    member_badges,
    member_check_ins,
    member_ledger,
    member_quests,
    member_summary,
)


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
    # The link's language, else the member's own setting, else (no cookie) their browser's.
    if language := link.language or link.member.language:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
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


@require_GET
@member_page
def check_in(request: HttpRequest) -> HttpResponse:
    """This month's calendar and the streaks of the actions members do from here."""
    actions = member_check_ins(request.member)
    for action in actions:
        weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(
            action["month"].year, action["month"].month
        )
        action["weeks"] = [
            [
                {
                    "day": day,
                    "in_month": day.month == action["month"].month,
                    "done": day in action["days"],
                }
                for day in week
            ]
            for week in weeks
        ]
    return render(
        request,
        "member/check_in.html",
        {"program": program_settings(), "actions": actions, "page": "check_in"},
    )


@require_POST
@member_page
def check_in_post(request: HttpRequest, code: str) -> HttpResponse:
    """Do the action now, through the engine as the host app's events are: once a day (the
    key names the day, so a second press answers as the first)."""
    if not Action.objects.filter(code=code, is_active=True, in_member_center=True).exists():
        raise Http404
    today = local_date(timezone.now())
    result = record_event(
        client=None,
        event=EventInput(
            external_id=request.member.external_id,
            action=code,
            idempotency_key=f"member-center:{request.member.pk}:{code}:{today.isoformat()}",
        ),
    )
    outcome = result.outcome
    if result.replayed:
        messages.info(request, gettext("Already done today. Come back tomorrow!"))
    elif outcome["points"] or outcome["growth"]:
        messages.success(
            request,
            gettext("Done! You earned %(points)s points and %(growth)s growth.")
            % {"points": outcome["points"], "growth": outcome["growth"]},
        )
    else:
        messages.success(request, gettext("Done!"))
    return redirect("member-center:check-in")


@require_GET
@member_page
def tasks(request: HttpRequest) -> HttpResponse:
    """The onboarding checklist and the daily, weekly and after-a-return quests, with progress
    and rewards; the quests a segment is kept for show to its members only."""
    member = request.member
    quests = member_quests(member, in_segment=lambda pk: member_in_segment(pk, member))
    actions = {action.code: action.name for action in Action.objects.all()}
    for quest in quests:
        for step in quest["steps"]:
            step["name"] = actions.get(step["action"], step["action"])
    groups = [
        (gettext("Getting started"), [q for q in quests if q["scope"] == "onboarding"]),
        (gettext("Today"), [q for q in quests if q["scope"] == "daily"]),
        (gettext("This week"), [q for q in quests if q["scope"] == "weekly"]),
        (gettext("Welcome back"), [q for q in quests if q["scope"] == "return"]),
    ]
    return render(
        request,
        "member/tasks.html",
        {
            "program": program_settings(),
            "groups": [(title, items) for title, items in groups if items],
            "page": "tasks",
        },
    )


@require_POST
@member_page
def badge_sharing(request: HttpRequest, code: str) -> HttpResponse:
    """Share a badge the member holds (a public page), or stop sharing it."""
    if request.POST.get("share") == "1":
        if badge_share(member_id=request.member.pk, badge_code=code) is None:
            raise Http404
        messages.success(request, gettext("Shared: anyone with the link sees this badge."))
    else:
        badge_unshare(member_id=request.member.pk, badge_code=code)
        messages.success(request, gettext("No longer shared."))
    return redirect("member-center:badges")


@require_GET
@xframe_options_exempt
def shared_badge(request: HttpRequest, slug: str) -> HttpResponse:
    """A badge a member shares: the badge and their display name, nothing else; public."""
    share = badge_shared(slug)
    if share is None:
        raise Http404
    return framed(
        render(
            request,
            "member/shared_badge.html",
            {
                "program": program_settings(),
                "badge": share.badge,
                "level": dict(Badge.Level.choices).get(share.badge.level, ""),
                "name": share.member.display_name,
            },
        )
    )


@require_GET
@member_page
def badges(request: HttpRequest) -> HttpResponse:
    """The honour wall: badges earned, with level and date, and the others greyed with their
    progress; a secret badge shows once earned."""
    found = member_badges(request.member)
    levels = dict(Badge.Level.choices)
    for badge in [*found["earned"], *found["in_progress"]]:
        badge["level_name"] = levels.get(badge["level"], "") if badge["level"] else ""
    shared = dict(
        BadgeShare.objects.filter(member=request.member).values_list("badge__code", "slug")
    )
    for badge in found["earned"]:
        if slug := shared.get(badge["code"]):
            badge["share_url"] = request.build_absolute_uri(
                reverse("member-center:shared-badge", args=[slug])
            )
    return render(
        request,
        "member/badges.html",
        {"program": program_settings(), "badges": found, "page": "badges"},
    )


def _shown_name(member: Member | None, rank: int) -> str:
    """Another member as a board shows them: their display name, else a masked id."""
    if member is None:
        return gettext("Member %(rank)s") % {"rank": rank}
    if member.display_name:
        return member.display_name
    return f"{member.external_id[:2]}***"


@require_GET
@member_page
def leaderboards(request: HttpRequest) -> HttpResponse:
    """A board's top, the member's rank, neighbours and percentile, this period or the one
    before; the member can leave every board (and come back)."""
    boards = list(Leaderboard.objects.filter(is_active=True).order_by("code"))
    board = next((b for b in boards if b.code == request.GET.get("board")), None)
    board = board or (boards[0] if boards else None)
    view, rows, around = None, [], []
    which = "previous" if request.GET.get("period") == "previous" else "current"
    if board is not None:
        period = resolve_period(board, which, now=timezone.now())
        view = leaderboard_view(board=board, period=period, member_id=request.member.pk)
        me = view["me"]
        near = [*me["above"], *me["below"]] if me else []
        members = Member.objects.in_bulk({r.member_id for r in [*view["top"], *near]})

        def row(r) -> dict:
            return {
                "rank": r.rank,
                "score": r.score,
                "me": r.member_id == request.member.pk,
                "name": _shown_name(members.get(r.member_id), r.rank),
            }

        rows = [row(r) for r in view["top"]]
        shown = {r["rank"] for r in rows}
        # The member and their neighbours, when they are below the top.
        if me and me["rank"] not in shown:
            mine = {"rank": me["rank"], "score": me["score"], "me": True, "name": ""}
            around = [row(r) for r in me["above"]] + [mine] + [row(r) for r in me["below"]]
    return render(
        request,
        "member/leaderboards.html",
        {
            "program": program_settings(),
            "boards": boards,
            "board": board,
            "view": view,
            "rows": rows,
            "around": around,
            "which": which,
            "opted_out": request.member.leaderboard_opt_out,
            "page": "leaderboards",
        },
    )


@require_POST
@member_page
def leaderboards_opt(request: HttpRequest) -> HttpResponse:
    """Leave every leaderboard, or come back to them."""
    leave = request.POST.get("leave") == "1"
    member_upsert(external_id=request.member.external_id, data={"leaderboard_opt_out": leave})
    messages.success(
        request,
        gettext("You no longer appear on leaderboards.")
        if leave
        else gettext("You appear on leaderboards again."),
    )
    return redirect("member-center:leaderboards")


# The points history's filters: which kinds of entry each shows.
HISTORY_FILTERS = {
    "earned": (EntryKind.EARN, EntryKind.BONUS, EntryKind.ACTIVATE, EntryKind.ADJUST),
    "spent": (EntryKind.SPEND,),
    "expired": (EntryKind.EXPIRE,),
    "refunded": (EntryKind.REFUND, EntryKind.REVERSE),
}


def _in_words(entry) -> str:
    """A ledger entry as the member reads it."""
    words = {
        EntryKind.EARN: gettext("Earned"),
        EntryKind.BONUS: gettext("Bonus"),
        EntryKind.SPEND: gettext("Spent on a reward"),
        EntryKind.EXPIRE: gettext("Expired"),
        EntryKind.REFUND: gettext("Given back: a redemption was cancelled"),
        EntryKind.REVERSE: gettext("Taken back: a purchase was refunded"),
        EntryKind.ADJUST: gettext("Adjusted by the program"),
        EntryKind.ACTIVATE: gettext("Released from hold"),
    }
    return words.get(entry.kind, entry.get_kind_display())


@require_GET
@member_page
def history(request: HttpRequest) -> HttpResponse:
    """The points ledger in the member's words, newest first, filterable, a page at a time."""
    chosen = request.GET.get("show", "")
    entries = member_ledger(request.member).filter(currency=Currency.POINTS)
    if chosen in HISTORY_FILTERS:
        entries = entries.filter(kind__in=HISTORY_FILTERS[chosen])
    else:
        chosen = ""
    page = Paginator(entries.order_by("-effective_at", "-id"), 30).get_page(request.GET.get("p"))
    for entry in page:
        entry.words = _in_words(entry)
        # The rule's name, or the reason an operator or a bonus gave; other reasons are the
        # engine's own words, not the member's.
        entry.detail = (
            entry.rule_version.rule.name
            if entry.rule_version_id
            else entry.reason
            if entry.kind in (EntryKind.BONUS, EntryKind.ADJUST)
            else ""
        )
    filters = [
        ("", gettext("All")),
        ("earned", gettext("Earned")),
        ("spent", gettext("Spent")),
        ("expired", gettext("Expired")),
        ("refunded", gettext("Given and taken back")),
    ]
    return render(
        request,
        "member/history.html",
        {
            "program": program_settings(),
            "entries": page,
            "filters": filters,
            "chosen": chosen,
            "page": "history",
        },
    )
