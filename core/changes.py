"""One unit of work for what a change records: the rows it updates, the events it announces, its audit entries.

A change's events must be written before its audit entries: the audit append locks the log's head row until the
commit (core/audit/recorder.py) while an event's deliveries take share locks on the endpoints they reference
(core/outbox.py), and nothing that may wait on another lock may follow the append. A `ChangeSet` keeps that order so
that no service has to remember it: it holds the events and entries a change gives it and, when the block ends
without an error, writes every event and then every entry, each in the order given. A block that raises writes
neither, and the transaction it runs in rolls back what it saved.

Services call services (a project's creation grants its first role, a review's decision revokes a grant, a blob's
check moves promotions through a signal), so a change set opened inside another one writes nothing itself: when its
block ends it hands what it holds to the enclosing set, and the outermost writes the whole act, events first. The
entries of an act therefore appear in the log in the order they were given, whichever service gave them.

`update` is the one computation of what an update changed: it saves only the fields that differ, naming them, and
answers the difference as the log records it ({field: [before, after]}). Core knows no domain model: all of this
works on any model instance, and the areas' event helpers build what their events say.
"""

from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Self

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import ForeignKey, Model

from core.audit.actions import AuditAction, declared_action
from core.audit.recorder import AuditAct, AuditObject, audit_object, audit_record_many
from core.outbox import EventSpec, event_emit, events_emit

#: The change set whose block is running in this thread, if any: a set opened inside it joins it.
_enclosing: ContextVar["ChangeSet | None"] = ContextVar("enclosing_change_set", default=None)


def given(**values: Any) -> dict[str, Any]:
    """The values a partial update was given: None stands for a field left as it is (a PATCH without it)."""
    return {name: value for name, value in values.items() if value is not None}


def diff(instance: Model, **fields: Any) -> dict[str, list[Any]]:
    """What setting `fields` on `instance` would change, as the log records it: {field: [before, after]}, in the
    order given, unchanged fields left out.

    A relation is compared and reported by primary key, as the log names related rows elsewhere, and the row it
    pointed at is never loaded to find out.
    """
    changed = {}
    for name, value in fields.items():
        field = instance._meta.get_field(name)
        if isinstance(field, ForeignKey):
            before, after = getattr(instance, field.attname), value.pk if isinstance(value, Model) else value
        else:
            before, after = getattr(instance, name), value
        if before != after:
            changed[name] = [before, after]
    return changed


@dataclass(frozen=True)
class _Event:
    type: str
    project: Model
    data: Mapping[str, Any]
    actor: AbstractBaseUser | None
    endpoints: Iterable[Model] | None


class ChangeSet:
    """What one change records, written in the right order when its block ends; use inside the service's
    transaction (`with transaction.atomic(), ChangeSet() as changes:`).

    Row updates (`update`) are saved at once, since the rest of the change may read them; events (`event`) and
    audit entries (`audit`) wait for the end of the block.
    """

    def __init__(self) -> None:
        self._events: list[_Event] = []
        self._entries: list[AuditAct] = []

    def __enter__(self) -> Self:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("A change set records inside the transaction of its change: open one first.")
        self._outer = _enclosing.get()
        self._token = _enclosing.set(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        _enclosing.reset(self._token)
        events, entries = self._events, self._entries
        self._events, self._entries = [], []
        if kind is not None:
            return
        if self._outer is not None:
            self._outer._events += events
            self._outer._entries += entries
            return
        # Events for the projects' subscribers are written together; one for chosen endpoints (a test event) alone.
        events_emit([EventSpec(e.type, e.project, e.data, e.actor) for e in events if e.endpoints is None])
        for event in events:
            if event.endpoints is not None:
                event_emit(
                    event.type, project=event.project, data=event.data, actor=event.actor, endpoints=event.endpoints
                )
        audit_record_many(entries)

    def update(
        self, instance: Model, /, *, validate: Callable[[Model], None] | None = None, **fields: Any
    ) -> dict[str, list[Any]]:
        """Set `fields` on `instance` (a stored row, locked by the caller) and save those that changed, naming them;
        answer what changed, as `diff` does. Nothing changed: nothing is checked or saved, and the answer is empty.

        `validate` checks the instance once it carries the new values, before they are saved (raise to refuse).
        Fields the model stamps on every save (`auto_now`) are saved along with a change, as a plain save would.
        """
        changed = diff(instance, **fields)
        if not changed:
            return changed
        for name in changed:
            setattr(instance, name, fields[name])
        if validate is not None:
            validate(instance)
        stamped = [field.name for field in instance._meta.concrete_fields if getattr(field, "auto_now", False)]
        instance.save(update_fields=[*changed, *stamped])
        return changed

    def event(
        self,
        event_type: str,
        *,
        project: Model,
        data: Mapping[str, Any],
        actor: AbstractBaseUser | None = None,
        endpoints: Iterable[Model] | None = None,
    ) -> None:
        """Announce the change: written with `core.outbox.event_emit` (which see) before any audit entry."""
        self._events.append(_Event(event_type, project, data, actor, endpoints))

    def audit(
        self,
        action: AuditAction,
        *,
        obj: Model | AuditObject,
        actor: AbstractBaseUser | None = None,
        changes: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an act with `core.audit.recorder.audit_record` (which see) once the events are written; the set's
        acts are recorded together, with one INSERT.

        The action is checked and `obj` described now, as they are at this point of the change: an undeclared
        action fails before anything is written, and a row deleted later in the change is still named by its id.
        """
        target = obj if isinstance(obj, AuditObject) else audit_object(obj)
        self._entries.append(AuditAct(declared_action(action), target, actor, dict(changes or {})))


__all__ = ["ChangeSet", "diff", "given"]
