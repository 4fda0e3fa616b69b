"""Program content members read — tier, badge, quest and reward names and descriptions — in
more than one language. The model's own fields hold the program's language (``LOYALTY_LANGUAGE``);
``translations`` holds the others, by language code: ``{"en": {"name": "Gold"}}``.

One JSON field rather than a column per language: the table's shape does not follow the
``LANGUAGES`` setting, the audit history keeps a row's translations with the row, and the
program file carries them under one key.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

TRANSLATED_FIELDS = ("name", "description")


def other_languages() -> list[tuple[str, str]]:
    """The languages operators may translate into: all but the program's own."""
    return [(code, name) for code, name in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


class Translatable(models.Model):
    translations = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("The name and description in other languages."),
        verbose_name=_("translations"),
    )

    class Meta:
        abstract = True

    def translated(self, field: str, language: str | None = None) -> str:
        return translated(self, field, language)

    @property
    def display_name(self) -> str:
        """The name in the active language."""
        return translated(self, "name")

    @property
    def display_description(self) -> str:
        return translated(self, "description")


def translated(content, field: str, language: str | None = None) -> str:
    """``content``'s ``field`` in ``language`` (the active one by default), or in the program's
    own language when it has no translation. ``content``: a model above, or anything compiled
    from one that keeps its ``translations``."""
    language = language or get_language()
    value = (getattr(content, "translations", None) or {}).get(language or "", {}).get(field)
    return value or getattr(content, field)
