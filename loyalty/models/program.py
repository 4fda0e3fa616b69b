import uuid

from django.db import models


class Program(models.Model):
    """The program's own settings: one row (pk=1).

    ``revision`` is renewed with every operator change to actions, rules, tiers or privileges;
    each process compares it with the revision it compiled and recompiles when it differs. A
    fresh random value (not a counter) cannot repeat after a rolled-back change.
    """

    class UnknownMembers(models.TextChoices):
        CREATE = "create", "Create the member on the fly"
        REFUSE = "refuse", "Refuse the event (member_not_found)"

    name = models.CharField(max_length=100, default="Loyalty program")
    unknown_members = models.CharField(
        max_length=10, choices=UnknownMembers.choices, default=UnknownMembers.CREATE
    )
    revision = models.UUIDField(default=uuid.uuid4, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "program settings"
        verbose_name_plural = "program settings"
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="program_singleton")]

    def __str__(self) -> str:
        return self.name
