"""Who sees the console: superusers, and staff in the "analyst" group, which may look at
everything (the console and every list of the admin) and change nothing."""

from django.contrib.auth.models import Group, Permission

ANALYST = "analyst"
APPS = ("accounts", "loyalty", "rewards")


def ensure_analyst_group(**kwargs) -> None:
    """Keep the group's rights current after each migration: the console, and viewing (never
    adding, changing or deleting) every model of the program's apps."""
    group, _ = Group.objects.get_or_create(name=ANALYST)
    rights = Permission.objects.filter(content_type__app_label__in=APPS).filter(
        codename__startswith="view_"
    )
    group.permissions.set(rights)
