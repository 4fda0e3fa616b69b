"""The one error shape of the API: ``{"error": {"code", "message", "details"}}``.

Every error leaves through here: DRF's own exceptions (bad JSON, authentication, permissions,
validation), the domain's typed errors, and Django's 404/500 for paths under /api/.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError

logger = logging.getLogger(__name__)

# DRF's default codes, renamed where ours say more.
_RENAMED_CODES = {
    "parse_error": "malformed_json",
    "throttled": "rate_limited",
    "invalid": "validation_error",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The error's shape; ``message`` (maybe lazy) in the request's language."""
    return {"error": {"code": code, "message": str(message), "details": details}}


# How long a caller should wait before retrying while the database is unreachable or slow.
RETRY_AFTER_SECONDS = 5


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database could not be reached or gave up on the statement (a timeout, a lock
        # wait): the caller's request was fine and is safe to retry (writes are idempotent).
        logger.warning("database unavailable: %s", exc)
        return Response(
            error_body(
                "service_unavailable",
                _("The service is briefly unavailable; retry shortly."),
                {"retry_after_seconds": RETRY_AFTER_SECONDS},
            ),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not the caller's fault: Django's handler500 answers in our shape
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("validation_error", _("The request is not valid."), exc.detail)
    else:
        code = getattr(exc, "default_code", "error")
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else code
        if isinstance(codes, str):
            code = codes
        details = None
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            details = {"retry_after_seconds": int(exc.wait)}
        body = error_body(_RENAMED_CODES.get(code, code), str(exc.detail), details)
    response.data = body
    return response


@csrf_exempt  # also routed for any unknown path under /api/, whatever the method
def json_not_found(request, exception=None):
    return JsonResponse(
        error_body("not_found", _("No such endpoint.")), status=status.HTTP_404_NOT_FOUND
    )


def json_server_error(request):
    return JsonResponse(
        error_body("server_error", _("An unexpected error occurred; it has been logged.")),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def json_bad_request(request, exception=None):
    """Django's 400 for a path under /api/ (a body over the limit, too many fields), in the
    API's shape: 413 for a body too large."""
    if isinstance(exception, RequestDataTooBig):
        return payload_too_large()
    return JsonResponse(
        error_body("bad_request", _("The request could not be read.")),
        status=status.HTTP_400_BAD_REQUEST,
    )


def payload_too_large() -> JsonResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return JsonResponse(
        error_body(
            "payload_too_large",
            _("The request body is larger than %(limit)s bytes.") % {"limit": f"{limit:,}"},
            {"limit_bytes": limit},
        ),
        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )
