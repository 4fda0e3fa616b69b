"""Refusals made before a request under /api/ reaches a view: what no view could read safely."""

from django.conf import settings
from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _

from core.api.errors import error_body, payload_too_large

NUL_MESSAGE = _("Null characters are not allowed.")


class ApiRequestGuard:
    """For paths under /api/: a body declared larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a
    413 before it is read; a NUL character in the path or a query parameter (which no id, code
    or date holds, and the database cannot compare) is a 400 naming where it was."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/api/") and (refusal := self._refusal(request)):
            return refusal
        return self.get_response(request)

    @staticmethod
    def _refusal(request) -> JsonResponse | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return payload_too_large()
        invalid = {}
        if "\x00" in request.path_info:
            invalid["path"] = [NUL_MESSAGE]
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                invalid[name.replace("\x00", "\\u0000")] = [NUL_MESSAGE]
        if invalid:
            return JsonResponse(
                error_body("validation_error", _("The request is not valid."), invalid), status=400
            )
        return None
