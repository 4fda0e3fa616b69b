"""Teach drf-spectacular our bearer schemes and our errors, so that the schema says exactly how
each operation authenticates and which error answers it may give."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from accounts.permissions import IsMember, MemberOrScopes


def _accepts(auto_schema, *, member_token: bool) -> bool:
    """Whether the operation's view takes a member token (``IsMember``, ``MemberOrScopes``)
    or an API key (every view but ``IsMember`` ones)."""
    permissions = auto_schema.view.get_permissions()
    members = any(isinstance(p, (IsMember, MemberOrScopes)) for p in permissions)
    keys = not any(isinstance(p, IsMember) for p in permissions)
    return members if member_token else keys


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A host-app API key: `Authorization: Bearer lk_…`.",
        }

    def get_security_requirement(self, auto_schema):
        return {self.name: []} if _accepts(auto_schema, member_token=False) else None


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.MemberTokenAuthentication"
    name = "memberToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A member token minted by POST /api/v1/members/{external_id}/token.",
        }

    def get_security_requirement(self, auto_schema):
        return {self.name: []} if _accepts(auto_schema, member_token=True) else None


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error has this shape; `code` is stable, `message` is for people.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"nullable": True},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
# Errors any operation may answer, and those of operations that take a body.
EVERY_OPERATION = {
    "400": "Malformed or invalid input (validation_error, malformed_json, invalid_…).",
    "401": "No credential, or a bad, expired or revoked one.",
    "403": "The credential may not call this operation (missing_scope, member_token_…).",
    "404": "No such resource (not_found, member_not_found, …).",
    "429": "Rate limited (rate_limited), with Retry-After.",
    "503": "The database is unreachable or timed out (service_unavailable), with Retry-After.",
}
WITH_A_BODY = {
    "409": "The idempotency key was used with another body (idempotency_conflict).",
    "413": "The body is larger than the limit (payload_too_large).",
    "415": "The body is not JSON (unsupported_media_type).",
    "422": "A business rule refused (insufficient_points, out_of_stock, …).",
}


def document_errors(result, generator, request, public):
    """drf-spectacular post-processing hook: the error shape as a component, and on every
    operation the error answers it may give (a client generated from the schema then knows
    each status it can meet)."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path in result.get("paths", {}).values():
        for method, operation in path.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            errors = dict(EVERY_OPERATION)
            if method in ("post", "put", "patch"):
                errors.update(WITH_A_BODY)
            responses = operation.setdefault("responses", {})
            for status, description in errors.items():
                responses.setdefault(status, {"description": description, "content": reference})
                if status in ("429", "503"):
                    responses[status]["headers"] = RETRY_AFTER
    return result
