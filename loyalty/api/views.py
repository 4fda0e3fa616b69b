"""Loyalty endpoints. Thin: parse, call one service or selector, render."""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import scopes
from accounts.api.views import MemberDetailView, MeView
from accounts.models import Member
from accounts.permissions import IsMember
from accounts.services import member_get
from core.api.idempotency import body_with_idempotency_key
from loyalty.api.serializers import (
    AdjustmentRequestSerializer,
    AdjustmentSerializer,
    BatchJobSerializer,
    EventBatchSerializer,
    EventOutcomeSerializer,
    EventSerializer,
    LedgerEntrySerializer,
    ReversalRequestSerializer,
    ReversalSerializer,
    parse_event,
    parse_event_items,
    storable_event_items,
)
from loyalty.engine.adjustments import adjust
from loyalty.engine.batches import batch_job_submit
from loyalty.engine.data_rights import member_erase, member_export
from loyalty.engine.events import record_event, record_events
from loyalty.engine.reversals import event_reverse
from loyalty.ledger.reconciliation import liability_report
from loyalty.models import Event, EventBatchJob
from loyalty.selectors import member_ledger, member_summary

DRY_RUN = OpenApiParameter(
    "dry_run", OpenApiTypes.BOOL, description="Answer what the event would earn; store nothing."
)
ASYNC = OpenApiParameter(
    "async", OpenApiTypes.BOOL, description="Accept the batch (202) and process it in a worker."
)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


