"""Which versions a legal hold covers (governance/lifecycle/selectors.py): the version itself, its artifact or
dataset, or its whole project, while the hold is active; asked of a whole queryset in one statement."""

import pytest

from artifacts.models import ArtifactVersion, DatasetVersion
from governance.lifecycle.selectors import (
    artifact_version_held,
    dataset_version_held,
    hold_described,
    holds_covering,
)
from governance.lifecycle.services.holds import legal_hold_release
from governance.registry.models import ModelVersion
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, DatasetVersionFactory, ProjectFactory
from tests.governance.factories import LegalHoldFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory()


def held_artifact_versions() -> set:
    return set(ArtifactVersion.objects.filter(artifact_version_held()))


def held_dataset_versions() -> set:
    return set(DatasetVersion.objects.filter(dataset_version_held()))


def test_nothing_is_held_without_a_hold(project):
    ArtifactVersionFactory(artifact__project=project)
    DatasetVersionFactory(dataset__project=project)

    assert held_artifact_versions() == held_dataset_versions() == set()


def test_a_project_hold_covers_every_version_of_the_project_and_none_elsewhere(project):
    artifact_version = ArtifactVersionFactory(artifact__project=project)
    dataset_version = DatasetVersionFactory(dataset__project=project)
    ArtifactVersionFactory()
    DatasetVersionFactory()

    LegalHoldFactory(project=project)

    assert held_artifact_versions() == {artifact_version}
    assert held_dataset_versions() == {dataset_version}


def test_an_artifact_hold_covers_its_versions_only(project):
    artifact = ArtifactFactory(project=project)
    versions = {ArtifactVersionFactory(artifact=artifact), ArtifactVersionFactory(artifact=artifact)}
    ArtifactVersionFactory(artifact__project=project)

    LegalHoldFactory(project=project, artifact=artifact)

    assert held_artifact_versions() == versions
    assert held_dataset_versions() == set()


def test_a_version_hold_covers_that_version_only(project):
    version = ArtifactVersionFactory(artifact__project=project)
    ArtifactVersionFactory(artifact=version.artifact)
    dataset_version = DatasetVersionFactory(dataset__project=project)
    DatasetVersionFactory(dataset=dataset_version.dataset)

    LegalHoldFactory(project=project, artifact_version=version)
    LegalHoldFactory(project=project, dataset_version=dataset_version)

    assert held_artifact_versions() == {version}
    assert held_dataset_versions() == {dataset_version}


def test_a_dataset_hold_covers_its_versions_only(project):
    version = DatasetVersionFactory(dataset__project=project)
    sibling = DatasetVersionFactory(dataset=version.dataset)
    DatasetVersionFactory(dataset__project=project)

    LegalHoldFactory(project=project, dataset=version.dataset)

    assert held_dataset_versions() == {version, sibling}


def test_a_released_hold_covers_nothing(project):
    version = ArtifactVersionFactory(artifact__project=project)
    hold = LegalHoldFactory(project=project, artifact_version=version)

    legal_hold_release(hold=hold, released_by=hold.placed_by, reason="Case closed.")

    assert held_artifact_versions() == set()
    assert list(holds_covering(version)) == []


def test_the_condition_reaches_a_version_through_a_relation(project):
    """A planner reads versions through its own rows (plan items, model versions): `prefix` names the path."""
    held = ModelVersionFactory(registered_model__project=project)
    ModelVersionFactory()
    LegalHoldFactory(project=project)

    assert list(ModelVersion.objects.filter(artifact_version_held("artifact_version__"))) == [held]


def test_every_version_is_judged_in_one_query(project, django_assert_num_queries):
    for _ in range(5):
        ArtifactVersionFactory(artifact__project=project)
    LegalHoldFactory(project=project)

    with django_assert_num_queries(1):
        assert len(held_artifact_versions()) == 5


def test_the_holds_covering_a_version_are_named_oldest_first(project):
    version = ArtifactVersionFactory(artifact__project=project)
    on_project = LegalHoldFactory(project=project)
    on_artifact = LegalHoldFactory(project=project, artifact=version.artifact)
    LegalHoldFactory(project=project, artifact=ArtifactFactory(project=project))

    covering = list(holds_covering(version))

    assert covering == [on_project, on_artifact]
    assert [hold_described(hold) for hold in covering] == [
        f"legal hold {on_project.pk} on project '{project.slug}'",
        f"legal hold {on_artifact.pk} on artifact '{version.artifact}'",
    ]
