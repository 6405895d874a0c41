"""The unit of work a change records through: what `update` saves and answers, and the order and all-or-nothing of
the events and audit entries a change set writes."""

import json
from contextlib import suppress
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core import changes as change_sets
from core.audit.actions import AuditAction, UndeclaredAuditAction
from core.audit.tree import log_size
from core.changes import ChangeSet, diff, given
from core.errors import InvalidInput
from core.events import EventType
from core.models import AuditEntry, Event
from core.services import validated
from governance.registry.models import RegisteredModel
from tests.artifacts.factories import GroupFactory, ProjectFactory, PublisherFactory
from tests.governance.factories import RegisteredModelFactory

pytestmark = pytest.mark.django_db


def _updates(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if query["sql"].startswith("UPDATE")]


def _written(since_event: int, since_seq: int) -> tuple[list[str], list[str]]:
    """The types of the events and the actions of the entries written since, each in the order written."""
    events = Event.objects.filter(pk__gt=since_event).order_by("pk").values_list("type", flat=True)
    entries = AuditEntry.objects.filter(seq__gte=since_seq).order_by("seq").values_list("action", flat=True)
    return list(events), list(entries)


def _last_event_id() -> int:
    return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# update --------------------------------------------------------------------------------------------------------


def test_update_answers_what_changed_as_before_and_after_and_saves_only_that():
    project = ProjectFactory(name="Churn", description="Same")

    with transaction.atomic(), ChangeSet() as changes, CaptureQueriesContext(connection) as queries:
        changed = changes.update(project, name="Churn models", description="Same")

    assert changed == {"name": ["Churn", "Churn models"]}
    (update,) = _updates(queries)
    assert '"name"' in update
    assert '"description"' not in update
    project.refresh_from_db()
    assert project.name == "Churn models"


def test_update_with_nothing_changed_neither_checks_nor_saves():
    project = ProjectFactory(name="Churn")
    checked = []

    with transaction.atomic(), ChangeSet() as changes, CaptureQueriesContext(connection) as queries:
        changed = changes.update(project, validate=checked.append, name="Churn")

    assert changed == {}
    assert checked == []
    assert queries.captured_queries == []


def test_update_checks_the_new_values_before_saving_them():
    project = ProjectFactory(name="Churn")

    with pytest.raises(InvalidInput), transaction.atomic(), ChangeSet() as changes:
        changes.update(project, validate=validated, name="x" * 1000)

    project.refresh_from_db()
    assert project.name == "Churn"


def test_update_compares_a_relation_by_its_key_without_loading_the_row_it_points_at():
    model = RegisteredModel.objects.get(pk=RegisteredModelFactory().pk)
    creator_id, successor = model.created_by_id, PublisherFactory()

    with transaction.atomic(), ChangeSet() as changes, CaptureQueriesContext(connection) as queries:
        changed = changes.update(model, created_by=successor)

    assert changed == {"created_by": [creator_id, successor.pk]}
    assert [query["sql"].split()[0] for query in queries.captured_queries] == ["UPDATE"]
    assert model.created_by == successor


def test_update_saves_the_time_the_model_stamps_on_every_save_along_with_a_change():
    model = RegisteredModelFactory(description="Before")
    stamped = model.updated_at
    RegisteredModel.objects.filter(pk=model.pk).update(updated_at=stamped - timedelta(days=1))

    with transaction.atomic(), ChangeSet() as changes:
        changes.update(model, description="After")

    model.refresh_from_db()
    assert model.description == "After"
    assert model.updated_at >= stamped


def test_diff_changes_nothing_on_the_instance():
    project = ProjectFactory(name="Churn")

    assert diff(project, name="Renamed", slug=project.slug) == {"name": ["Churn", "Renamed"]}
    assert project.name == "Churn"


def test_given_leaves_out_the_values_a_partial_update_was_not_given():
    assert given(name="Churn", description=None, restricted=False) == {"name": "Churn", "restricted": False}


# Events, then entries --------------------------------------------------------------------------------------------


def test_the_events_are_written_before_the_entries_each_in_the_order_given(monkeypatch):
    project = ProjectFactory()
    writes = []
    emit, record = change_sets.events_emit, change_sets.audit_record_many

    def emit_and_note(specs, **kwargs):
        writes.extend(("event", spec.type) for spec in specs)
        return emit(specs, **kwargs)

    def record_and_note(acts, **kwargs):
        writes.extend(("entry", act.action) for act in acts)
        return record(acts, **kwargs)

    monkeypatch.setattr(change_sets, "events_emit", emit_and_note)
    monkeypatch.setattr(change_sets, "audit_record_many", record_and_note)
    since_event, since_seq = _last_event_id(), log_size()

    with transaction.atomic(), ChangeSet() as changes:
        changes.audit(AuditAction.PROJECT_UPDATED, obj=project, changes={"name": ["a", "b"]})
        changes.event(EventType.BLOB_VERIFIED, project=project, data={})
        changes.audit(AuditAction.ARTIFACT_UPDATED, obj=project)
        changes.event(EventType.BLOB_CORRUPT, project=project, data={})
        assert writes == []

    assert writes == [
        ("event", EventType.BLOB_VERIFIED),
        ("event", EventType.BLOB_CORRUPT),
        ("entry", AuditAction.PROJECT_UPDATED),
        ("entry", AuditAction.ARTIFACT_UPDATED),
    ]
    assert _written(since_event, since_seq) == (
        ["blob.verified", "blob.corrupt"],
        ["project.updated", "artifact.updated"],
    )


