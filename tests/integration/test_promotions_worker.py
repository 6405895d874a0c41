"""Promotions follow their bytes, through a real Celery worker on PostgreSQL with the bytes in moto's S3 server:
an approved request waiting only for verification is applied by the worker that proves the bytes, and a request
whose bytes the worker finds corrupt is invalidated with the reason."""

import hashlib
import os
import time
from collections.abc import Callable

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from artifacts.models import Blob, ProjectBlob
from artifacts.services import artifact_version_publish
from artifacts.tasks import verify_blob
from core.models import AuditEntry, Event
from governance.registry.models import ModelVersion, PromotionRequest
from governance.registry.services.registry import promotion_policy_set
from tests.artifacts.factories import ArtifactFactory, ProjectFactory, PublisherFactory, grant
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory, token_for
from tests.integration.test_artifact_store import content_address

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 30


def client(user) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return api


def eventually(check: Callable[[], bool], what: str, celery_worker) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        celery_worker.assert_running()
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} did not happen within {WAIT_SECONDS} s. The worker's log ends:\n{celery_worker.log_tail()}"
            )
        time.sleep(0.1)


def unverified_version(project, s3_bucket, data: bytes):
    """An artifact version whose bytes are in the bucket and whose verification nobody has queued yet (an upload
    would queue it at once, and the worker would win the race against the test)."""
    publisher = PublisherFactory()
    digest = hashlib.sha256(data).hexdigest()
    s3_bucket.write(content_address(digest), data)
    with transaction.atomic():
        blob = Blob.objects.create(digest=digest, size=len(data))
        ProjectBlob.objects.create(project=project, blob=blob, uploaded_by=publisher)
        version, _ = artifact_version_publish(
            artifact=ArtifactFactory(project=project), digest=f"sha256:{digest}", created_by=publisher
        )
    return version


@pytest.fixture
def people():
    project = ProjectFactory()
    maintainer = grant(Role.MAINTAINER, on=project).user
    # Integrity is the gate under test: the others are switched off, one approval is enough.
    promotion_policy_set(
        project=project,
        stage="production",
        changed_by=maintainer,
        approvals_required=1,
        require_complete_lineage=False,
        require_model_card=False,
    )
    return {
        "project": project,
        "contributor": client(grant(Role.CONTRIBUTOR, on=project).user),
        "reviewer": client(grant(Role.REVIEWER, on=project).user),
    }


def request_and_approve(people, model_version: ModelVersion) -> dict:
    asked = people["contributor"].post(
        "/api/v1/promotions/",
        {"model_version": model_version.pk, "target_stage": "production", "justification": "Better recall."},
        format="json",
    )
    assert asked.status_code == 201, asked.content
    approved = people["reviewer"].post(f"/api/v1/promotions/{asked.json()['id']}/approve/", {"comment": "ok"})
    assert approved.status_code == 200, approved.content
    return approved.json()


def test_an_approved_promotion_waiting_for_verification_is_applied_by_the_worker_that_proves_the_bytes(
    people, s3_bucket, celery_worker
):
    version = unverified_version(people["project"], s3_bucket, os.urandom(64 * 1024))
    model_version = ModelVersionFactory(
        registered_model=RegisteredModelFactory(project=people["project"]), artifact_version=version
    )

    waiting = request_and_approve(people, model_version)
    assert waiting["state"] == "open"
    assert waiting["approvals_counted"] == 1
    assert waiting["blocked_by"].startswith("Gates fail: integrity: ")
    assert "not verified yet" in waiting["blocked_by"]

    verify_blob.delay(version.blob_id)

    eventually(
        lambda: ModelVersion.objects.get(pk=model_version.pk).stage == "production",
        "the promotion's application by the worker",
        celery_worker,
    )
    request = PromotionRequest.objects.get(pk=waiting["id"])
    assert request.state == "approved"
    assert [gate["passed"] for gate in request.gates_at_decision] == [True]
    moved = AuditEntry.objects.get(action="model_version.stage_changed", object_id=str(model_version.pk))
    assert (moved.actor_kind, moved.actor_label) == ("system", "task artifacts.tasks.verify_blob")
    assert Event.objects.filter(type="model_version.stage_changed", project_id=people["project"].pk).count() == 1


def test_a_request_whose_bytes_the_worker_finds_corrupt_is_invalidated_with_the_reason(
    people, s3_bucket, celery_worker
):
    data = os.urandom(64 * 1024)
    version = unverified_version(people["project"], s3_bucket, data)
    model_version = ModelVersionFactory(
        registered_model=RegisteredModelFactory(project=people["project"]), artifact_version=version
    )
    waiting = request_and_approve(people, model_version)
    # Bit rot in the bucket before anyone proved the bytes.
    s3_bucket.write(content_address(version.blob.digest), b"rot" + data[3:])

    verify_blob.delay(version.blob_id)

    eventually(
        lambda: PromotionRequest.objects.get(pk=waiting["id"]).state == "invalidated",
        "the request's invalidation by the worker",
        celery_worker,
    )
    request = PromotionRequest.objects.get(pk=waiting["id"])
    assert request.close_reason == (f"The bytes of {version} (sha256:{version.blob.digest}) were found corrupt.")
    assert ModelVersion.objects.get(pk=model_version.pk).stage == "none"
    detail = people["reviewer"].get(f"/api/v1/promotions/{waiting['id']}/").json()
    assert detail["state"] == "invalidated"
    refused = people["reviewer"].post(f"/api/v1/promotions/{waiting['id']}/apply/")
    assert refused.status_code == 409
    assert "found corrupt" in refused.json()["detail"]
