"""The database keeps promotion decisions and stage history as written: its triggers refuse a raw `update()` or
`delete()` of a decision, a stage transition, a model version's identity, what a request asks, or a closed
request, while the stage columns stay updatable."""

import pytest
from django.utils import timezone

from governance.registry.models import ModelVersion, PromotionDecision, PromotionRequest, StageTransition
from governance.registry.services.promotions import promotion_approve, promotion_withdraw
from tests.artifacts.factories import UserFactory
from tests.governance.factories import RegisteredModelFactory, artifact_version_with_lineage
from tests.governance.registry.promotions import JUSTIFICATION, fresh, promoted, refused, request_for, reviewer_of

pytestmark = pytest.mark.django_db


# The database keeps decisions and history as written ---------------------------------------------------------------


def test_decisions_cannot_be_rewritten_or_deleted(version):
    request = promotion_approve(request=request_for(version), reviewer=reviewer_of(version.registered_model.project))
    decision = request.decisions.get()

    refused(lambda: PromotionDecision.objects.filter(pk=decision.pk).update(decision="reject"))
    refused(lambda: PromotionDecision.objects.filter(pk=decision.pk).update(comment="edited"))
    refused(lambda: PromotionDecision.objects.filter(pk=decision.pk).delete())

    assert (fresh(decision).decision, fresh(decision).comment) == ("approve", "")


def test_stage_history_cannot_be_rewritten_or_deleted(version):
    promoted(version)
    transition = StageTransition.objects.get()

    refused(lambda: StageTransition.objects.filter(pk=transition.pk).update(to_stage="staging"))
    refused(lambda: StageTransition.objects.filter(pk=transition.pk).update(changed_at=timezone.now()))
    refused(lambda: StageTransition.objects.all().delete())

    assert fresh(transition).to_stage == "production"


def test_a_model_version_always_names_the_same_artifact_version(model, version):
    registered = (version.registered_model_id, version.number, version.artifact_version_id)
    other = artifact_version_with_lineage(model.project)

    refused(lambda: ModelVersion.objects.filter(pk=version.pk).update(artifact_version=other))
    refused(lambda: ModelVersion.objects.filter(pk=version.pk).update(number=7))
    refused(lambda: ModelVersion.objects.filter(pk=version.pk).update(registered_model=RegisteredModelFactory()))
    refused(lambda: ModelVersion.objects.filter(pk=version.pk).delete())

    version = fresh(version)
    assert (version.registered_model_id, version.number, version.artifact_version_id) == registered


def test_a_model_versions_stage_columns_stay_updatable(version):
    moved = ModelVersion.objects.filter(pk=version.pk).update(stage="staging", stage_changed_at=timezone.now())

    assert moved == 1
    assert fresh(version).stage == "staging"


def test_what_a_request_asks_cannot_be_rewritten(version):
    request = request_for(version)

    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(target_stage="staging"))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(digest="0" * 64))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(justification="Something else."))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(requested_by=UserFactory()))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).delete())

    assert (fresh(request).target_stage, fresh(request).justification) == ("production", JUSTIFICATION)


def test_a_closed_request_is_never_reopened_or_changed(version):
    request = promotion_withdraw(request=request_for(version), withdrawn_by=UserFactory(is_superuser=True))

    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(state="open", closed_at=None))
    refused(lambda: PromotionRequest.objects.filter(pk=request.pk).update(close_reason="Never mind."))

    assert fresh(request).state == PromotionRequest.State.WITHDRAWN
