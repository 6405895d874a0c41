"""Applying plans: acts only on what the plan lists, weighs protections again, finishes after a crash, and refuses
superseded plans."""

import json

import pytest
from django.utils import timezone

from artifacts.models import Blob, VersionTombstone
from core.errors import Conflict, NotAllowed
from core.models import AuditEntry
from governance.lifecycle.models import RetentionPlan, RetentionPlanItem
from governance.lifecycle.services import plans
from governance.lifecycle.services.holds import legal_hold_place
from governance.lifecycle.services.plans import retention_plan_apply, retention_plan_create
from governance.registry.services.registry import model_alias_set
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory
from tests.governance.lifecycle.retention import item_of, rules_in_force
from tests.governance.registry.promotions import maintainer_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def maintainer(project):
    return maintainer_of(project)


def planned(project, maintainer, count: int = 3, action: str = "delete") -> tuple[RetentionPlan, list]:
    artifact = ArtifactFactory(project=project)
    versions = [ArtifactVersionFactory(artifact=artifact) for _ in range(count)]
    rules_in_force(project, {"name": "sweep", "action": action})
    return retention_plan_create(project=project, created_by=maintainer), versions


def test_applying_deletes_each_listed_version_keeping_a_tombstone_and_collects_its_bytes(project, maintainer):
    plan, versions = planned(project, maintainer)
    plan = retention_plan_apply(plan=plan, applied_by=maintainer)
    assert plan.state == RetentionPlan.State.APPLIED
    assert plan.applied_at is not None
    for version in versions:
        tombstone = VersionTombstone.objects.get(artifact_version=version)
        assert (tombstone.rule, tombstone.plan_id, tombstone.deleted_by) == ("sweep", plan.pk, maintainer)
        assert Blob.objects.get(pk=version.blob_id).collected_at is not None
        item = item_of(plan, version)
        assert (item.state, item.outcome) == ("done", "Deleted. Its bytes left storage.")
        assert item.done_at is not None


def test_applying_records_the_plan_applied_with_what_it_did(project, maintainer):
    plan, _ = planned(project, maintainer, count=2)
    retention_plan_apply(plan=plan, applied_by=maintainer)
    entry = AuditEntry.objects.get(action="retention_plan.applied", object_id=str(plan.pk))
    assert json.loads(entry.changes)["deleted"] == 2
    assert entry.actor_user_id == maintainer.pk
    assert AuditEntry.objects.filter(action="retention_plan.created", object_id=str(plan.pk)).exists()


def test_kept_items_are_left_alone(project, maintainer):
    model = RegisteredModelFactory(project=project, name="fraud-model")
    served = ModelVersionFactory(
        registered_model=model, artifact_version=ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    )
    model_alias_set(registered_model=model, name="champion", model_version=served, set_by=model.created_by)
    plan, _ = planned(project, maintainer, count=1)
    retention_plan_apply(plan=plan, applied_by=maintainer)
    assert not VersionTombstone.objects.filter(artifact_version=served.artifact_version).exists()
    assert item_of(plan, served.artifact_version).state == "skipped"


def test_applying_an_applied_plan_does_nothing_more(project, maintainer):
    plan, _ = planned(project, maintainer)
    retention_plan_apply(plan=plan, applied_by=maintainer)
    entries = AuditEntry.objects.count()
    again = retention_plan_apply(plan=plan, applied_by=maintainer)
    assert again.state == RetentionPlan.State.APPLIED
    assert AuditEntry.objects.count() == entries


def test_a_new_plan_supersedes_the_unapplied_one_which_can_no_longer_be_applied(project, maintainer):
    older, versions = planned(project, maintainer)
    newer = retention_plan_create(project=project, created_by=maintainer)
    older.refresh_from_db()
    assert older.state == RetentionPlan.State.SUPERSEDED
    with pytest.raises(Conflict, match=f"superseded by plan #{newer.pk}"):
        retention_plan_apply(plan=older, applied_by=maintainer)
    assert not VersionTombstone.objects.filter(artifact_version__in=versions).exists()


def test_an_applied_plan_is_not_superseded(project, maintainer):
    plan, _ = planned(project, maintainer)
    retention_plan_apply(plan=plan, applied_by=maintainer)
    retention_plan_create(project=project, created_by=maintainer)
    plan.refresh_from_db()
    assert plan.state == RetentionPlan.State.APPLIED


def test_only_maintainers_plan_and_apply(project, maintainer):
    contributor = grant("contributor", on=project).user
    with pytest.raises(NotAllowed, match="needs the maintainer role"):
        retention_plan_create(project=project, created_by=contributor)
    plan, _ = planned(project, maintainer)
    with pytest.raises(NotAllowed, match="needs the maintainer role"):
        retention_plan_apply(plan=plan, applied_by=contributor)


