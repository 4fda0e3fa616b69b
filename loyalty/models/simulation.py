from django.db import models
from django.utils.translation import gettext_lazy as _

from loyalty.models.audit import operator_field


class SimulationRun(models.Model):
    """A what-if: the history of a period replayed under a draft (or the live program), in a
    scratch copy of the tables, and its figures beside what actually happened."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")
        FAILED = "failed", _("Failed")

    draft = models.ForeignKey(
        "loyalty.ProgramDraft",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="simulations",
        help_text=_("Empty: the live program (its figures should match what happened)."),
        verbose_name=_("draft"),
    )
    label = models.CharField(max_length=200, verbose_name=_("program simulated"))
    definition = models.JSONField(null=True, editable=False, verbose_name=_("definition"))
    start = models.DateTimeField(verbose_name=_("period start"))
    end = models.DateTimeField(verbose_name=_("period end"))
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status")
    )
    cancel_requested = models.BooleanField(default=False, verbose_name=_("cancel requested"))
    total = models.PositiveIntegerField(default=0, verbose_name=_("to replay"))
    done = models.PositiveIntegerField(default=0, verbose_name=_("replayed"))
    results = models.JSONField(null=True, blank=True, editable=False, verbose_name=_("results"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    seconds = models.FloatField(null=True, blank=True, verbose_name=_("seconds"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    created_by = operator_field(_("created by"))

    class Meta:
        verbose_name = _("simulation")
        verbose_name_plural = _("simulations")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="sim_period")
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.start:%Y-%m-%d} – {self.end:%Y-%m-%d}"

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0
