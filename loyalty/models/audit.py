from django.contrib.auth import get_user_model


def operator_of(request=None, **kwargs):
    """The operator behind a change, for the audit log: the admin user of the request, never
    an API principal (a host app's key or a member token)."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) and user.is_authenticated else None
