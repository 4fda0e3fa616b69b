"""The console's settings operators edit: funnels. The console's pages themselves are in
``loyalty.insight.views``, routed by the admin site."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from loyalty.models import Action, Funnel


class FunnelForm(forms.ModelForm):
    steps = forms.CharField(
        label=_("steps"),
        help_text=_("Action codes in order, separated by commas, e.g. check_in, purchase."),
        widget=forms.TextInput(attrs={"size": 80}),
    )

    class Meta:
        model = Funnel
        fields = ["name", "steps"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["steps"] = ", ".join(self.instance.steps)

    def clean_steps(self) -> list[str]:
        steps = [code.strip() for code in self.cleaned_data["steps"].split(",") if code.strip()]
        if not steps:
            raise forms.ValidationError(_("Give at least one step."), code="no_steps")
        if len(steps) > 10:
            raise forms.ValidationError(_("At most ten steps."), code="too_many_steps")
        known = set(Action.objects.filter(code__in=steps).values_list("code", flat=True))
        unknown = [code for code in steps if code not in known]
        if unknown:
            raise forms.ValidationError(
                _("Unknown action: %(codes)s"),
                code="unknown_action",
                params={"codes": ", ".join(unknown)},
            )
        return steps


@admin.register(Funnel)
class FunnelAdmin(admin.ModelAdmin):
    form = FunnelForm
    list_display = ["name", "step_list", "created_at"]

    @admin.display(description=_("steps"))
    def step_list(self, funnel: Funnel) -> str:
        return " → ".join(funnel.steps)
