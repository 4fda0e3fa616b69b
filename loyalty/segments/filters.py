"""A segment's conditions as one database filter over members.

Each condition is one ``Q`` on ``accounts.Member``; a segment is their conjunction. A value that
does not fit its field and operator raises ``ValueError`` with a message for the operator.
"""

from datetime import date, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Member
from core.errors import NotFound
from loyalty.models import (
    ActivityState,
    BadgeAward,
    ChurnRisk,
    QuestProgress,
    Segment,
    SegmentCondition,
)

Field, Operator = SegmentCondition.Field, SegmentCondition.Operator

# Numeric properties of the member's standing, by the condition's field.
NUMBERS = {
    Field.POINTS: "standing__points",
    Field.GROWTH: "standing__growth",
    Field.POINTS_EARNED: "standing__points_earned",
    Field.POINTS_SPENT: "standing__points_spent",
    Field.EVENTS: "standing__events_count",
}
DATES = {Field.JOINED: "joined_at__date", Field.LAST_KEY_DAY: "activity__last_key_day"}
CODES = (Field.TIER, Field.STATE, Field.BADGE, Field.QUEST)


def _values(condition: SegmentCondition) -> list[str]:
    values = [v.strip() for v in condition.value.split(",") if v.strip()]
    if not values:
        raise ValueError(_("Give at least one value."))
    return values


def _number(condition: SegmentCondition) -> int:
    try:
        return int(condition.value.strip())
    except ValueError:
        raise ValueError(_("Give a whole number.")) from None


def _date(condition: SegmentCondition) -> date:
    try:
        return date.fromisoformat(condition.value.strip())
    except ValueError:
        raise ValueError(_("Give a date as YYYY-MM-DD.")) from None


def _allowed(condition: SegmentCondition, *operators: str) -> None:
    if condition.operator not in operators:
        labels = ", ".join(str(Operator(o).label) for o in operators)
        raise ValueError(_("This field takes: %(operators)s.") % {"operators": labels})


def _codes(condition: SegmentCondition) -> Q:
    _allowed(condition, Operator.IN, Operator.NOT_IN)
    values = _values(condition)
    if condition.field == Field.TIER:
        q = Q(standing__tier__code__in=values)
    elif condition.field == Field.STATE:
        unknown = set(values) - set(ActivityState.values)
        if unknown:
            raise ValueError(
                _("Unknown state: %(states)s.") % {"states": ", ".join(sorted(unknown))}
            )
        # A member never active has no activity row yet: they count as new.
        q = Q(activity__state__in=values)
        if ActivityState.NEW in values:
            q |= Q(activity__isnull=True)
    elif condition.field == Field.BADGE:
        q = Q(
            Exists(
                BadgeAward.objects.filter(
                    member=OuterRef("pk"), badge__code__in=values, revoked_at__isnull=True
                )
            )
        )
    else:
        q = Q(
            Exists(
                QuestProgress.objects.filter(
                    member=OuterRef("pk"), quest__code__in=values, completed_at__isnull=False
                )
            )
        )
    return ~q if condition.operator == Operator.NOT_IN else q


def _compare(path: str, condition: SegmentCondition, value) -> Q:
    _allowed(condition, Operator.GTE, Operator.LTE, Operator.EQ)
    lookup = {Operator.GTE: "gte", Operator.LTE: "lte", Operator.EQ: "exact"}[condition.operator]
    return Q(**{f"{path}__{lookup}": value})


def _days_away(condition: SegmentCondition) -> Q:
    """Days since the member last did the key action; never: as many days as since joining."""
    _allowed(condition, Operator.GTE, Operator.LTE)
    days = _number(condition)
    today = timezone.localdate()
    boundary = today - timedelta(days=days)
    if condition.operator == Operator.GTE:
        return Q(activity__last_key_day__lte=boundary) | Q(
            Q(activity__last_key_day__isnull=True) & Q(joined_at__date__lte=boundary)
        )
    return Q(activity__last_key_day__gte=boundary) | Q(
        Q(activity__last_key_day__isnull=True) & Q(joined_at__date__gte=boundary)
    )


def _attribute(condition: SegmentCondition) -> Q:
    key = condition.attribute.strip()
    if not key:
        raise ValueError(_("Name the attribute."))
    has = Q(attributes__has_key=key)
    if condition.operator == Operator.EXISTS:
        return has
    if condition.operator == Operator.MISSING:
        return ~has
    _allowed(condition, Operator.EQ, Operator.NE, Operator.IN, Operator.NOT_IN, Operator.EXISTS)
    values = _values(condition)
    # Attribute values compare as the host sent them, as text or as numbers and booleans.
    matches = Q()
    for value in values:
        matches |= Q(**{f"attributes__{key}": value})
        for typed in _typed(value):
            matches |= Q(**{f"attributes__{key}": typed})
    if condition.operator in (Operator.EQ, Operator.IN):
        return has & matches
    return ~(has & matches)


def _typed(value: str) -> list:
    if value in ("true", "false"):
        return [value == "true"]
    try:
        return [int(value)]
    except ValueError:
        return []


def condition_q(condition: SegmentCondition) -> Q:
    field = condition.field
    if field in CODES:
        return _codes(condition)
    if field in NUMBERS:
        return _compare(NUMBERS[field], condition, _number(condition))
    if field in DATES:
        return _compare(DATES[field], condition, _date(condition))
    if field == Field.DAYS_AWAY:
        return _days_away(condition)
    if field == Field.ATTRIBUTE:
        return _attribute(condition)
    if field == Field.CHURN_RISK:
        _allowed(condition, Operator.EXISTS, Operator.MISSING)
        flagged = Q(Exists(ChurnRisk.objects.filter(member=OuterRef("pk"))))
        return flagged if condition.operator == Operator.EXISTS else ~flagged
    raise ValueError(_("Unknown field."))


def segment_members(segment: Segment) -> QuerySet[Member]:
    """The members of ``segment`` now: every condition met."""
    q = Q()
    for condition in segment.conditions.all():
        q &= condition_q(condition)
    return Member.objects.filter(q)


def member_in_segment(segment_id: int, member: Member) -> bool:
    """Whether the member is in the segment now (its database filter)."""
    segment = Segment.objects.prefetch_related("conditions").get(pk=segment_id)
    return segment_members(segment).filter(pk=member.pk).exists()


class SegmentNotFound(NotFound):
    code = "segment_not_found"
    message = gettext_lazy("No segment with this code.")


def segment_get(code: str) -> Segment:
    segment = Segment.objects.filter(code=code).prefetch_related("conditions").first()
    if segment is None:
        raise SegmentNotFound()
    return segment
