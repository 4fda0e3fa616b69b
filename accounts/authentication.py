"""DRF authentication: host-app API keys and member tokens, both as ``Authorization: Bearer``.

``request.user`` becomes a principal (who is calling) and ``request.auth`` the ApiClient or the
Member behind it.
"""

from rest_framework import authentication, exceptions

from accounts.models import ApiClient, Member
from accounts.services import (
    MEMBER_TOKEN_PREFIX,
    api_client_authenticate,
    member_token_authenticate,
)


class ClientPrincipal:
    """A host app's server, calling with an API key."""

    is_authenticated = True
    is_member = False

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.member = None

    def __str__(self) -> str:
        return f"client:{self.client.name}"


class MemberPrincipal:
    """A member's own client, calling with a member token."""

    is_authenticated = True
    is_member = True

    def __init__(self, member: Member) -> None:
        self.member = member
        self.client = None

    def __str__(self) -> str:
        return f"member:{self.member.external_id}"


def _bearer(request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


class _BearerAuthentication(authentication.BaseAuthentication):
    prefix = ""

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to a request without credentials.
        return 'Bearer realm="api"'

    def authenticate(self, request):
        credential = _bearer(request)
        if credential is None or not credential.startswith(self.prefix):
            return None
        return self.authenticate_credential(credential)

    def authenticate_credential(self, credential: str):
        raise NotImplementedError


class ApiKeyAuthentication(_BearerAuthentication):
    """Any bearer credential that is not a member token is taken for an API key, so an
    unrecognised credential is a bad key (401), not a missing one."""

    def authenticate(self, request):
        credential = _bearer(request)
        if credential is None or credential.startswith(MEMBER_TOKEN_PREFIX):
            return None
        return self.authenticate_credential(credential)

    def authenticate_credential(self, credential: str):
        client = api_client_authenticate(key=credential)
        if client is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return ClientPrincipal(client), client


class MemberTokenAuthentication(_BearerAuthentication):
    prefix = MEMBER_TOKEN_PREFIX

    def authenticate_credential(self, credential: str):
        member = member_token_authenticate(token=credential)
        if member is None:
            raise exceptions.AuthenticationFailed("Invalid or expired member token.")
        return MemberPrincipal(member), member
