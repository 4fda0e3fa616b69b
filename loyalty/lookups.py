"""``field__any=values``: membership in a list passed as one array parameter.

``field__in=values`` writes one placeholder per value, so a batch's 500 ids make a statement of
thousands of characters that the driver parses again every time (its cache keeps short
statements only). On PostgreSQL ``field = ANY(%s)`` has the same plan and a text that does not
grow with the list; elsewhere the lookup is ``IN``.
"""

from django.db.models import Field, ForeignObject, Lookup
from django.db.models.lookups import In

from core import sql


@Field.register_lookup
@ForeignObject.register_lookup
class Any(Lookup):
    lookup_name = "any"

    def get_prep_lookup(self):
        return [self.lhs.output_field.get_prep_value(value) for value in self.rhs]

    def as_sql(self, compiler, connection):
        return In(self.lhs, self.rhs).as_sql(compiler, connection)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        kind = sql.cast_type(self.lhs.output_field, connection.alias)
        return f"{lhs} = ANY(%s::{kind}[])", [*lhs_params, list(self.rhs)]
