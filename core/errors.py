"""Typed domain errors. Each carries a stable machine-readable code and an HTTP status; the API's
one exception handler (core/api/errors.py) renders them as ``{"error": {...}}``."""

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"
    message: str = "The request could not be processed."

    def __init__(
        self, message: str | None = None, *, code: str | None = None, details: Any = None
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.details = details
        super().__init__(self.message)


class NotFound(DomainError):
    status = 404
    code = "not_found"
    message = _("Not found.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    message = _("The request conflicts with the current state.")


class BusinessRuleViolation(DomainError):
    """A well-formed request that a business rule refused (422)."""

    status = 422
    code = "refused"
    message = _("The request was refused by a business rule.")


class InvalidInput(DomainError):
    status = 400
    code = "validation_error"
    message = _("The request is not valid.")


class InvariantBroken(Exception):
    """The code broke one of its own rules (a bug, not bad input): raised where an ``assert``
    would vanish under ``python -O``. Never caught; the API answers 500."""
