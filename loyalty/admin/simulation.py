"""Simulations in the admin: choose a draft (or the live program) and a period, run it in a
worker with a progress bar, cancel it, and read — now or later — its figures beside what
actually happened, with charts."""

from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.tasks import queue_after_commit
from loyalty.insight.dashboard import Series
from loyalty.models import SimulationRun
from loyalty.simulation.runs import comparison, liability, simulation_cancel


class SimulationForm(forms.ModelForm):
    class Meta:
        model = SimulationRun
        fields = ["draft", "start", "end"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        now = timezone.now().replace(second=0, microsecond=0)
        if "start" in self.fields:  # a new run (a past one is only read)
            self.fields["start"].initial = now - timedelta(days=30)
            self.fields["end"].initial = now

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end and end <= start:
            self.add_error(
                "end",
                forms.ValidationError(_("The period must end after it starts."), code="period"),
            )
        return data


def _chart(section: dict, index: int) -> Series:
    rows = [row for row in section["rows"] if row["actual"] or row["simulated"]]
    return Series(
        id=f"sim-{index}",
        kind="bar",
        labels=[row["label"] for row in rows],
        lines={
            gettext("actual"): [row["actual"] for row in rows],
            gettext("simulated"): [row["simulated"] for row in rows],
        },
    )


@admin.register(SimulationRun)
class SimulationRunAdmin(admin.ModelAdmin):
    form = SimulationForm
    list_display = ["label", "start", "end", "status", "progress", "seconds", "created_at"]
    list_filter = ["status"]
    actions = ["cancel"]
    readonly_fields = ["label", "status", "progress", "seconds", "error", "results_view"]

    class Media:
        css = {"all": ["loyalty/console.css", "loyalty/drafts.css"]}
        js = ["loyalty/vendor/chartjs/chart.umd.min.js", "loyalty/console.js"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["draft", "start", "end"]
        return [
            "label",
            "draft",
            "start",
            "end",
            "status",
            "progress",
            "seconds",
            "error",
            "results_view",
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [*self.readonly_fields, "draft", "start", "end"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        obj.created_by = request.user
        if obj.draft is not None:
            obj.definition, obj.label = obj.draft.definition, obj.draft.name
        else:
            obj.label = gettext("The live program")
        super().save_model(request, obj, form, change)
        queue_after_commit("loyalty.simulate_program", obj.pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        running = run is not None and run.status in ("queued", "running")
        extra_context = {**(extra_context or {}), "refresh": running}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("progress"))
    def progress(self, run: SimulationRun) -> str:
        return render_to_string("admin/loyalty/simulation_progress.html", {"run": run})

    @admin.display(description=_("results"))
    def results_view(self, run: SimulationRun) -> str:
        if not run.results:
            return "–"
        sections = comparison(run.results)
        change = liability(run.results["simulated"]) - liability(run.results["actual"])
        charted = {"rule_points", "action_points", "tiers"}
        return render_to_string(
            "admin/loyalty/simulation_results.html",
            {
                "run": run,
                "sections": [
                    {**section, "series": _chart(section, i) if section["key"] in charted else None}
                    for i, section in enumerate(sections)
                ],
                "replayed": run.results["replayed"],
                "moves": run.results["tier_moves"],
                "changed": run.results["most_changed"],
                "liability_change": change,
                "liability_money": (change * Decimal(run.results["point_value"])).quantize(
                    Decimal("0.01")
                ),
                "money": run.results["money"],
            },
        )

    @admin.action(description=_("Cancel the simulation"))
    def cancel(self, request, queryset) -> None:
        for run in queryset:
            simulation_cancel(run)
        self.message_user(request, gettext("Cancellation asked for."), messages.SUCCESS)
