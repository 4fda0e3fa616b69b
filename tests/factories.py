import factory

from accounts.models import Member


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    external_id = factory.Sequence(lambda n: f"member-{n}")
    display_name = factory.Faker("name")
    email = factory.Faker("email")


class ActionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "loyalty.Action"
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"action-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("_", " ").title())


def make_rule(action: str = "purchase", *, conditions=(), caps=(), **fields):
    """Create an earning rule (with its conditions and caps) and publish its first version."""
    from loyalty.models import EarningRule, RuleCap, RuleCondition
    from loyalty.program.compiled import earning_rule_publish

    fields.setdefault("code", f"{action}-{EarningRule.objects.count() + 1}")
    fields.setdefault("name", fields["code"])
    rule = EarningRule.objects.create(action=ActionFactory(code=action), **fields)
    for attribute, operator, value in conditions:
        RuleCondition.objects.create(rule=rule, attribute=attribute, operator=operator, value=value)
    for period, measure, limit in caps:
        RuleCap.objects.create(rule=rule, period=period, measure=measure, limit=limit)
    earning_rule_publish(rule=rule)
    return rule


def make_tiers(*specs, **common):
    """Tiers from ``(code, growth_threshold)`` or ``(code, threshold, {privilege kind: params})``."""
    from loyalty.models import Privilege, Tier
    from loyalty.program.compiled import program_changed

    tiers = []
    for position, spec in enumerate(specs):
        code, threshold, *rest = spec
        tier = Tier.objects.create(
            code=code, name=code.title(), position=position, growth_threshold=threshold, **common
        )
        for kind, params in (rest[0] if rest else {}).items():
            Privilege.objects.create(tier=tier, code=kind, name=kind, kind=kind, params=params)
        tiers.append(tier)
    program_changed()
    return tiers


def make_reward(code: str = "gift", *, codes: int = 0, **fields):
    """A reward; ``codes`` > 0 makes it a coupon reward with a pool of that many codes."""
    from rewards.models import CouponCode, CouponPool, Reward

    fields.setdefault("name", code.title())
    fields.setdefault("cost_points", 100)
    fields.setdefault("kind", Reward.Kind.DIGITAL)
    if codes:
        pool = CouponPool.objects.create(code=f"{code}-pool", name=f"{code} codes")
        CouponCode.objects.bulk_create(
            [CouponCode(pool=pool, code=f"{code.upper()}-{i:04d}") for i in range(codes)]
        )
        fields.update(kind=Reward.Kind.COUPON, pool=pool)
    return Reward.objects.create(code=code, **fields)


def give_points(external_id: str, points: int):
    """A member with ``points`` spendable points (an operator credit)."""
    from accounts.models import Member
    from loyalty.engine.adjustments import adjust

    member, _ = Member.objects.get_or_create(external_id=external_id)
    adjust(
        member=member,
        currency="points",
        amount=points,
        reason="test",
        idempotency_key=f"give-{external_id}-{points}",
    )
    return member


def make_badge(code: str, criterion: str, **fields):
    from loyalty.models import Badge
    from loyalty.program.compiled import program_changed

    fields.setdefault("name", code.replace("-", " ").title())
    badge = Badge.objects.create(code=code, criterion=criterion, **fields)
    program_changed()
    return badge


def make_streak(code: str = "check-in-streak", action: str = "check_in"):
    from loyalty.models import Streak
    from loyalty.program.compiled import program_changed

    streak = Streak.objects.create(code=code, name=code, action=ActionFactory(code=action))
    program_changed()
    return streak


def make_quest(code: str, scope: str, steps: list[tuple[str, int]], **fields):
    from loyalty.models import Quest, QuestStep
    from loyalty.program.compiled import program_changed

    fields.setdefault("name", code)
    quest = Quest.objects.create(code=code, scope=scope, **fields)
    for action, count in steps:
        QuestStep.objects.create(quest=quest, action=ActionFactory(code=action), count=count)
    program_changed()
    return quest


def make_leaderboard(code: str, metric: str, period: str, action: str | None = None, **fields):
    from loyalty.models import Leaderboard
    from loyalty.program.compiled import program_changed

    fields.setdefault("name", code)
    board = Leaderboard.objects.create(
        code=code,
        metric=metric,
        period=period,
        action=ActionFactory(code=action) if action else None,
        **fields,
    )
    program_changed()
    return board


def make_key_action(action: str, *, effective_from, min_per_day: int = 1):
    """A dated key action definition, as the admin saves it (the program recompiles)."""
    from loyalty.models import KeyAction
    from loyalty.program.compiled import program_changed

    definition = KeyAction.objects.create(
        action=ActionFactory(code=action), min_per_day=min_per_day, effective_from=effective_from
    )
    program_changed()
    return definition
