"""Database triggers that make rows immutable, as migration operations.

Model code and the API already refuse these changes; the trigger is the last line, so a raw
`QuerySet.update()`, a shell session or another client of the database cannot rewrite history either.
Both backends raise an integrity error, which Django surfaces as `django.db.IntegrityError`.

SQLite drops a table's triggers when a migration rebuilds the table: a later migration that alters a
protected table must run this operation again, with `reinstall=True` (the trigger tests catch a forgotten one).
Reinstalling drops the trigger where it survived (PostgreSQL alters a table in place) and creates it afresh, so
both backends end with the same one; undone, it leaves the trigger to the migration that first made it.
"""

from django.db import NotSupportedError
from django.db.migrations.operations.base import Operation


class RefuseUpdate(Operation):
    """Refuse every UPDATE of the model's table, or only those that change `columns`, or only those of rows
    for which `when_old` (SQL about OLD, valid on both backends) holds. `name` tells two triggers on one
    table apart."""

    reversible = True
    reduces_to_sql = False
    event = "UPDATE"

    def __init__(
        self,
        model_name: str,
        message: str,
        columns: tuple[str, ...] = (),
        when_old: str = "",
        name: str = "",
        reinstall: bool = False,
    ) -> None:
        self.model_name = model_name
        self.message = message
        self.columns = tuple(columns)
        self.when_old = when_old
        self.name = name or f"refuse_{self.event.lower()}"
        self.reinstall = reinstall

    def deconstruct(self):
        kwargs = {"model_name": self.model_name, "message": self.message}
        for attribute in ("columns", "when_old", "name", "reinstall"):
            if getattr(self, attribute):
                kwargs[attribute] = getattr(self, attribute)
        return (self.__class__.__qualname__, [], kwargs)

    def state_forwards(self, app_label, state) -> None:
        """Triggers live only in the database; the migration state does not change."""

    def describe(self) -> str:
        return f"Refuse {self.event.lower()}s of {self.model_name}"

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.name}_{self.model_name.lower()}"

    def _names(self, app_label, schema_editor, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        table = model._meta.db_table
        return table, f"{table}_{self.name}"

    def _condition(self, quote) -> str:
        """The trigger's WHEN condition in PostgreSQL's spelling, or "" for every row."""
        parts = []
        if self.columns:
            parts.append(" OR ".join(f"NEW.{quote(c)} IS DISTINCT FROM OLD.{quote(c)}" for c in self.columns))
        if self.when_old:
            parts.append(self.when_old)
        return " AND ".join(f"({part})" for part in parts)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if self.reinstall:
            self._drop(app_label, schema_editor, to_state)
        table, trigger = self._names(app_label, schema_editor, to_state)
        quote = schema_editor.quote_name
        vendor = schema_editor.connection.vendor
        message = self.message.replace("'", "''")
        condition = self._condition(quote)
        if vendor == "postgresql":
            when = f"WHEN ({condition})" if condition else ""
            schema_editor.execute(
                f"CREATE OR REPLACE FUNCTION {quote(trigger)}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation'; END $$"
            )
            schema_editor.execute(
                f"CREATE TRIGGER {quote(trigger)} BEFORE {self.event} ON {quote(table)} "
                f"FOR EACH ROW {when} EXECUTE FUNCTION {quote(trigger)}()"
            )
        elif vendor == "sqlite":
            # SQLite spells IS DISTINCT FROM as IS NOT.
            when = f"WHEN {condition.replace('IS DISTINCT FROM', 'IS NOT')}" if condition else ""
            schema_editor.execute(
                f"CREATE TRIGGER {quote(trigger)} BEFORE {self.event} ON {quote(table)} FOR EACH ROW {when} "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        else:
            raise NotSupportedError(f"No immutability trigger for the {vendor} backend.")

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not self.reinstall:
            self._drop(app_label, schema_editor, from_state)

    def _drop(self, app_label, schema_editor, state) -> None:
        table, trigger = self._names(app_label, schema_editor, state)
        quote = schema_editor.quote_name
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {quote(trigger)}"
            + (f" ON {quote(table)}" if schema_editor.connection.vendor == "postgresql" else "")
        )
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {quote(trigger)}()")


class RefuseDelete(RefuseUpdate):
    """Refuse every DELETE from the model's table: what the record holds is never removed.

    pytest-django flushes SQLite tables with DELETE, so tests that need a flush (transactional tests)
    of such tables run on PostgreSQL, whose flush is a TRUNCATE that row triggers do not see.
    """

    event = "DELETE"

    def __init__(self, model_name: str, message: str, name: str = "", reinstall: bool = False) -> None:
        super().__init__(model_name, message, name=name, reinstall=reinstall)
