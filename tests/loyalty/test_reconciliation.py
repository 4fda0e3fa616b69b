"""verify_ledger proves the books and catches what goes behind the ledger's back; the
liability report says what the program owes."""

import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.utils import timezone

from loyalty.engine.adjustments import adjust
from loyalty.ledger.reconciliation import liability_report, verify_ledger
from loyalty.models import MemberStanding, PointLot
from tests.factories import MemberFactory, make_rule
from tests.loyalty.conftest import local

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(earn):
    make_rule("purchase", unit_attribute="amount", points_per_unit=1, growth_per_occurrence=5)
    make_rule("review", points_per_occurrence=20, hold_days=7)
    for member in ("a", "b", "c"):
        earn(member, amount=100)
        earn(member, action="review")
    member = MemberStanding.objects.get(member__external_id="a").member
    adjust(member=member, currency="points", amount=50, reason="r", idempotency_key="plus")
    adjust(member=member, currency="points", amount=-30, reason="r", idempotency_key="minus")


def test_consistent_books_verify(books, capsys):
    report = verify_ledger(chunk_size=2)
    assert report.ok, report.mismatches
    assert report.members == 3
    call_command("verify_ledger")
    assert "OK: 3 members" in capsys.readouterr().out


def test_a_balance_changed_behind_the_ledgers_back_is_caught(books, capsys):
    MemberStanding.objects.filter(member__external_id="b").update(points=999)
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_ledger")
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    member_id = MemberStanding.objects.get(member__external_id="b").pk
    assert f"member {member_id}: points: cached 999, ledger 100" in err


def test_a_lot_changed_behind_the_ledgers_back_is_caught(books):
    lot = PointLot.objects.filter(pending=False).first()
    PointLot.objects.filter(pk=lot.pk).update(remaining=lot.remaining - 1)
    checks = {m["check"] for m in verify_ledger().mismatches}
    assert {"spendable lots", f"lot {lot.pk} remaining"} <= checks


def test_the_liability_report_counts_outstanding_pending_and_expiring_by_month(earn, settings):
    settings.TIME_ZONE = "Europe/Paris"
    make_rule(
        "purchase", points_per_occurrence=100, points_expiry="end_of_month", points_expiry_n=0
    )
    make_rule("review", points_per_occurrence=40, points_expiry="never")
    make_rule("share", points_per_occurrence=7, hold_days=30)
    now = timezone.now()
    earn("a", at=now)
    earn("b", action="review", at=now)
    earn("b", action="share", at=now)
    report = liability_report(months=3)
    assert (report["points_outstanding"], report["points_pending"], report["never_expiring"]) == (
        140,
        7,
        40,
    )
    this_month = report["expiring_by_month"][0]
    assert this_month["points"] == 100
    assert [m["points"] for m in report["expiring_by_month"][1:]] == [0, 0]


def test_the_liability_report_places_month_end_expiry_in_the_month_before(db, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    member = MemberFactory()
    adjust(member=member, currency="points", amount=10, reason="r", idempotency_key="k")
    PointLot.objects.update(expires_at=local(2027, 2, 1, tz="Asia/Tokyo"))
    report = liability_report(months=3, at=local(2026, 12, 15, tz="Asia/Tokyo"))
    assert [(m["month"], m["points"]) for m in report["expiring_by_month"]] == [
        ("2026-12", 0),
        ("2027-01", 10),
        ("2027-02", 0),
    ]


def test_the_liability_api_needs_the_operator_scope(api, books):
    from accounts.services import api_client_create

    body = api.get("/api/v1/reports/liability").json()
    assert body["points_outstanding"] == 3 * 100 + 20
    _, reader = api_client_create(name="reader", scopes=["members:read"])
    assert api.as_key(reader).get("/api/v1/reports/liability").status_code == 403


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_reported_peak_memory_is_the_commands_own_not_its_starters():
    # Linux keeps a process's peak (ru_maxrss) across exec: a command started by a process
    # holding 600 MB would report 600 MB. The command reports its own high-water mark.
    held = bytearray(600 * 1024 * 1024)
    for page in range(0, len(held), 4096):
        held[page] = 1
    child = (
        "from loyalty.management.commands.verify_ledger import _peak_memory_mb;"
        "print(_peak_memory_mb())"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {child}"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    del held
    assert 0 < float(done.stdout) < 400, done.stdout
