"""Built-in protections no rule can override: each one keeps its version and says, in words, what keeps it."""

import pytest

from artifacts.models import VersionTombstone
from artifacts.services.integrity import blob_verify
from artifacts.services.lifecycle import version_delete
from governance.access.models import AccessReviewItem
from governance.lifecycle.models import LegalHold, RetentionPlan
from governance.lifecycle.selectors import versions_protected
from governance.lifecycle.services.holds import legal_hold_place, legal_hold_release
from governance.lifecycle.services.plans import retention_plan_create
from governance.registry.models import ModelVersion, PromotionRequest
from governance.registry.services.promotions import promotion_withdraw
from governance.registry.services.registry import model_alias_set
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
)
from tests.governance.factories import AccessReviewCampaignFactory, ModelVersionFactory, RegisteredModelFactory
from tests.governance.lifecycle.retention import item_of, rules_in_force, selected
from tests.governance.registry.promotions import maintainer_of, promoted, request_for, version_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def model():
    return RegisteredModelFactory(name="fraud-model")


def plan_all(project, action: str = "delete") -> RetentionPlan:
    """Plan under one rule selecting every version of the project."""
    rules_in_force(project, {"name": "everything", "action": action})
    return retention_plan_create(project=project, created_by=maintainer_of(project))


def kept_because(plan: RetentionPlan, version) -> str:
    item = item_of(plan, version)
    assert item is not None, "the rule selected the version"
    assert (item.action, item.state) == ("keep", "skipped")
    return item.protected_by


def hold(project, reason: str = "Litigation 2026-17", **scope) -> LegalHold:
    return legal_hold_place(project=project, reason=reason, placed_by=UserFactory(is_superuser=True), **scope)


def test_production_version_is_kept_saying_as_which_model_version(model):
    version = version_of(model)
    promoted(version)
    made = plan_all(model.project)
    assert kept_because(made, version.artifact_version) == f"in production as fraud-model v{version.number}"
    assert made.versions_protected >= 1


def test_staging_version_is_kept(model):
    version = version_of(model)
    promoted(version, "staging")
    assert kept_because(plan_all(model.project), version.artifact_version) == (
        f"in staging as fraud-model v{version.number}"
    )


def test_aliased_version_is_kept_naming_the_alias(model):
    version = version_of(model)
    model_alias_set(registered_model=model, name="champion", model_version=version, set_by=model.created_by)
    assert kept_because(plan_all(model.project), version.artifact_version) == "alias 'champion' of fraud-model"


def test_version_with_an_open_promotion_request_is_kept(model):
    version = version_of(model)
    request = request_for(version)
    assert kept_because(plan_all(model.project), version.artifact_version) == (
        f"subject of open promotion request #{request.pk}"
    )


def test_a_closed_request_protects_nothing_and_its_subject_survives_deletion(model):
    version = version_of(model)
    request = promotion_withdraw(request=request_for(version), withdrawn_by=request_for_user(version))
    made = plan_all(model.project)
    assert version.artifact_version in selected(made)
    version_delete(version=version.artifact_version, deleted_by=None, reason="Test: deleted by a rule.")
    request = PromotionRequest.objects.get(pk=request.pk)
    assert request.model_version.artifact_version.tombstone is not None


def request_for_user(version):
    return PromotionRequest.objects.filter(model_version=version).latest("pk").requested_by


@pytest.mark.parametrize("scope", ["project", "artifact", "artifact_version"])
def test_a_legal_hold_keeps_what_it_covers_with_its_number_and_reason(scope):
    project = ProjectFactory()
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    named = {
        "project": {},
        "artifact": {"artifact": version.artifact},
        "artifact_version": {"artifact_version": version},
    }
    placed = hold(project, **named[scope])
    assert kept_because(plan_all(project), version) == f"legal hold #{placed.pk}"


@pytest.mark.parametrize("scope", ["dataset", "dataset_version"])
def test_a_legal_hold_keeps_dataset_versions(scope):
    project = ProjectFactory()
    snapshot = DatasetVersionFactory(dataset=DatasetFactory(project=project))
    placed = hold(project, **{scope: snapshot.dataset if scope == "dataset" else snapshot})
    assert kept_because(plan_all(project), snapshot) == f"legal hold #{placed.pk}"


