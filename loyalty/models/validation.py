"""Database constraints an operator can trip, shown on the field they concern."""

from django.core.exceptions import ValidationError
from django.db import models


def check_constraints_on_fields(instance: models.Model, fields: dict[str, str]) -> None:
    """Check the instance against its model's constraints named in ``fields`` (constraint name →
    field) and raise each violation's message on its field. Called from ``clean()``: the
    constraints' own check then skips those fields, so an operator reads a plain sentence beside
    the field, never "Constraint … is violated"."""
    errors: dict[str, list[str]] = {}
    for constraint in instance._meta.constraints:
        field = fields.get(constraint.name)
        if field is None:
            continue
        try:
            constraint.validate(type(instance), instance)
        except ValidationError as error:
            errors.setdefault(field, []).extend(error.messages)
    if errors:
        raise ValidationError(errors)
