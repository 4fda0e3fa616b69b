"""Operator adjustments: credit or debit a member's growth or points, one at a time or in bulk,
each with a reason and the operator (or API client) recorded, each idempotent."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.errors import MemberNotFound
from accounts.models import ApiClient, Member
from core.errors import BusinessRuleViolation, DomainError, InvalidInput
from core.idempotency import idempotent_write, stored_write
from core.idempotency import request_hash as hash_request
from loyalty.gamification.badges import badges_on_tier_change
from loyalty.ledger.entries import Movement, ledger_post
from loyalty.ledger.points import points_credit_locked, points_debit_locked
from loyalty.ledger.session import member_session
from loyalty.models import Adjustment, Currency, EntryKind, SourceType
from loyalty.tiers.moves import tier_upgrade_if_qualified

MAX_ADJUSTMENT = 10**9


class InsufficientGrowth(BusinessRuleViolation):
    code = "insufficient_growth"
    message = _("Growth cannot go below zero.")


@dataclass(frozen=True)
class AdjustmentResult:
    adjustment: Adjustment
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        a = self.adjustment
        return {
            "adjustment_id": a.pk,
            "replayed": self.replayed,
            "member": a.member.external_id,
            "currency": a.currency,
            "amount": a.amount,
            "reason": a.reason,
            "entry_id": a.entry_id,
            "created_at": a.created_at,
        }


def _stored(client: ApiClient | None, key: str, request_hash: str) -> AdjustmentResult | None:
    stored = stored_write(
        Adjustment.objects.select_related("member"),
        client=client,
        key=key,
        request_hash=request_hash,
    )
    return AdjustmentResult(adjustment=stored, replayed=True) if stored else None


def adjust(
    *,
    member: Member,
    currency: str,
    amount: int,
    reason: str,
    idempotency_key: str,
    operator=None,
    client: ApiClient | None = None,
) -> AdjustmentResult:
    """Credit (amount > 0) or debit (amount < 0) the member. Credited points open a lot with
    the program's default expiry; a debit takes the points closest to expiry first and is
    refused beyond the balance. Growth credited can lift the tier at once; growth debited
    lowers it only through the review. Safe to retry with the same key."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("An adjustment needs a reason.", code="reason_required")
    if currency not in Currency.values:
        raise InvalidInput(f"Unknown currency {currency!r}.", code="invalid_currency")
    if not amount or abs(amount) > MAX_ADJUSTMENT:
        raise InvalidInput(
            f"The amount must be non-zero and at most {MAX_ADJUSTMENT:,}.", code="invalid_amount"
        )
    request_hash = hash_request([member.pk, currency, amount, reason])
    return idempotent_write(
        lambda: _adjust(
            member, currency, amount, reason, idempotency_key, operator, client, request_hash
        ),
        stored=lambda: _stored(client, idempotency_key, request_hash),
    )


def _adjust(
    member: Member,
    currency: str,
    amount: int,
    reason: str,
    idempotency_key: str,
    operator,
    client: ApiClient | None,
    request_hash: str,
) -> AdjustmentResult:
    with member_session(member.pk, savepoint=False) as session:
        standing, work = session.standing, session.work
        if stored := _stored(client, idempotency_key, request_hash):
            return stored
        operator_id = operator.pk if getattr(operator, "pk", None) else None
        common = dict(source_type=SourceType.ADJUSTMENT, reason=reason, operator_id=operator_id)
        if currency == Currency.POINTS and amount > 0:
            entry = points_credit_locked(
                work=work, standing=standing, amount=amount, kind=EntryKind.ADJUST, **common
            )
        elif currency == Currency.POINTS:
            entry = points_debit_locked(
                work=work, standing=standing, amount=-amount, kind=EntryKind.ADJUST, **common
            )
        else:
            if standing.growth + amount < 0:
                raise InsufficientGrowth(details={"growth": standing.growth, "amount": amount})
            (entry,) = ledger_post(
                work=work,
                standing=standing,
                movements=[
                    Movement(
                        currency=Currency.GROWTH, kind=EntryKind.ADJUST, amount=amount, **common
                    )
                ],
            )
            if amount > 0:
                program = session.program
                if tier_upgrade_if_qualified(
                    work=work, standing=standing, program=program, at=timezone.now()
                ):
                    badges_on_tier_change(work=work, standing=standing, program=program)
    # After the flush: the adjustment points at its entry, written by then.
    adjustment = Adjustment.objects.create(
        member=member,
        currency=currency,
        amount=amount,
        reason=reason,
        operator_id=operator_id,
        client=client,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        entry=entry,
    )
    return AdjustmentResult(adjustment=adjustment)


@dataclass
class BulkReport:
    applied: int = 0
    already_applied: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.applied} applied, {self.already_applied} already applied, {len(self.failed)} failed"
        details = "; ".join(f"{f['external_id']}: {f['error']}" for f in self.failed[:20])
        return f"{text}{' (' + details + ')' if details else ''}"


def bulk_award(
    *,
    rows: Iterable[tuple[str, int]],
    currency: str,
    reason: str,
    batch_key: str,
    operator=None,
) -> BulkReport:
    """Adjust a list of members ``(external_id, amount)``, each on its own (one failure does
    not stop the rest), in member order. Each member's adjustment is keyed by the batch, so
    running the same batch again applies nothing twice."""
    report = BulkReport()
    for external_id, amount in sorted(rows):
        member = Member.objects.filter(external_id=external_id).first()
        try:
            if member is None:
                raise MemberNotFound()
            result = adjust(
                member=member,
                currency=currency,
                amount=amount,
                reason=reason,
                idempotency_key=f"bulk:{batch_key}:{external_id}",
                operator=operator,
            )
        except DomainError as error:
            report.failed.append({"external_id": external_id, "error": error.code})
            continue
        if result.replayed:
            report.already_applied += 1
        else:
            report.applied += 1
    return report


def parse_award_rows(text: str) -> list[tuple[str, int]]:
    """``external_id,amount`` lines (a header line is allowed); raises InvalidInput naming
    every bad line."""
    import csv
    import io

    rows, errors = [], []
    for number, line in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not line or not "".join(line).strip():
            continue
        if number == 1 and line[0].strip().lower() in ("external_id", "member"):
            continue
        try:
            external_id, amount = line[0].strip(), int(line[1])
            if not external_id:
                raise ValueError
            rows.append((external_id, amount))
        except (IndexError, ValueError):
            errors.append(f"line {number}: expected external_id,amount")
    if errors:
        raise InvalidInput("The file has bad lines.", code="invalid_file", details=errors)
    return rows
