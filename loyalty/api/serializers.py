from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from core.api.fields import InstantField, JsonObjectField, validated
from core.errors import DomainError, InvalidInput
from loyalty.engine.events import EventInput
from loyalty.models import LedgerEntry

MAX_BATCH = 1000


class _SurrogateCheck(ProhibitSurrogateCharactersValidator):
    """DRF's check, skipped for ASCII text, which cannot hold a surrogate: nearly every id and
    key. DRF's walks the text a character at a time in Python (about 50 characters an event)."""

    def __call__(self, value):
        if not str(value).isascii():
            super().__call__(value)


class IdField(serializers.CharField):
    """A ``CharField`` for ids and codes, with the surrogate check above."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            _SurrogateCheck() if type(v) is ProhibitSurrogateCharactersValidator else v
            for v in self.validators
        ]


class EventSerializer(serializers.Serializer):
    external_id = IdField(max_length=128, help_text="The member's id in the host app.")
    action = IdField(max_length=64, help_text="The action's code, e.g. purchase.")
    idempotency_key = IdField(
        max_length=128,
        help_text="Unique per API client; a retry with it returns the first outcome.",
    )
    occurred_at = InstantField(
        required=False,
        help_text="Default: now. With its UTC offset, from 2000-01-01 to now (5 minutes ahead "
        "are accepted for clock skew).",
    )
    attributes = JsonObjectField(required=False, default=dict)

    @staticmethod
    def as_input(data: dict[str, Any]) -> EventInput:
        return EventInput(
            external_id=data["external_id"],
            action=data["action"],
            idempotency_key=data["idempotency_key"],
            occurred_at=data.get("occurred_at"),
            attributes=data.get("attributes") or {},
        )


@extend_schema_field(EventSerializer)
class _BatchItemField(serializers.Field):
    """One batch item, taken as posted: each is validated on its own (``parse_event_items``),
    so a bad one is its own error and sinks nothing else."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class EventBatchSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=_BatchItemField(),
        min_length=1,
        max_length=MAX_BATCH,
        help_text=f"Up to {MAX_BATCH} events, each shaped as for POST /api/v1/events.",
    )


# One serializer validates every event, single or in a batch (``validated``).
_EVENT_VALIDATOR = EventSerializer()


def parse_event(data: Any) -> EventInput:
    """One event's body as input; ``ValidationError`` (shaped as ``is_valid`` raises it) if
    it is malformed."""
    return EventSerializer.as_input(validated(_EVENT_VALIDATOR, data))


def parse_event_items(items: list[Any]) -> list[EventInput | DomainError]:
    """Validate each batch item alone: a bad item becomes its error, the rest go on."""
    parsed: list[EventInput | DomainError] = []
    for item in items:
        try:
            parsed.append(parse_event(item))
        except serializers.ValidationError as error:
            parsed.append(InvalidInput(details=error.detail))
    return parsed


# An asynchronous batch is stored as posted, but for the items refused at once, stored as
# their error instead: an item the database cannot hold (a NUL character, say) must not sink
# the others, nor the job.
_REFUSED = "refused"


def storable_event_items(items: list[Any]) -> list[Any]:
    """The items to store for a batch job: each valid item as validated (what it will record,
    nothing else it carried), each invalid one as ``{"refused": error}``
    (``parse_stored_event_items`` reads both back)."""
    return [
        {_REFUSED: {"code": p.code, "message": str(p.message), "details": p.details}}
        if isinstance(p, DomainError)
        else {
            "external_id": p.external_id,
            "action": p.action,
            "idempotency_key": p.idempotency_key,
            "attributes": p.attributes,
            **({"occurred_at": p.occurred_at.isoformat()} if p.occurred_at else {}),
        }
        for p in parse_event_items(items)
    ]


def parse_stored_event_items(items: list[Any]) -> list[EventInput | DomainError]:
    """A stored batch job's items, as ``parse_event_items`` gives them."""
    parsed: list[EventInput | DomainError] = []
    for item in items:
        if isinstance(item, dict) and set(item) == {_REFUSED}:
            error = item[_REFUSED]
            parsed.append(
                InvalidInput(error["message"], code=error["code"], details=error["details"])
            )
        else:
            parsed += parse_event_items([item])
    return parsed


class CreditSerializer(serializers.Serializer):
    rule = serializers.CharField()
    rule_version = serializers.IntegerField()
    growth = serializers.IntegerField()
    points = serializers.IntegerField()
    capped = serializers.BooleanField()


class SkipSerializer(serializers.Serializer):
    rule = serializers.CharField()
    rule_version = serializers.IntegerField()
    reason = serializers.CharField()
    detail = serializers.CharField()


class BonusSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["badge", "quest", "gift"])
    code = serializers.CharField(help_text="The badge's or quest's code, or the gift's kind.")
    growth = serializers.IntegerField()
    points = serializers.IntegerField()