class EventView(APIView):
    """Report one member event; the answer says what was credited, or why nothing was."""

    required_scopes = (scopes.EVENTS_WRITE,)

    @extend_schema(
        request=EventSerializer,
        parameters=[DRY_RUN],
        responses={201: EventOutcomeSerializer, 200: EventOutcomeSerializer},
    )
    def post(self, request: Request) -> Response:
        data = body_with_idempotency_key(request)
        dry_run = _flag(request, "dry_run")
        result = record_event(client=request.auth, event=parse_event(data), dry_run=dry_run)
        created = not (result.replayed or result.dry_run)
        return Response(
            result.as_dict(), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class EventBatchView(APIView):
    """Report up to 1,000 events; each item gets its own result, in the order posted."""

    required_scopes = (scopes.EVENTS_WRITE,)

    @staticmethod
    def throttle_cost(request: Request) -> int:
        """A batch counts against the rate limit by its events."""
        events = request.data.get("events") if isinstance(request.data, dict) else None
        return len(events) if isinstance(events, list) else 1

    @extend_schema(
        request=EventBatchSerializer,
        parameters=[DRY_RUN, ASYNC],
        responses={
            200: inline_serializer(
                "EventBatchResult",
                {
                    "succeeded": serializers.IntegerField(),
                    "failed": serializers.IntegerField(),
                    "results": serializers.ListField(child=serializers.DictField()),
                },
            ),
            202: BatchJobSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        body = EventBatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        items = body.validated_data["events"]
        if _flag(request, "async"):
            job = batch_job_submit(client=request.auth, items=storable_event_items(items))
            job.refresh_from_db()
            return Response(BatchJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
        results = [
            r.as_dict()
            for r in record_events(
                client=request.auth,
                events=parse_event_items(items),
                dry_run=_flag(request, "dry_run"),
            )
        ]
        succeeded = sum(1 for r in results if r["ok"])
        return Response(
            {"succeeded": succeeded, "failed": len(results) - succeeded, "results": results}
        )


class EventBatchJobView(APIView):
    """An asynchronous batch's status and, once done, its results (scope ``events:read``;
    a client sees only its own jobs)."""

    required_scopes = (scopes.EVENTS_READ,)

    @extend_schema(responses=BatchJobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        job = EventBatchJob.objects.filter(pk=job_id, client=request.auth).first()
        if job is None:
            raise Http404
        return Response(BatchJobSerializer(job).data)


class EventDetailView(APIView):
    """One stored event with its outcome."""

    required_scopes = (scopes.EVENTS_READ,)

    @extend_schema(responses=EventOutcomeSerializer)
    def get(self, request: Request, event_id: int) -> Response:
        event = Event.objects.filter(pk=event_id, client=request.auth).first()
        if event is None:
            raise Http404
        return Response(
            {"event_id": event.pk, "replayed": False, "dry_run": False, **event.outcome}
        )


class EventReverseView(APIView):
    """Reverse an event in full, or in part with ``amount`` (a partial refund)."""

    required_scopes = (scopes.EVENTS_WRITE,)

    @extend_schema(
        request=ReversalRequestSerializer,
        responses={201: ReversalSerializer, 200: ReversalSerializer},
    )
    def post(self, request: Request, event_id: int) -> Response:
        data = body_with_idempotency_key(request)
        body = ReversalRequestSerializer(data=data)
        body.is_valid(raise_exception=True)
        result = event_reverse(
            client=request.auth,
            event_id=event_id,
            idempotency_key=body.validated_data["idempotency_key"],
            amount=body.validated_data.get("amount"),
        )
        return Response(
            result.as_dict(),
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
        )


class MemberAdjustmentView(APIView):
    """Credit or debit a member's points or growth, with a reason (scope ``operator``)."""

    required_scopes = (scopes.OPERATOR,)

    @extend_schema(
        request=AdjustmentRequestSerializer,
        responses={201: AdjustmentSerializer, 200: AdjustmentSerializer},
    )
    def post(self, request: Request, external_id: str) -> Response:
        data = body_with_idempotency_key(request)
        body = AdjustmentRequestSerializer(data=data)
        body.is_valid(raise_exception=True)
        result = adjust(
            member=member_get(external_id=external_id), client=request.auth, **body.validated_data
        )
        return Response(
            result.as_dict(),
            status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
        )


class MemberSummaryView(MemberDetailView):
    """The member with balances, tier and privileges, and the way to the next tier."""

    def represent(self, member: Member) -> dict:
        return {**super().represent(member), **member_summary(member)}


class MeSummaryView(MeView):
    def represent(self, member: Member) -> dict:
        return {**super().represent(member), **member_summary(member)}


class MemberLedgerView(generics.ListAPIView):
    """The member's ledger entries, newest first (cursor-paginated)."""

    required_scopes = (scopes.MEMBERS_READ,)
    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        return member_ledger(member_get(external_id=self.kwargs["external_id"]))


class MeLedgerView(generics.ListAPIView):
    permission_classes = [IsMember]
    serializer_class = LedgerEntrySerializer

    def get_queryset(self):
        return member_ledger(self.request.auth)


class LiabilityReportView(APIView):
    """What the program owes its members: points outstanding, pending and expiring by month."""

    required_scopes = (scopes.OPERATOR,)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "months", OpenApiTypes.INT, description="Months ahead (1-36, default 12)."
            )
        ],
        responses=inline_serializer(
            "LiabilityReport",
            {
                "as_of": serializers.DateTimeField(),
                "members": serializers.IntegerField(),
                "points_outstanding": serializers.IntegerField(),
                "points_pending": serializers.IntegerField(),
                "negative_balances": serializers.IntegerField(),
                "expiring_by_month": serializers.ListField(child=serializers.DictField()),
                "expiring_later": serializers.IntegerField(),
                "overdue_for_expiry": serializers.IntegerField(),
                "never_expiring": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        months = serializers.IntegerField(min_value=1, max_value=36).run_validation(
            request.query_params.get("months", 12)
        )
        return Response(liability_report(months=months))


class MemberExportView(APIView):
    """Everything held about the member, as JSON (scope ``operator``)."""

    required_scopes = (scopes.OPERATOR,)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, external_id: str) -> Response:
        return Response(member_export(member=member_get(external_id=external_id)))


class MemberEraseView(APIView):
    """Erase the member's personal data; the ledger and totals stay (scope ``operator``)."""

    required_scopes = (scopes.OPERATOR,)

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "Erasure",
            {"external_id": serializers.CharField(), "erased": serializers.BooleanField()},
        ),
    )
    def post(self, request: Request, external_id: str) -> Response:
        member = member_erase(member=member_get(external_id=external_id))
        return Response({"external_id": member.external_id, "erased": True})
