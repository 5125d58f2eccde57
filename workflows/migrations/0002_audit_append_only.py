"""On PostgreSQL, reject UPDATE, DELETE and TRUNCATE of the audit trail in the database.

The ORM already refuses (AuditEntry.save/delete and its QuerySet); this stops raw SQL
and other clients too. Superusers can still bypass it (ALTER TABLE ... DISABLE TRIGGER,
session_replication_role): that is what `audit_verify` and the hash chain are for.
"""

from typing import Any

from django.db import migrations

TABLE = "workflows_auditentry"

CREATE = f"""
CREATE OR REPLACE FUNCTION baton_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % on {TABLE} is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_entry_no_update_delete
    BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION baton_audit_append_only();

CREATE TRIGGER audit_entry_no_truncate
    BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION baton_audit_append_only();
"""

DROP = f"""
DROP TRIGGER IF EXISTS audit_entry_no_truncate ON {TABLE};
DROP TRIGGER IF EXISTS audit_entry_no_update_delete ON {TABLE};
DROP FUNCTION IF EXISTS baton_audit_append_only();
"""


def forwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def backwards(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