class EventOutcomeSerializer(serializers.Serializer):
    """What an event earned, or why it earned nothing (``reason``)."""

    event_id = serializers.IntegerField(allow_null=True)
    replayed = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    member = serializers.CharField()
    action = serializers.CharField()
    idempotency_key = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["credited", "not_credited"])
    reason = serializers.CharField(
        allow_null=True,
        help_text="unknown_action, rule_inactive, no_rule, condition_not_met, cap_reached, "
        "cooldown, invalid_attribute, nothing_to_credit",
    )
    growth = serializers.IntegerField(
        help_text="Everything the event credited: its rules' credits plus its bonuses."
    )
    points = serializers.IntegerField(
        help_text="Everything the event credited (pending points included): its rules' credits "
        "plus its bonuses."
    )
    program_version = serializers.IntegerField(
        required=False,
        help_text="The published program version the event was credited under (0: before the "
        "first publish). Absent from answers stored before versions existed.",
    )
    credits = CreditSerializer(many=True)
    bonuses = BonusSerializer(
        many=True, help_text="Badge, quest and gift bonuses the event set off."
    )
    shortfall_repaid = serializers.IntegerField(
        help_text="Points of this event's credits that repaid an open shortfall."
    )
    skipped = SkipSerializer(many=True)
    tier_change = serializers.DictField(allow_null=True)
    tier = serializers.CharField(allow_null=True)
    balances = serializers.DictField(child=serializers.IntegerField())


class LedgerEntrySerializer(serializers.ModelSerializer):
    rule = serializers.CharField(source="rule_version.rule.code", allow_null=True, default=None)
    rule_version = serializers.IntegerField(
        source="rule_version.version", allow_null=True, default=None
    )

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "currency",
            "kind",
            "amount",
            "source_type",
            "source_id",
            "event_id",
            "rule",
            "rule_version",
            "reason",
            "effective_at",
            "created_at",
        ]


class BatchJobSerializer(serializers.Serializer):
    job_id = serializers.UUIDField(source="id")
    status = serializers.CharField()
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    results = serializers.JSONField(allow_null=True)


class ReversalRequestSerializer(serializers.Serializer):
    idempotency_key = serializers.CharField(max_length=128)
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        min_value=Decimal("0.01"),
        help_text="For a partial refund: the amount refunded, in the event's per-unit attribute.",
    )


class ReversalSerializer(serializers.Serializer):
    reversal_id = serializers.IntegerField()
    replayed = serializers.BooleanField()
    event_id = serializers.IntegerField()
    member = serializers.CharField()
    amount = serializers.CharField(allow_null=True)
    fraction_reversed = serializers.CharField()
    growth = serializers.IntegerField(help_text="Growth taken back.")
    points = serializers.IntegerField(help_text="Points taken back (pending ones included).")
    pending_voided = serializers.IntegerField()
    shortfall = serializers.IntegerField(help_text="Spent points that could not be taken back.")
    badges_revoked = serializers.ListField(child=serializers.CharField())
    balances = serializers.DictField(child=serializers.IntegerField())


class AdjustmentRequestSerializer(serializers.Serializer):
    currency = serializers.ChoiceField(choices=["points", "growth"])
    amount = serializers.IntegerField(help_text="Positive credits, negative debits.")
    reason = serializers.CharField(max_length=200)
    idempotency_key = serializers.CharField(max_length=128)


class AdjustmentSerializer(serializers.Serializer):
    adjustment_id = serializers.IntegerField()
    replayed = serializers.BooleanField()
    member = serializers.CharField()
    currency = serializers.CharField()
    amount = serializers.IntegerField()
    reason = serializers.CharField()
    entry_id = serializers.IntegerField()
    created_at = serializers.DateTimeField()


# --- Answers of the gamification endpoints (documentation: the selectors build them) ---------


class BadgeInfoSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    level = serializers.CharField()
    image_url = serializers.CharField()
    criterion = serializers.CharField()


class EarnedBadgeSerializer(BadgeInfoSerializer):
    times = serializers.IntegerField()
    first_awarded_at = serializers.DateTimeField()
    last_awarded_at = serializers.DateTimeField()


class BadgeProgressSerializer(BadgeInfoSerializer):
    progress = serializers.IntegerField()
    threshold = serializers.IntegerField()


class MemberBadgesSerializer(serializers.Serializer):
    earned = EarnedBadgeSerializer(many=True)
    in_progress = BadgeProgressSerializer(many=True, help_text="Secret badges stay hidden.")


class QuestStepSerializer(serializers.Serializer):
    action = serializers.CharField()
    count = serializers.IntegerField()
    done = serializers.IntegerField()


class QuestRewardSerializer(serializers.Serializer):
    points = serializers.IntegerField()
    growth = serializers.IntegerField()
    badge = serializers.CharField(allow_null=True)


class QuestSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    scope = serializers.CharField()
    period_start = serializers.DateField(allow_null=True)
    period_end = serializers.DateField(allow_null=True)
    completed = serializers.BooleanField()
    completed_at = serializers.DateTimeField(allow_null=True)
    reward = QuestRewardSerializer()
    steps = QuestStepSerializer(many=True)


class StreakSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    action = serializers.CharField()
    current = serializers.IntegerField()
    longest = serializers.IntegerField()
    last_day = serializers.DateField(allow_null=True)
    done_today = serializers.BooleanField()


class LeaderboardInfoSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    metric = serializers.CharField()
    period = serializers.CharField()
    size = serializers.IntegerField()


class RankedSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    score = serializers.IntegerField()
    display_name = serializers.CharField()
    external_id = serializers.CharField(
        required=False, allow_null=True, help_text="For API keys only."
    )
    is_me = serializers.BooleanField(required=False, help_text="With a member in view.")


class MyPlaceSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    score = serializers.IntegerField()
    percentile = serializers.FloatField()
    above = RankedSerializer(many=True)
    below = RankedSerializer(many=True)


class LeaderboardViewSerializer(serializers.Serializer):
    leaderboard = serializers.CharField()
    name = serializers.CharField()
    metric = serializers.CharField()
    period = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField(allow_null=True)
    ranked = serializers.IntegerField()
    top = RankedSerializer(many=True)
    me = MyPlaceSerializer(allow_null=True)
