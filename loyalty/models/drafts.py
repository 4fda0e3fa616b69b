from django.db import models
from django.utils.translation import gettext_lazy as _

from loyalty.models.audit import operator_field


class ProgramVersion(models.Model):
    """A published program: the whole program file as it stood after the publish. Kept for
    good; any version can be restored as a new draft."""

    number = models.PositiveIntegerField(unique=True, verbose_name=_("number"))
    definition = models.JSONField(verbose_name=_("definition"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    published_at = models.DateTimeField(verbose_name=_("published at"))
    published_by = operator_field(_("published by"))

    class Meta:
        verbose_name = _("program version")
        verbose_name_plural = _("program versions")
        ordering = ["-number"]

    def __str__(self) -> str:
        return _("Version %(number)s") % {"number": self.number}


class ProgramDraft(models.Model):
    """A change to the whole program, edited apart from the live program: published at once or
    at a scheduled time, in one transaction."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        PUBLISHED = "published", _("Published")
        FAILED = "failed", _("Failed to publish")

    name = models.CharField(max_length=100, verbose_name=_("name"))
    definition = models.JSONField(
        help_text=_("The whole program, in the program file's format."),
        verbose_name=_("definition"),
    )
    based_on = models.ForeignKey(
        ProgramVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("based on"),
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.DRAFT, verbose_name=_("status")
    )
    publish_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Scheduled: published by the scheduler once this time has come."),
        verbose_name=_("publish at"),
    )
    published_as = models.ForeignKey(
        ProgramVersion,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("published as"),
    )
    error = models.TextField(blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    created_by = operator_field(_("created by"))

    class Meta:
        verbose_name = _("program draft")
        verbose_name_plural = _("program drafts")
        ordering = ["-updated_at"]
        indexes = [
            models.Index(
                fields=["publish_at"],
                name="draft_due_idx",
                condition=models.Q(status="scheduled"),
            )
        ]

    def __str__(self) -> str:
        return self.name
