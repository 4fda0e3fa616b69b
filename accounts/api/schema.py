"""Teach drf-spectacular our bearer schemes, so the schema documents how to authenticate."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A host-app API key: `Authorization: Bearer lk_…`.",
        }


class MemberTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.MemberTokenAuthentication"
    name = "memberToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A member token minted by POST /api/v1/members/{external_id}/token.",
        }
