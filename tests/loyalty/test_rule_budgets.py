"""A rule's total budget, across members: raced by 50 concurrent events, it is never
overspent; once spent, the rule credits nothing more and says why."""

import pytest
from django.db.models import Sum

from loyalty.engine.events import EventInput, record_event
from loyalty.models import LedgerEntry, RuleBudget
from loyalty.program.compiled import earning_rule_publish
from tests.concurrency import race
from tests.factories import make_rule
from tests.helpers import assert_balances_match_ledger


def signup(i: int, member: str | None = None):
    return record_event(
        client=None,
        event=EventInput(
            external_id=member or f"racer-{i}", action="sign_up", idempotency_key=f"b-{i}"
        ),
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_budget_raced_by_50_concurrent_events_is_never_overspent():
    rule = make_rule("sign_up", code="launch-bonus", points_per_occurrence=100, budget_points=1000)
    make_rule("sign_up", code="always", growth_per_occurrence=1)
    results = race(50, signup)
    assert not [r for r in results if isinstance(r, Exception)], results
    credited = [
        r for r in results if any(c["rule"] == "launch-bonus" for c in r.outcome["credits"])
    ]
    refused = [
        r
        for r in results
        if any(
            s["rule"] == "launch-bonus" and s["reason"] == "budget_spent"
            for s in r.outcome["skipped"]
        )
    ]
    assert (len(credited), len(refused)) == (10, 40)
    assert RuleBudget.objects.get(rule=rule).spent == 1000
    paid = LedgerEntry.objects.filter(rule_version__rule=rule, currency="points")
    assert paid.aggregate(total=Sum("amount"))["total"] == 1000
    assert_balances_match_ledger()


@pytest.mark.django_db
def test_a_spent_budget_says_why_and_a_raised_one_credits_again():
    rule = make_rule("sign_up", code="small", points_per_occurrence=60, budget_points=100)
    assert signup(1).outcome["points"] == 60
    second = signup(2)
    assert second.outcome["points"] == 0 and second.outcome["reason"] == "budget_spent"
    rule.budget_points = 200
    rule.save()
    earning_rule_publish(rule=rule)
    assert signup(3).outcome["points"] == 60  # 120 spent of 200
    assert RuleBudget.objects.get(rule=rule).spent == 120


@pytest.mark.django_db
def test_points_a_refund_takes_back_return_to_the_budget():
    from decimal import Decimal

    from loyalty.engine.reversals import event_reverse

    rule = make_rule(
        "purchase",
        code="launch",
        points_per_unit="1",
        unit_attribute="amount",
        budget_points=150,
    )

    def buy(i: int, amount: str):
        return record_event(
            client=None,
            event=EventInput(
                external_id="ann",
                action="purchase",
                idempotency_key=f"p-{i}",
                attributes={"amount": amount},
            ),
        )

    first = buy(1, "100")
    assert buy(2, "100").outcome["reason"] == "budget_spent"  # 100 of 150 spent: 100 > 50
    event_reverse(client=None, event_id=first.event_id, idempotency_key="r-1", amount=Decimal("40"))
    assert RuleBudget.objects.get(rule=rule).spent == 60  # 40 of the 100 points came back
    assert buy(3, "90").outcome["points"] == 90
    assert RuleBudget.objects.get(rule=rule).spent == 150
    assert_balances_match_ledger()
