"""The ledger is append-only: PostgreSQL refuses UPDATE and DELETE on its rows.

Only on PostgreSQL, the production database. (SQLite's test runner empties tables with DELETE
between tests, which such a trigger would refuse; TRUNCATE, which PostgreSQL's uses, is not
row-level and passes.)
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION loyalty_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'loyalty_ledgerentry is append-only: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER loyalty_ledger_append_only
    BEFORE UPDATE OR DELETE ON loyalty_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION loyalty_ledger_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS loyalty_ledger_append_only ON loyalty_ledgerentry;
DROP FUNCTION IF EXISTS loyalty_ledger_refuse_change();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


def create_program(apps, schema_editor):
    apps.get_model("loyalty", "Program").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    operations = [
        migrations.RunPython(create_trigger, drop_trigger),
        migrations.RunPython(create_program, migrations.RunPython.noop),
    ]
