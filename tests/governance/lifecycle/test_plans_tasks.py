"""The lifecycle's background work: the scheduled planning run, and applying a plan as a task."""

import pytest

from artifacts.models import VersionTombstone
from governance.lifecycle.models import RetentionPlan
from governance.lifecycle.services.plans import retention_plan_create
from governance.lifecycle.tasks import apply_retention_plan, plan_retention
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory
from tests.governance.lifecycle.retention import rules_in_force
from tests.governance.registry.promotions import maintainer_of

pytestmark = pytest.mark.django_db


def with_versions(count: int = 2):
    project = ProjectFactory()
    artifact = ArtifactFactory(project=project)
    return project, [ArtifactVersionFactory(artifact=artifact) for _ in range(count)]


def test_the_schedule_plans_projects_with_rules_and_applies_only_where_they_opted_in(
    django_capture_on_commit_callbacks,
):
    manual, manual_versions = with_versions()
    automatic, automatic_versions = with_versions()
    without_rules, _ = with_versions()
    rules_in_force(manual, {"name": "sweep"})
    rules_in_force(automatic, {"name": "sweep"}, auto_apply=True)

    with django_capture_on_commit_callbacks(execute=True):
        made = plan_retention()

    plans = RetentionPlan.objects.filter(pk__in=made)
    assert {plan.project for plan in plans} == {manual, automatic}
    assert {plan.trigger for plan in plans} == {"schedule"}
    assert plans.get(project=manual).state == "planned"
    applied = plans.get(project=automatic)
    assert (applied.state, applied.created_by, applied.applied_by) == ("applied", None, None)
    assert VersionTombstone.objects.filter(artifact_version__in=automatic_versions, deleted_by=None).count() == 2
    assert not VersionTombstone.objects.filter(artifact_version__in=manual_versions).exists()
    assert not RetentionPlan.objects.filter(project=without_rules).exists()


def test_a_project_whose_rules_were_emptied_is_not_planned():
    project, _ = with_versions()
    rules_in_force(project, {"name": "sweep"})
    rules_in_force(project)
    assert plan_retention() == []


def test_the_apply_task_runs_twice_harmlessly_and_ignores_gone_or_superseded_plans():
    project, versions = with_versions()
    rules_in_force(project, {"name": "sweep"})
    maintainer = maintainer_of(project)
    older = retention_plan_create(project=project, created_by=maintainer)
    plan = retention_plan_create(project=project, created_by=maintainer)
    assert apply_retention_plan(plan.pk, maintainer.pk) == "applied"
    assert apply_retention_plan(plan.pk, maintainer.pk) == "applied"
    assert apply_retention_plan(older.pk, maintainer.pk) == "superseded"
    assert apply_retention_plan(10**9, None) is None
    assert VersionTombstone.objects.filter(artifact_version__in=versions, plan_id=plan.pk).count() == 2


def test_the_schedule_resumes_a_plan_whose_application_stopped(django_capture_on_commit_callbacks):
    project, versions = with_versions()
    rules_in_force(project, {"name": "sweep"})
    plan = retention_plan_create(project=project, created_by=maintainer_of(project))
    RetentionPlan.objects.filter(pk=plan.pk).update(state="applying", apply_started_at=plan.created_at)

    with django_capture_on_commit_callbacks(execute=True):
        plan_retention()

    plan.refresh_from_db()
    assert plan.state == "applied"
    assert VersionTombstone.objects.filter(artifact_version__in=versions, plan_id=plan.pk).count() == 2
