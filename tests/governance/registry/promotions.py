"""Arranging promotions, for the test_promotions_* modules: people with roles, policies, versions that pass every
default gate, requests and their approvals, time travel, corrupt bytes, and reading back the gates, the audit
entries and the events a step left."""

import json
from datetime import timedelta

import jsonschema
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.services.integrity import blob_verify
from core.events import payload_schema
from core.models import AuditEntry, Event
from governance.registry.models import ModelVersion, PromotionPolicy, PromotionRequest
from governance.registry.services.promotions import promotion_approve
from governance.registry.services.registry import promotion_policy_set
from tests.artifacts.factories import grant
from tests.governance.factories import ModelVersionFactory, PromotionRequestFactory, artifact_version_with_lineage

JUSTIFICATION = "Beats the current model on last month's holdout."


def reviewer_of(obj, user=None):
    """A user (new unless given) holding the reviewer role on a project or an artifact."""
    return grant(Role.REVIEWER, on=obj, user=user).user


def maintainer_of(project, user=None):
    return grant(Role.MAINTAINER, on=project, user=user).user


def policy(project, stage: str, **values) -> PromotionPolicy:
    """Save the next version of a stage's policy, as a maintainer of the project."""
    return promotion_policy_set(project=project, stage=stage, changed_by=maintainer_of(project), **values)[0]


def version_of(model, **lineage) -> ModelVersion:
    """The model's next version, on an artifact version passing every default gate unless `lineage` says otherwise
    (see artifact_version_with_lineage)."""
    return ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(model.project, **lineage)
    )


def version_published_by(model, user) -> ModelVersion:
    """A version whose artifact version `user` published; `user` contributes to and reviews the project."""
    grant(Role.CONTRIBUTOR, on=model.project, user=user)
    reviewer_of(model.project, user)
    return ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(model.project, created_by=user)
    )


def request_for(version, target_stage: str = "production", requested_by=None) -> PromotionRequest:
    kwargs = {"requested_by": requested_by} if requested_by is not None else {}
    return PromotionRequestFactory(model_version=version, target_stage=target_stage, **kwargs)


def approve_by_new_reviewers(request: PromotionRequest, count: int | None = None) -> PromotionRequest:
    """`count` approvals (as many as the request needs by default), each by a new reviewer of the project."""
    project = request.registered_model.project
    for _ in range(count if count is not None else request.approvals_required):
        request = promotion_approve(request=request, reviewer=reviewer_of(project))
    return request


def promoted(version, target_stage: str = "production") -> PromotionRequest:
    """Move `version` into `target_stage` the normal way: a request and its approvals."""
    request = approve_by_new_reviewers(request_for(version, target_stage))
    assert request.state == PromotionRequest.State.APPROVED, request.blocked_by
    return request


def served_for(version: ModelVersion, hours: float) -> None:
    """Time travel: `version` entered its stage `hours` ago (the stage columns may be updated, unlike identity)."""
    ModelVersion.objects.filter(pk=version.pk).update(stage_changed_at=timezone.now() - timedelta(hours=hours))


def expire(request: PromotionRequest) -> None:
    """Time travel: the request's time ran out a minute ago."""
    PromotionRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(minutes=1))


def corrupt(folder, version: ModelVersion) -> None:
    """Alter the stored bytes of the version and let a verification find it."""
    blob = version.artifact_version.blob
    path = folder / blob.storage_key
    path.write_bytes(b"bit rot" + path.read_bytes()[7:])
    blob_verify(blob=blob)


def gate(results: list[dict], name: str) -> dict:
    found = [result for result in results if result["gate"] == name]
    assert len(found) == 1, results
    return found[0]


def fresh(obj):
    obj.refresh_from_db()
    return obj


def production_of(model) -> list[int]:
    return list(model.versions.filter(stage="production").values_list("number", flat=True))


def refused(statement) -> None:
    """`statement` raises IntegrityError, in a savepoint so the test's transaction goes on."""
    with pytest.raises(IntegrityError), transaction.atomic():
        statement()


def recorded(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


def changes(entry: AuditEntry) -> dict:
    return json.loads(entry.changes)


def last_event_id() -> int:
    """Where the events a test looks at begin (events are never deleted, so the arrangement's stay)."""
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def bodies(event_type: str, *, after: int = 0) -> list[dict]:
    """The bodies of the events of `event_type` written after event `after`, oldest first, each checked against
    its published schema."""
    events = Event.objects.filter(type=event_type, id__gt=after).order_by("id")
    found = [json.loads(event.body) for event in events]
    for body in found:
        jsonschema.validate(body, payload_schema(event_type))
    return found