def test_a_version_aliased_since_planning_is_skipped_saying_why(project, maintainer):
    model = RegisteredModelFactory(project=project, name="fraud-model")
    plan, versions = planned(project, maintainer, count=2)
    registered = ModelVersionFactory(registered_model=model, artifact_version=versions[0])
    model_alias_set(registered_model=model, name="champion", model_version=registered, set_by=model.created_by)
    retention_plan_apply(plan=plan, applied_by=maintainer)
    item = item_of(plan, versions[0])
    assert (item.state, item.outcome) == (
        "skipped",
        "Skipped: protected since planning (alias 'champion' of fraud-model).",
    )
    assert not VersionTombstone.objects.filter(artifact_version=versions[0]).exists()
    assert VersionTombstone.objects.filter(artifact_version=versions[1]).exists()


def test_a_version_held_since_planning_is_skipped(project, maintainer):
    plan, versions = planned(project, maintainer, count=1)
    hold = legal_hold_place(project=project, reason="Subpoena", placed_by=UserFactory(is_superuser=True))
    retention_plan_apply(plan=plan, applied_by=maintainer)
    assert item_of(plan, versions[0]).outcome == f"Skipped: protected since planning (legal hold #{hold.pk})."
    assert not VersionTombstone.objects.exists()


def test_a_crash_half_way_is_finished_by_applying_again_without_doing_anything_twice(project, maintainer, monkeypatch):
    plan, versions = planned(project, maintainer, count=5)
    monkeypatch.setattr(plans, "APPLY_BATCH", 2)
    real_delete, calls = plans.versions_delete, []

    def delete_then_crash(**kwargs):
        calls.append([deletion.version.pk for deletion in kwargs["deletions"]])
        tombstones = real_delete(**kwargs)
        if len(calls) == 2:
            raise OSError("worker lost mid-batch")
        return tombstones

    monkeypatch.setattr(plans, "versions_delete", delete_then_crash)
    with pytest.raises(OSError, match="worker lost"):
        retention_plan_apply(plan=plan, applied_by=maintainer)
    plan.refresh_from_db()
    assert plan.state == RetentionPlan.State.APPLYING
    # The first batch was done; the second rolled back whole, its deletions included.
    assert plan.items.filter(state="done").count() == 2
    assert VersionTombstone.objects.filter(artifact_version__in=versions).count() == 2

    plan = retention_plan_apply(plan=plan, applied_by=maintainer)
    assert plan.state == RetentionPlan.State.APPLIED
    assert set(plan.items.values_list("state", flat=True)) == {"done"}
    assert VersionTombstone.objects.filter(artifact_version__in=versions, plan_id=plan.pk).count() == 5
    assert AuditEntry.objects.filter(action="artifact_version.deleted").count() == 5
    assert Blob.objects.filter(pk__in=[v.blob_id for v in versions], collected_at__isnull=False).count() == 5


def test_a_crash_after_the_deletions_leaves_them_done_and_their_bytes_to_the_collector(
    project, maintainer, monkeypatch
):
    plan, versions = planned(project, maintainer, count=2)

    def lost(*, blob_ids: list[int]) -> list[int]:
        raise OSError("storage unreachable")

    monkeypatch.setattr(plans, "blobs_collect_batch", lost)
    with pytest.raises(OSError, match="storage unreachable"):
        retention_plan_apply(plan=plan, applied_by=maintainer)
    assert set(plan.items.values_list("state", "outcome")) == {("done", "Deleted.")}
    monkeypatch.undo()
    plan = retention_plan_apply(plan=plan, applied_by=maintainer)
    assert plan.state == RetentionPlan.State.APPLIED
    assert VersionTombstone.objects.filter(artifact_version__in=versions).count() == 2


def test_one_plan_of_a_project_is_applied_at_a_time(project, maintainer):
    first, _ = planned(project, maintainer)
    RetentionPlan.objects.filter(pk=first.pk).update(state="applying", apply_started_at=timezone.now())
    second = retention_plan_create(project=project, created_by=maintainer)
    with pytest.raises(Conflict, match=f"Plan #{first.pk} .* is being applied"):
        retention_plan_apply(plan=second, applied_by=maintainer)


def test_archiving_on_local_storage_says_nothing_moved(project, maintainer):
    plan, versions = planned(project, maintainer, count=1, action="archive")
    retention_plan_apply(plan=plan, applied_by=maintainer)
    item = item_of(plan, versions[0])
    assert item.state == "done"
    assert item.outcome.startswith("Not archived")
    assert not VersionTombstone.objects.exists()


def test_items_keep_their_version_rows_after_deletion(project, maintainer):
    plan, versions = planned(project, maintainer, count=1)
    retention_plan_apply(plan=plan, applied_by=maintainer)
    assert RetentionPlanItem.objects.get(plan=plan).artifact_version.pk == versions[0].pk
