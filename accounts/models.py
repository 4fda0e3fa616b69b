"""Identity only: members as the host app knows them, and the host app's API credentials.

The member's standing in the program (balances, tier, counters) lives in ``loyalty``.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Member(models.Model):
    external_id = models.CharField(
        max_length=128,
        unique=True,
        help_text=_("The member's id in the host app."),
        verbose_name=_("external id"),
    )
    display_name = models.CharField(max_length=200, blank=True, verbose_name=_("display name"))
    email = models.EmailField(blank=True, verbose_name=_("email"))
    joined_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("joined at")
    )
    birthday = models.DateField(null=True, blank=True, verbose_name=_("birthday"))
    attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Free-form attributes from the host app."),
        verbose_name=_("attributes"),
    )
    language = models.CharField(
        max_length=10,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("The language of the member's pages (empty: their browser's)."),
        verbose_name=_("language"),
    )
    leaderboard_opt_out = models.BooleanField(
        default=False,
        help_text=_("Never show this member on a leaderboard."),
        verbose_name=_("leaderboard opt out"),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="member",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["-id"]
        indexes = [
            # Leaderboards subtract the few opted-out members from their counts.
            models.Index(
                fields=["leaderboard_opt_out"],
                name="member_opted_out_idx",
                condition=models.Q(leaderboard_opt_out=True),
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.external_id


def hash_secret(secret: str) -> str:
    # API secrets are 256-bit random strings, so a fast hash is as strong as a slow one here
    # and keeps per-request authentication cheap.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiClient(models.Model):
    """A host-app credential. The key is ``lk_<prefix>_<secret>``; only the secret's hash is
    stored, the prefix is shown so operators can tell keys apart."""

    name = models.CharField(max_length=100, unique=True, verbose_name=_("name"))
    key_prefix = models.CharField(
        max_length=16, unique=True, editable=False, verbose_name=_("key prefix")
    )
    secret_hash = models.CharField(max_length=64, editable=False, verbose_name=_("secret hash"))
    scopes = models.JSONField(default=list, blank=True, verbose_name=_("scopes"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "Requests a minute this key may make (a batch counts its events); empty: the "
            "default (LOYALTY_RATE_LIMIT_PER_MINUTE)."
        ),
        verbose_name=_("rate limit per minute"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    last_used_at = models.DateTimeField(
        null=True, blank=True, editable=False, verbose_name=_("last used at")
    )
    revoked_at = models.DateTimeField(
        null=True, blank=True, editable=False, verbose_name=_("revoked at")
    )

    class Meta:
        verbose_name_plural = _("API clients")
        ordering = ["name"]
        verbose_name = _("API client")

    def __str__(self) -> str:
        return f"{self.name} (lk_{self.key_prefix}…)"

    def secret_matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    def has_scopes(self, required: list[str] | tuple[str, ...]) -> bool:
        return set(required) <= set(self.scopes)


def idempotency_client() -> models.ForeignKey:
    """The API client a keyed write came from. Tables with one declare a unique constraint on
    (client, idempotency_key), which also serves lookups by client: no index of its own (a
    second one on the client alone misled the planner into scanning a client's every row)."""
    return models.ForeignKey(
        "accounts.ApiClient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("API client"),
    )


class MemberLinkUse(models.Model):
    """A member-center link that was exchanged for a session: a link works once."""

    link_id = models.CharField(max_length=32, unique=True, verbose_name=_("link id"))
    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    expires_at = models.DateTimeField(db_index=True, verbose_name=_("expires at"))
    used_at = models.DateTimeField(auto_now_add=True, verbose_name=_("used at"))

    class Meta:
        verbose_name = _("member link use")
        verbose_name_plural = _("member link uses")

    def __str__(self) -> str:
        return self.link_id
