"""Database triggers that make rows immutable, as migration operations.

Model code and the API already refuse these changes; the trigger is the last line, so a raw
`QuerySet.update()`, a shell session or another client of the database cannot rewrite history either.
Both backends raise an integrity error, which Django surfaces as `django.db.IntegrityError`.

SQLite drops a table's triggers when a migration rebuilds the table: a later migration that alters a
protected table must run this operation again (the trigger tests catch a forgotten one).
"""

from django.db import NotSupportedError
from django.db.migrations.operations.base import Operation


class RefuseUpdate(Operation):
    """Refuse every UPDATE of the model's table, or only those that change `columns`."""

    reversible = True
    reduces_to_sql = False

    def __init__(self, model_name: str, message: str, columns: tuple[str, ...] = ()) -> None:
        self.model_name = model_name
        self.message = message
        self.columns = tuple(columns)

    def deconstruct(self):
        kwargs = {"model_name": self.model_name, "message": self.message}
        if self.columns:
            kwargs["columns"] = self.columns
        return (self.__class__.__qualname__, [], kwargs)

    def state_forwards(self, app_label, state) -> None:
        """Triggers live only in the database; the migration state does not change."""

    def describe(self) -> str:
        return f"Refuse updates of {self.model_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"refuse_update_{self.model_name.lower()}"

    def _names(self, app_label, schema_editor, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        table = model._meta.db_table
        return table, f"{table}_refuse_update"

    def _condition(self, quote) -> str:
        return " OR ".join(f"NEW.{quote(c)} IS DISTINCT FROM OLD.{quote(c)}" for c in self.columns)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        table, trigger = self._names(app_label, schema_editor, to_state)
        quote = schema_editor.quote_name
        vendor = schema_editor.connection.vendor
        message = self.message.replace("'", "''")
        if vendor == "postgresql":
            when = f"WHEN ({self._condition(quote)})" if self.columns else ""
            schema_editor.execute(
                f"CREATE OR REPLACE FUNCTION {quote(trigger)}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation'; END $$"
            )
            schema_editor.execute(
                f"CREATE TRIGGER {quote(trigger)} BEFORE UPDATE ON {quote(table)} "
                f"FOR EACH ROW {when} EXECUTE FUNCTION {quote(trigger)}()"
            )
        elif vendor == "sqlite":
            # SQLite spells IS DISTINCT FROM as IS NOT.
            when = f"WHEN {self._condition(quote).replace('IS DISTINCT FROM', 'IS NOT')}" if self.columns else ""
            schema_editor.execute(
                f"CREATE TRIGGER {quote(trigger)} BEFORE UPDATE ON {quote(table)} FOR EACH ROW {when} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        else:
            raise NotSupportedError(f"No immutability trigger for the {vendor} backend.")

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        table, trigger = self._names(app_label, schema_editor, from_state)
        quote = schema_editor.quote_name
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {quote(trigger)}"
            + (f" ON {quote(table)}" if schema_editor.connection.vendor == "postgresql" else "")
        )
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {quote(trigger)}()")
