"""The errors of members and API clients."""

from django.utils.translation import gettext_lazy as _

from core.errors import NotFound


class MemberNotFound(NotFound):
    code = "member_not_found"
    message = _("No member with this external_id.")
