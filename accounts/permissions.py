"""Permissions: host-app keys by scope, member tokens only on the member's own endpoints."""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from core.errors import DomainError


class Forbidden(DomainError):
    status = 403
    code = "permission_denied"
    message = _("You may not do this.")


class HasRequiredScopes(permissions.BasePermission):
    """An API key holding every scope in the view's ``required_scopes`` (per method: a dict).

    Member tokens are refused here: they only open views that use ``IsMember``.
    """

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if principal is None:
            return False  # DRF answers 401 not_authenticated
        if principal.is_member:
            raise Forbidden(
                "A member token cannot call this endpoint; use /api/v1/me.",
                code="member_token_not_allowed",
            )
        required = getattr(view, "required_scopes", ())
        if isinstance(required, dict):
            required = required.get(request.method, ())
        if not principal.client.has_scopes(required):
            missing = sorted(set(required) - set(principal.client.scopes))
            raise Forbidden(
                "The API key lacks a scope this endpoint needs.",
                code="missing_scope",
                details={"missing_scopes": missing},
            )
        return True


class IsMember(permissions.BasePermission):
    """A member token; the view then serves that member alone."""

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if principal is None:
            return False
        if not principal.is_member:
            raise Forbidden(
                "This endpoint needs a member token; host apps use /api/v1/members/{external_id}.",
                code="member_token_required",
            )
        return True


class MemberOrScopes(HasRequiredScopes):
    """A member token, or an API key with the view's scopes: for views that serve both (the
    view then limits what a member sees)."""

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if principal is not None and principal.is_member:
            return True
        return super().has_permission(request, view)
