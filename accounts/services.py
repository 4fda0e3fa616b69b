"""Write operations on members, API clients and member tokens."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import MemberNotFound
from accounts.models import ApiClient, Member, MemberLinkUse, hash_secret
from accounts.scopes import unknown_scopes
from core import sql
from core.errors import InvalidInput

API_KEY_PREFIX = "lk_"
MEMBER_TOKEN_PREFIX = "mt_"
_MEMBER_TOKEN_SALT = "accounts.member-token"
_MEMBER_LINK_SALT = "accounts.member-link"
# How stale ``ApiClient.last_used_at`` may get before a request refreshes it: saves a write
# per request while still telling operators which keys are in use.
LAST_USED_RESOLUTION = timedelta(minutes=5)

MEMBER_FIELDS = ("display_name", "email", "joined_at", "birthday", "attributes", "language")


# --- API clients ------------------------------------------------------------------------------


def _new_key() -> tuple[str, str, str]:
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    return prefix, secret, f"{API_KEY_PREFIX}{prefix}_{secret}"


def api_client_create(
    *, name: str, scopes: list[str], rate_limit_per_minute: int | None = None
) -> tuple[ApiClient, str]:
    """Create a client and return it with its full key, which is never shown again."""
    if bad := unknown_scopes(scopes):
        raise InvalidInput(f"Unknown scopes: {', '.join(bad)}", details={"scopes": bad})
    prefix, secret, key = _new_key()
    client = ApiClient.objects.create(
        name=name,
        scopes=sorted(set(scopes)),
        key_prefix=prefix,
        secret_hash=hash_secret(secret),
        rate_limit_per_minute=rate_limit_per_minute,
    )
    return client, key


def api_client_rotate_key(*, client: ApiClient) -> str:
    """Give the client a new key; the old one stops working at once."""
    prefix, secret, key = _new_key()
    client.key_prefix = prefix
    client.secret_hash = hash_secret(secret)
    client.is_active = True
    client.revoked_at = None
    client.save(update_fields=["key_prefix", "secret_hash", "is_active", "revoked_at"])
    return key


def api_client_revoke(*, client: ApiClient) -> None:
    """Deactivate the client: its key and the member tokens it minted stop working."""
    ApiClient.objects.filter(pk=client.pk).update(is_active=False, revoked_at=timezone.now())


def api_client_authenticate(*, key: str) -> ApiClient | None:
    """The active client that owns ``key``, or None."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, _, secret = key[len(API_KEY_PREFIX) :].partition("_")
    if not prefix or not secret:
        return None
    client = sql.first(ApiClient, "t.key_prefix = %s AND t.is_active = %s", [prefix, True])
    if client is None or not client.secret_matches(secret):
        return None
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        client.last_used_at = now
    return client


# --- Members ----------------------------------------------------------------------------------


def member_get(*, external_id: str) -> Member:
    member = sql.first(Member, "t.external_id = %s", [external_id])
    if member is None:
        raise MemberNotFound(details={"external_id": external_id})
    return member


def member_external_id(member_id: int) -> str | None:
    """The host app's id of a member known by primary key (for payloads that name members)."""
    return Member.objects.filter(pk=member_id).values_list("external_id", flat=True).first()


def member_upsert(*, external_id: str, data: dict[str, Any]) -> tuple[Member, bool]:
    """Create the member or update the given fields; returns ``(member, created)``.

    Safe under races: two concurrent creates of one ``external_id`` end with one row.
    """
    values = {
        field: data[field] for field in (*MEMBER_FIELDS, "leaderboard_opt_out") if field in data
    }
    with transaction.atomic():
        member, created = Member.objects.select_for_update().get_or_create(
            external_id=external_id, defaults=values
        )
        if not created and values:
            for field, value in values.items():
                setattr(member, field, value)
            member.save(update_fields=[*values, "updated_at"])
    return member, created


# --- Member tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberToken:
    token: str
    expires_at: datetime


def member_token_issue(
    *, member: Member, client: ApiClient, ttl_seconds: int | None = None
) -> MemberToken:
    """Mint a signed, short-lived token that lets the member's own client act as that member.

    Tokens are stateless (signed with SECRET_KEY) and die with their expiry, with the key that
    minted them (revoked or rotated: the token names the key's prefix) and with the member's
    identity (erased: the token names the member's host id, which erasure replaces).
    """
    expires_at, payload = _signed_for(
        member, client, ttl_seconds or settings.LOYALTY_MEMBER_TOKEN_TTL
    )
    signed = signing.dumps(payload, salt=_MEMBER_TOKEN_SALT)
    return MemberToken(token=f"{MEMBER_TOKEN_PREFIX}{signed}", expires_at=expires_at)


def _signed_for(member: Member, client: ApiClient, ttl: int) -> tuple[datetime, dict]:
    """What a member token or link names: the member (and their host id), the key that minted
    it (and its prefix), and when it expires."""
    expires_at = timezone.now() + timedelta(seconds=ttl)
    return expires_at, {
        "m": member.pk,
        "x": member.external_id,
        "c": client.pk,
        "k": client.key_prefix,
        "exp": int(expires_at.timestamp()),
    }


def member_link_issue(
    *, member: Member, client: ApiClient, language: str = "", ttl_seconds: int | None = None
) -> MemberToken:
    """Mint the signed token of a member-center link: short-lived and good for one use (the
    link's id is recorded when it is exchanged for a session). ``language`` chooses the pages'
    language, when given. It dies, as a member token does, with its key and with the member's
    identity."""
    expires_at, payload = _signed_for(
        member, client, ttl_seconds or settings.LOYALTY_MEMBER_LINK_TTL
    )
    payload.update(j=secrets.token_hex(16), l=language)
    return MemberToken(token=signing.dumps(payload, salt=_MEMBER_LINK_SALT), expires_at=expires_at)


@dataclass(frozen=True)
class MemberLink:
    member: Member
    language: str


def member_link_redeem(*, token: str) -> MemberLink | None:
    """The member a valid, unexpired, unused link stands for, the link now used; or None."""
    try:
        payload = signing.loads(token, salt=_MEMBER_LINK_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) < timezone.now().timestamp():
        return None
    member = _minted_for(payload)
    if member is None:
        return None
    try:
        with transaction.atomic():
            MemberLinkUse.objects.create(
                link_id=str(payload.get("j", ""))[:32],
                member=member,
                expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
            )
    except IntegrityError:
        return None  # used before
    return MemberLink(member=member, language=str(payload.get("l") or ""))


def member_links_forget(*, now: datetime | None = None) -> int:
    """Forget the uses of links that have expired (they could not be used again anyway)."""
    deleted, _ = MemberLinkUse.objects.filter(expires_at__lt=now or timezone.now()).delete()
    return deleted


def _minted_for(payload: dict) -> Member | None:
    """The member a signed payload names, if the key that minted it is still active."""
    minted_by = ApiClient.objects.filter(pk=payload.get("c"), key_prefix=payload.get("k"))
    if not minted_by.filter(is_active=True).exists():
        return None
    return Member.objects.filter(pk=payload.get("m"), external_id=payload.get("x")).first()


def member_token_authenticate(*, token: str) -> Member | None:
    """The member a valid, unexpired token stands for, or None."""
    if not token.startswith(MEMBER_TOKEN_PREFIX):
        return None
    try:
        payload = signing.loads(token[len(MEMBER_TOKEN_PREFIX) :], salt=_MEMBER_TOKEN_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) < timezone.now().timestamp():
        return None
    return _minted_for(payload)