def test_a_released_hold_protects_nothing():
    project = ProjectFactory()
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    placed = hold(project, artifact_version=version)
    legal_hold_release(hold=placed, released_by=UserFactory(is_superuser=True), reason="Case closed.")
    assert version in selected(plan_all(project))


def servable(model, *, run=None, content: bytes | None = None) -> ModelVersion:
    """A new version of `model` passing production's default gates: produced by `run` (one reading a new dataset
    version by default), its bytes (`content`, random by default) verified."""
    project = model.project
    run = run or RunFactory(
        project=project, input_dataset_versions=[DatasetVersionFactory(dataset=DatasetFactory(project=project))]
    )
    extra = {"content": content} if content is not None else {}
    artifact_version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), run=run, **extra)
    blob_verify(blob=artifact_version.blob)
    return ModelVersionFactory(registered_model=model, artifact_version=artifact_version)


def test_lineage_upstream_of_a_production_model_is_kept_generation_after_generation(model):
    """dataset v -> run -> base model -> run -> production model: both ancestors are kept, saying of what."""
    project = model.project
    raw = DatasetVersionFactory(dataset=DatasetFactory(project=project))
    base = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project), run=RunFactory(project=project, input_dataset_versions=[raw])
    )
    fine_tune = RunFactory(project=project, input_artifact_versions=[base], input_dataset_versions=[raw])
    served = servable(model, run=fine_tune)
    promoted(served)
    made = plan_all(project)
    words = f"upstream of fraud-model v{served.number} (in production)"
    assert kept_because(made, base) == words
    assert kept_because(made, raw) == words


def test_archive_keeps_bytes_a_protected_version_shares_naming_it(model):
    content = b"bytes of the served model, also under another artifact"
    served = servable(model, content=content)
    promoted(served)
    copy = ArtifactVersionFactory(artifact=ArtifactFactory(project=model.project), content=content)
    named = served.artifact_version
    assert kept_because(plan_all(model.project, action="archive"), copy) == (
        f"shares its bytes with {named.artifact}@v{named.number} (in production as fraud-model v{served.number})"
    )


def test_archive_keeps_bytes_a_protected_version_of_another_project_shares_without_naming_it(model):
    content = b"bytes of the served model, also uploaded by another project"
    promoted(servable(model, content=content))
    elsewhere = ProjectFactory()
    copy = ArtifactVersionFactory(artifact=ArtifactFactory(project=elsewhere), content=content)
    assert kept_because(plan_all(elsewhere, action="archive"), copy) == (
        "shares its bytes with a protected version of another project"
    )


def test_deleting_a_copy_is_planned_but_reclaims_no_byte_a_protected_version_needs(model):
    content = b"bytes two versions share"
    served = servable(model, content=content)
    model_alias_set(registered_model=model, name="champion", model_version=served, set_by=model.created_by)
    copy = ArtifactVersionFactory(artifact=ArtifactFactory(project=model.project), content=content)
    made = plan_all(model.project)
    assert copy in selected(made)
    assert made.bytes_reclaimable == sum(
        item.size for item in made.items.filter(action="delete").exclude(blob_id=copy.blob_id)
    )


def test_access_reviews_name_no_version_so_deletions_cannot_take_their_subject_away():
    project = ProjectFactory()
    artifact = ArtifactFactory(project=project)
    version = ArtifactVersionFactory(artifact=artifact)
    grant("viewer", on=artifact)
    campaign = AccessReviewCampaignFactory(project=project)
    version_delete(version=version, deleted_by=None, reason="Test: deleted by a rule.")
    item = AccessReviewItem.objects.get(campaign=campaign, artifact=artifact)
    assert (item.artifact.pk, item.project.pk) == (artifact.pk, project.pk)
    assert VersionTombstone.objects.filter(artifact_version=version).exists()


def test_versions_protected_lists_a_projects_kept_versions_with_their_words(model):
    version = version_of(model)
    model_alias_set(registered_model=model, name="champion", model_version=version, set_by=model.created_by)
    ArtifactVersionFactory(artifact=ArtifactFactory(project=model.project))
    listed = list(versions_protected(model.project))
    assert ("artifact_version", version.artifact_version.pk, "alias 'champion' of fraud-model") in listed
    assert {kind for kind, _, _ in listed} == {"artifact_version", "dataset_version"}  # and its lineage
