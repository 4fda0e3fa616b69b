"""Operator adjustments and bulk awards: reasons, operators, idempotent retries."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Member
from core.errors import InvalidInput
from core.idempotency import IdempotencyConflict
from loyalty.engine.adjustments import InsufficientGrowth, adjust, bulk_award, parse_award_rows
from loyalty.ledger.points import InsufficientPoints
from loyalty.models import Adjustment, LedgerEntry, MemberStanding, PointLot
from tests.factories import MemberFactory, give_points, make_tiers
from tests.helpers import assert_balances_match_ledger, assert_error, form_fields

pytestmark = pytest.mark.django_db


def test_a_credit_records_the_reason_and_the_operator(admin_user):
    member = MemberFactory()
    result = adjust(
        member=member,
        currency="points",
        amount=250,
        reason="Goodwill",
        idempotency_key="k1",
        operator=admin_user,
    )
    entry = LedgerEntry.objects.get(pk=result.adjustment.entry_id)
    assert (entry.kind, entry.amount, entry.reason, entry.operator) == (
        "adjust",
        250,
        "Goodwill",
        admin_user,
    )
    assert PointLot.objects.get().remaining == 250
    assert MemberStanding.objects.get().points_earned == 250


def test_a_debit_takes_points_and_is_refused_beyond_the_balance():
    member = MemberFactory()
    adjust(member=member, currency="points", amount=100, reason="r", idempotency_key="k1")
    adjust(member=member, currency="points", amount=-40, reason="correction", idempotency_key="k2")
    with pytest.raises(InsufficientPoints):
        adjust(
            member=member, currency="points", amount=-61, reason="too much", idempotency_key="k3"
        )
    standing = MemberStanding.objects.get()
    assert (standing.points, standing.points_spent) == (60, 40)
    assert_balances_match_ledger()


def test_growth_credits_lift_the_tier_and_debits_cannot_go_below_zero():
    make_tiers(("member", 0), ("gold", 100))
    member = MemberFactory()
    adjust(member=member, currency="growth", amount=150, reason="migration", idempotency_key="g1")
    assert MemberStanding.objects.get().tier.code == "gold"
    with pytest.raises(InsufficientGrowth):
        adjust(member=member, currency="growth", amount=-151, reason="r", idempotency_key="g2")


def test_a_retry_applies_once_and_another_body_conflicts():
    member = MemberFactory()
    first = adjust(member=member, currency="points", amount=10, reason="r", idempotency_key="k")
    again = adjust(member=member, currency="points", amount=10, reason="r", idempotency_key="k")
    assert again.replayed and again.adjustment.pk == first.adjustment.pk
    with pytest.raises(IdempotencyConflict):
        adjust(member=member, currency="points", amount=11, reason="r", idempotency_key="k")
    assert MemberStanding.objects.get().points == 10


@pytest.mark.parametrize(
    ("amount", "reason", "code"),
    [(10, "  ", "reason_required"), (0, "r", "invalid_amount"), (10**10, "r", "invalid_amount")],
)
def test_bad_adjustments_are_refused(amount, reason, code):
    with pytest.raises(InvalidInput) as error:
        adjust(
            member=MemberFactory(),
            currency="points",
            amount=amount,
            reason=reason,
            idempotency_key="k",
        )
    assert error.value.code == code


def test_a_bulk_award_reports_and_running_it_again_applies_nothing():
    MemberFactory(external_id="a")
    MemberFactory(external_id="b")
    rows = [("a", 100), ("b", 50), ("ghost", 10)]
    first = bulk_award(rows=rows, currency="points", reason="Launch gift", batch_key="launch")
    assert (first.applied, first.already_applied, first.failed) == (
        2,
        0,
        [{"external_id": "ghost", "error": "member_not_found"}],
    )
    second = bulk_award(rows=rows, currency="points", reason="Launch gift", batch_key="launch")
    assert (second.applied, second.already_applied) == (0, 2)
    assert sorted(MemberStanding.objects.values_list("points", flat=True)) == [50, 100]


def test_award_files_name_their_bad_lines():
    assert parse_award_rows("external_id,amount\na,10\nb,-5\n") == [("a", 10), ("b", -5)]
    with pytest.raises(InvalidInput) as error:
        parse_award_rows("a,10\nb,ten\n,5\n")
    assert error.value.details == [
        "line 2: expected external_id,amount",
        "line 3: expected external_id,amount",
    ]


def test_the_admin_bulk_upload_is_idempotent(admin_client):
    MemberFactory(external_id="a")
    url = reverse("admin:loyalty_adjustment_bulk_award")
    for _ in range(2):
        upload = SimpleUploadedFile("award.csv", b"a,75\n")
        response = admin_client.post(
            url,
            {
                "currency": "points",
                "reason": "Survey",
                "file": upload,
                "batch_key": "x",
                "apply": "1",
            },
        )
        assert response.status_code == 200
    assert MemberStanding.objects.get().points == 75
    assert Adjustment.objects.count() == 1


def test_the_admin_awards_the_selected_members_as_a_browser_submits_it(admin_client):
    for external_id in ("a", "b"):
        MemberFactory(external_id=external_id)
        give_points(external_id, 1)
    changelist = reverse("admin:loyalty_memberstanding_changelist")
    selected = [str(pk) for pk in MemberStanding.objects.values_list("pk", flat=True)]
    # The list page posts the action and the selection, nothing of the award form.
    page = admin_client.post(
        changelist, {"action": "award", "_selected_action": selected, "index": "0"}
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "This field is required" not in html
    fields = form_fields(html, containing="batch_key")
    assert fields["batch_key"] != [""]
    # The operator fills in the visible fields and presses Apply: the rest goes as rendered.
    fields.update(currency=["growth"], amount=["30"], reason=["Event"])
    for _ in range(2):  # a resubmitted form applies nothing twice
        response = admin_client.post(changelist, fields)
        assert response.status_code == 200
        assert "This field is required" not in response.content.decode()
    assert list(MemberStanding.objects.values_list("growth", flat=True)) == [30, 30]


def test_the_api_adjusts_with_the_operator_scope(api):
    MemberFactory(external_id="alice")
    body = {
        "currency": "points",
        "amount": 40,
        "reason": "Support case 17",
        "idempotency_key": "case-17",
    }
    created = api.post("/api/v1/members/alice/adjustments", json=body)
    assert created.status_code == 201, created.text
    assert api.post("/api/v1/members/alice/adjustments", json=body).status_code == 200
    assert Member.objects.get().standing.points == 40
    error = assert_error(
        api.post(
            "/api/v1/members/alice/adjustments",
            json={**body, "idempotency_key": "x", "amount": -100},
        ),
        422,
        "insufficient_points",
    )
    assert error["details"] == {"balance": 40, "required": 100}
    assert_error(
        api.post("/api/v1/members/alice/adjustments", json={**body, "reason": ""}),
        400,
        "validation_error",
    )
