"""Churn warning from declining behaviour: besides idle days, a member whose key actions fall
well below their own recent weeks is flagged at risk, with the indicator that dropped.

The rule (a daily job, over whole Monday-first weeks before today): a member's *baseline* is
their average key actions a week over the ``BASELINE_WEEKS`` weeks before the last
``RECENT_WEEKS``; *recent* is the average over those last weeks. With a baseline of at least
``MIN_BASELINE`` a week and recent at most ``DROP`` of it, the member is flagged (a
``ChurnRisk`` row and the ``member.churn_risk`` webhook, once); a flagged member whose recent
weeks rise above that is cleared. Members already churned by idle days are left to that state.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count
from django.db.models.functions import TruncWeek
from django.utils import timezone

from loyalty.activity.states import key_action_at
from loyalty.ledger.session import member_session
from loyalty.models import ChurnRisk, Event
from loyalty.outbox import webhook_emit
from loyalty.periods import local_date, program_tz, start_of_day
from loyalty.program.compiled import compiled_program

INDICATOR = "key_actions_per_week"
RECENT_WEEKS = 2
BASELINE_WEEKS = 4
MIN_BASELINE = Decimal(3)
DROP = Decimal("0.5")


@dataclass
class DeclineReport:
    flagged: int = 0
    cleared: int = 0
    at_risk: int = 0


def weekly_key_actions(now) -> dict[int, list[int]]:
    """Each member's key actions in each of the last weeks, oldest first."""
    definition = key_action_at(now)
    today = local_date(now)
    this_week = today - timedelta(days=today.weekday())
    weeks = [this_week - timedelta(weeks=n) for n in range(RECENT_WEEKS + BASELINE_WEEKS, 0, -1)]
    counts: dict[int, list[int]] = defaultdict(lambda: [0] * len(weeks))
    if definition is None:
        return counts
    rows = (
        Event.objects.filter(
            action_id=definition.action_id,
            occurred_at__gte=start_of_day(weeks[0]),
            occurred_at__lt=start_of_day(this_week),
        )
        .annotate(week=TruncWeek("occurred_at", tzinfo=program_tz()))
        .values("member_id", "week")
        .annotate(n=Count("id"))
    )
    index = {week: i for i, week in enumerate(weeks)}
    for row in rows:
        week = row["week"]
        week = week.date() if hasattr(week, "date") else week
        counts[row["member_id"]][index[week]] = row["n"]
    return counts


def detect_churn_risk(*, now=None) -> DeclineReport:
    now = now or timezone.now()
    report = DeclineReport()
    compiled_program()  # the current revision: key_action_at reads the program compiled last
    counts = weekly_key_actions(now)
    flagged = set(ChurnRisk.objects.values_list("member_id", flat=True))
    for member_id in sorted(set(counts) | flagged):
        weekly = counts.get(member_id, [0] * (RECENT_WEEKS + BASELINE_WEEKS))
        baseline = Decimal(sum(weekly[:BASELINE_WEEKS])) / BASELINE_WEEKS
        recent = Decimal(sum(weekly[BASELINE_WEEKS:])) / RECENT_WEEKS
        at_risk = baseline >= MIN_BASELINE and recent <= baseline * DROP
        if at_risk and member_id not in flagged:
            churn_risk_flag(member_id, baseline=baseline, recent=recent, now=now)
            report.flagged += 1
        elif not at_risk and member_id in flagged and recent > baseline * DROP:
            ChurnRisk.objects.filter(member_id=member_id).delete()
            report.cleared += 1
        report.at_risk += at_risk
    return report


def churn_risk_flag(member_id: int, *, baseline: Decimal, recent: Decimal, now) -> None:
    """Flag the member at risk and tell the host (``member.churn_risk``)."""
    with member_session(member_id) as session:
        ChurnRisk.objects.create(
            member_id=member_id,
            indicator=INDICATOR,
            baseline=baseline,
            recent=recent,
            flagged_at=now,
        )
        webhook_emit(
            work=session.work,
            type="member.churn_risk",
            member_id=member_id,
            data={
                "member": session.work.external_id(member_id),
                "indicator": INDICATOR,
                "baseline": f"{baseline:.2f}",
                "recent": f"{recent:.2f}",
                "at": now.isoformat(),
            },
        )
