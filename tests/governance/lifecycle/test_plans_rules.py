"""Which versions a plan selects: each rule criterion, the first matching rule, and what a plan counts."""

import pytest
from django.utils import timezone

from artifacts.models import Artifact, Blob, Run
from artifacts.services import run_update
from artifacts.services.lifecycle import version_delete
from governance.lifecycle.models import RetentionPlan
from governance.lifecycle.services.plans import retention_plan_create
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
)
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory
from tests.governance.lifecycle.retention import days_ago, item_of, rules_in_force, selected
from tests.governance.registry.promotions import maintainer_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory()


def plan(project) -> RetentionPlan:
    return retention_plan_create(project=project, created_by=maintainer_of(project))


def versions(artifact, count: int) -> list:
    return [ArtifactVersionFactory(artifact=artifact) for _ in range(count)]


def test_an_archive_rule_without_criteria_selects_every_live_version(project):
    everything = versions(ArtifactFactory(project=project), 3)
    rules_in_force(project, {"name": "all", "action": "archive", "run_statuses": ["none", *Run.Status.values]})
    assert selected(plan(project)) == set(everything)


def test_run_status_none_selects_versions_produced_by_no_run(project):
    artifact = ArtifactFactory(project=project)
    without_run = ArtifactVersionFactory(artifact=artifact)
    ArtifactVersionFactory(artifact=artifact, run=RunFactory(project=project))
    rules_in_force(project, {"name": "orphans", "run_statuses": ["none"]})
    assert selected(plan(project)) == {without_run}


def test_older_than_days_selects_only_older_versions(project):
    artifact = ArtifactFactory(project=project)
    with days_ago(40):
        old = ArtifactVersionFactory(artifact=artifact)
    with days_ago(29):
        ArtifactVersionFactory(artifact=artifact)
    rules_in_force(project, {"name": "old", "older_than_days": 30})
    assert selected(plan(project)) == {old}


def test_keep_last_versions_keeps_each_artifacts_newest(project):
    first, second = ArtifactFactory(project=project), ArtifactFactory(project=project)
    oldest = versions(first, 3)[0]
    versions(second, 2)
    rules_in_force(project, {"name": "keep-two", "keep_last_versions": 2})
    assert selected(plan(project)) == {oldest}


def test_keep_last_versions_counts_only_versions_not_deleted(project):
    newest = versions(ArtifactFactory(project=project), 3)[-1]
    version_delete(version=newest, deleted_by=None, reason="Test: deleted by hand.")
    rules_in_force(project, {"name": "keep-two", "keep_last_versions": 2})
    assert selected(plan(project)) == set()


def test_kinds_name_artifact_kinds_and_datasets(project):
    checkpoint = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, kind=Artifact.Kind.CHECKPOINT))
    ArtifactVersionFactory(artifact=ArtifactFactory(project=project, kind=Artifact.Kind.MODEL))
    snapshot = DatasetVersionFactory(dataset=DatasetFactory(project=project))
    rules_in_force(project, {"name": "scratch", "kinds": ["checkpoint", "dataset"], "keep_last_runs": 1000})
    assert selected(plan(project)) == {checkpoint, snapshot}


def test_run_statuses_select_what_failed_runs_produced(project):
    artifact = ArtifactFactory(project=project)
    failed = RunFactory(project=project)
    run_update(run=failed, status=Run.Status.FAILED, failure_reason="OOM")
    from_failed = ArtifactVersionFactory(artifact=artifact, run=failed)
    ArtifactVersionFactory(artifact=artifact, run=RunFactory(project=project))
    ArtifactVersionFactory(artifact=artifact)
    rules_in_force(project, {"name": "failed", "run_statuses": ["failed"]})
    assert selected(plan(project)) == {from_failed}


def test_keep_last_runs_keeps_what_the_latest_runs_produced(project):
    artifact = ArtifactFactory(project=project)
    runs = [RunFactory(project=project, started_at=timezone.now()) for _ in range(3)]
    produced = [ArtifactVersionFactory(artifact=artifact, run=run) for run in runs]
    no_run = ArtifactVersionFactory(artifact=artifact)
    rules_in_force(project, {"name": "last-two-runs", "keep_last_runs": 2})
    assert selected(plan(project)) == {produced[0], no_run}


def test_stages_select_versions_by_their_registry_stage(project):
    model = RegisteredModelFactory(project=project)
    registered = ModelVersionFactory(registered_model=model).artifact_version
    unregistered = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    stage_only = {"run_statuses": ["none", "running", "completed", "failed"]}
    rules_in_force(project, {"name": "unregistered", "stages": ["none"], **stage_only})
    assert {registered, unregistered} <= selected(plan(project))
    rules_in_force(project, {"name": "archived-only", "stages": ["archived"], **stage_only})
    assert selected(plan(project)) == set()


def test_the_first_rule_that_matches_decides(project):
    artifact = ArtifactFactory(project=project, kind=Artifact.Kind.CHECKPOINT)
    with days_ago(100):
        oldest = ArtifactVersionFactory(artifact=artifact)
    newer = ArtifactVersionFactory(artifact=artifact)
    rules_in_force(
        project,
        {"name": "ancient", "action": "delete", "older_than_days": 90},
        {"name": "checkpoints", "action": "archive", "kinds": ["checkpoint"]},
    )
    made = plan(project)
    assert (item_of(made, oldest).rule, item_of(made, oldest).action) == ("ancient", "delete")
    assert (item_of(made, newer).rule, item_of(made, newer).action) == ("checkpoints", "archive")
    assert (made.versions_to_delete, made.versions_to_archive) == (1, 1)


def test_deleted_and_external_versions_are_not_planned_again(project):
    artifact = ArtifactFactory(project=project)
    gone, live = versions(artifact, 2)
    version_delete(version=gone, deleted_by=None, reason="Test: deleted before.")
    rules_in_force(project, {"name": "all"})
    assert selected(plan(project)) == {live}


def test_bytes_reclaimable_leaves_out_blobs_another_project_still_uses(project):
    shared = b"shared bytes between two projects"
    here = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), content=shared)
    elsewhere = ProjectFactory()
    ArtifactVersionFactory(artifact=ArtifactFactory(project=elsewhere), content=shared)
    own = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    rules_in_force(project, {"name": "all"})
    made = plan(project)
    assert selected(made) == {here, own}
    assert made.bytes_selected == here.blob.size + own.blob.size
    assert made.bytes_reclaimable == own.blob.size


def test_bytes_reclaimable_counts_a_blob_shared_inside_the_delete_set_once(project):
    shared = b"same bytes, two artifacts"
    first = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), content=shared)
    ArtifactVersionFactory(artifact=ArtifactFactory(project=project), content=shared)
    rules_in_force(project, {"name": "all"})
    made = plan(project)
    assert made.versions_to_delete == 2
    assert made.bytes_reclaimable == first.blob.size


def test_a_project_without_rules_plans_nothing(project):
    versions(ArtifactFactory(project=project), 2)
    made = plan(project)
    assert (made.policy_version, made.items.count()) == (0, 0)


def test_archive_of_bytes_archived_already_is_not_planned(project):
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    Blob.objects.filter(pk=version.blob_id).update(archived_at=timezone.now(), storage_class="GLACIER_IR")
    rules_in_force(project, {"name": "cold", "action": "archive"})
    assert plan(project).items.count() == 0
