from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models


def operator_of(request=None, **kwargs):
    """The operator behind a change, for the audit log: the admin user of the request, never
    an API principal (a host app's key or a member token)."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) and user.is_authenticated else None


def operator_field(verbose_name) -> models.ForeignKey:
    """The operator who did something (created, published): kept if the user is deleted."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=verbose_name,
    )
