"""Retention plans applied by a real Celery worker on PostgreSQL, with the bytes in moto's S3 server: an apply asked
for over the API is carried out by the worker (deleted bytes leave the bucket, protected ones stay), and the schedule
plans every project with rules and applies the plan of a project that opted in, archiving bytes to a colder class."""

import time
from collections.abc import Callable

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from artifacts.models import Blob, VersionTombstone
from governance.lifecycle.models import RetentionPlan
from governance.lifecycle.services.holds import legal_hold_place
from governance.lifecycle.tasks import plan_retention
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import token_for
from tests.governance.lifecycle.retention import days_ago, rules_in_force
from tests.integration.test_artifact_store import content_address

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 60


def eventually(check: Callable[[], bool], what: str, celery_worker) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        celery_worker.assert_running()
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not happen within {WAIT_SECONDS} s. The worker's log ends:\n{celery_worker.log_tail()}"
            )
        time.sleep(0.2)


def client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return api


def stored(s3_bucket, version) -> bool:
    return content_address(version.blob.digest) in s3_bucket.object_keys()


def test_an_apply_asked_over_the_api_is_carried_out_by_the_worker(s3_bucket, celery_worker):
    project = ProjectFactory()
    artifact = ArtifactFactory(project=project)
    versions = [ArtifactVersionFactory(artifact=artifact) for _ in range(4)]
    held = versions[0]
    hold = legal_hold_place(
        project=project, artifact_version=held, reason="Matter 9.", placed_by=UserFactory(is_superuser=True)
    )
    rules_in_force(project, {"name": "keep-newest", "keep_last_versions": 1})
    maintainer = client(grant(Role.MAINTAINER, on=project).user)

    planned = maintainer.post("/api/v1/retention-plans/", {"project": project.slug}, format="json")
    assert planned.status_code == 201, planned.content
    plan = planned.json()
    assert (plan["versions_to_delete"], plan["versions_protected"]) == (2, 1)
    assert all(stored(s3_bucket, version) for version in versions)

    accepted = maintainer.post(f"/api/v1/retention-plans/{plan['id']}/apply/")
    assert accepted.status_code == 202, accepted.content

    eventually(
        lambda: RetentionPlan.objects.get(pk=plan["id"]).state == "applied", "the plan's application", celery_worker
    )
    deleted = set(VersionTombstone.objects.filter(plan_id=plan["id"]).values_list("artifact_version_id", flat=True))
    assert deleted == {versions[1].pk, versions[2].pk}
    assert [stored(s3_bucket, version) for version in versions] == [True, False, False, True]
    items = maintainer.get(f"/api/v1/retention-plans/{plan['id']}/items/", {"action": "keep"}).json()["results"]
    assert [item["protected_by"] for item in items] == [f"legal hold #{hold.pk}"]
    again = maintainer.post(f"/api/v1/retention-plans/{plan['id']}/apply/")
    assert again.status_code == 200


def test_the_schedule_plans_and_applies_where_the_project_opted_in_archiving_to_a_colder_class(
    s3_bucket, celery_worker
):
    opted_in, waiting = ProjectFactory(), ProjectFactory()
    with days_ago(45):
        cold = ArtifactVersionFactory(artifact=ArtifactFactory(project=opted_in))
        untouched = ArtifactVersionFactory(artifact=ArtifactFactory(project=waiting))
    fresh = ArtifactVersionFactory(artifact=ArtifactFactory(project=opted_in))
    rule = {"name": "cold-after-30-days", "action": "archive", "older_than_days": 30}
    rules_in_force(opted_in, rule, auto_apply=True)
    rules_in_force(waiting, rule)
    started = timezone.now()

    plan_retention.delay()

    eventually(
        lambda: RetentionPlan.objects.filter(project=opted_in, state="applied", created_at__gte=started).exists(),
        "the scheduled plan's application",
        celery_worker,
    )
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=content_address(cold.blob.digest))
    assert head.get("StorageClass") == "GLACIER_IR"
    assert Blob.objects.get(pk=cold.blob_id).archived_at is not None
    assert Blob.objects.get(pk=fresh.blob_id).archived_at is None
    waiting_plan = RetentionPlan.objects.get(project=waiting)
    assert (waiting_plan.state, waiting_plan.trigger, waiting_plan.versions_to_archive) == ("planned", "schedule", 1)
    assert Blob.objects.get(pk=untouched.blob_id).archived_at is None