def test_an_entry_is_the_one_audit_record_would_write():
    project = ProjectFactory(slug="churn")
    since = log_size()

    with transaction.atomic(), ChangeSet() as changes:
        changes.audit(AuditAction.PROJECT_UPDATED, obj=project, changes={"name": ["Churn", "Churn models"]})

    entry = AuditEntry.objects.get(seq=since)
    assert (entry.object_type, entry.object_id, entry.project_label) == ("project", str(project.pk), "churn")
    assert json.loads(entry.changes) == {"name": ["Churn", "Churn models"]}


def test_an_object_is_described_as_it_was_when_given_so_a_row_deleted_afterwards_keeps_its_id():
    doomed = GroupFactory(name="contractors")
    doomed_id = doomed.pk
    since = log_size()

    with transaction.atomic(), ChangeSet() as changes:
        changes.audit(AuditAction.ROLE_GRANT_REVOKED, obj=doomed)
        doomed.delete()

    entry = AuditEntry.objects.get(seq=since)
    assert (entry.object_id, entry.object_label) == (str(doomed_id), "contractors")


def test_an_undeclared_action_is_refused_when_given_before_anything_is_written():
    project = ProjectFactory()
    since_event, since_seq = _last_event_id(), log_size()

    with transaction.atomic():
        with suppress(UndeclaredAuditAction), ChangeSet() as changes:
            changes.event(EventType.BLOB_VERIFIED, project=project, data={})
            changes.audit("project.renamed", obj=project)
            pytest.fail("the change set took an action AuditAction does not declare")

        assert _written(since_event, since_seq) == ([], [])


# Nothing, when the change fails ----------------------------------------------------------------------------------


def _rename_then_fail(project) -> None:
    with transaction.atomic(), ChangeSet() as changes:
        changes.update(project, name="Renamed")
        changes.event(EventType.BLOB_VERIFIED, project=project, data={})
        changes.audit(AuditAction.PROJECT_UPDATED, obj=project)
        raise RuntimeError("a later step failed")


def test_a_block_that_raises_writes_no_event_and_no_entry_and_its_transaction_undoes_its_updates():
    project = ProjectFactory(name="Churn")
    since_event, since_seq = _last_event_id(), log_size()

    with pytest.raises(RuntimeError):
        _rename_then_fail(project)

    assert _written(since_event, since_seq) == ([], [])
    assert log_size() == since_seq
    project.refresh_from_db()
    assert project.name == "Churn"


def test_a_block_that_raises_writes_nothing_even_when_its_caller_goes_on():
    project = ProjectFactory()
    since_event, since_seq = _last_event_id(), log_size()

    with transaction.atomic():
        with suppress(RuntimeError), ChangeSet() as changes:
            changes.event(EventType.BLOB_VERIFIED, project=project, data={})
            changes.audit(AuditAction.PROJECT_UPDATED, obj=project)
            raise RuntimeError("refused")

        assert _written(since_event, since_seq) == ([], [])


# Services within services ----------------------------------------------------------------------------------------


def test_a_change_set_opened_inside_another_hands_it_what_it_holds_and_the_outer_one_writes_events_first():
    project = ProjectFactory()
    since_event, since_seq = _last_event_id(), log_size()

    with transaction.atomic(), ChangeSet() as outer:
        outer.audit(AuditAction.PROJECT_UPDATED, obj=project)
        with ChangeSet() as inner:
            inner.audit(AuditAction.ROLE_GRANT_GRANTED, obj=project)
            inner.event(EventType.BLOB_VERIFIED, project=project, data={})
        assert _written(since_event, since_seq) == ([], [])
        outer.event(EventType.BLOB_CORRUPT, project=project, data={})
        outer.audit(AuditAction.ARTIFACT_UPDATED, obj=project)

    assert _written(since_event, since_seq) == (
        ["blob.verified", "blob.corrupt"],
        ["project.updated", "role_grant.granted", "artifact.updated"],
    )


def test_an_inner_change_set_that_raises_hands_nothing_to_the_outer_one():
    project = ProjectFactory()
    since_event, since_seq = _last_event_id(), log_size()

    with transaction.atomic(), ChangeSet() as outer:
        with suppress(RuntimeError), transaction.atomic(), ChangeSet() as inner:
            inner.event(EventType.BLOB_VERIFIED, project=project, data={})
            inner.audit(AuditAction.ROLE_GRANT_GRANTED, obj=project)
            raise RuntimeError("the inner service refused")
        outer.audit(AuditAction.PROJECT_UPDATED, obj=project)

    assert _written(since_event, since_seq) == ([], ["project.updated"])


def test_a_change_set_records_only_inside_the_transaction_of_its_change(monkeypatch):
    # Every test runs in a transaction: this one stands for code that opened none (autocommit).
    monkeypatch.setattr(transaction.get_connection(), "in_atomic_block", False)

    with pytest.raises(RuntimeError, match="inside the transaction"):
        ChangeSet().__enter__()
