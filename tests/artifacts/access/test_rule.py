"""The access rule of artifacts/access/rule.py, clause by clause: how project roles, artifact roles, groups,
superusers and inactive accounts combine."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from artifacts.access.roles import Role, Scope, Verb
from artifacts.access.rule import Credential, bind_credential, can
from artifacts.access.services import role_revoke
from artifacts.models import Artifact, ArtifactVersion, Dataset, DatasetVersion, Project, Run
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    BlobFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
)

pytestmark = pytest.mark.django_db

PROJECT_ROLES = [Role.VIEWER, Role.CONTRIBUTOR, Role.REVIEWER, Role.MAINTAINER, Role.AUDITOR]


@pytest.fixture
def project() -> Project:
    return ProjectFactory()


@pytest.fixture
def model(project) -> ArtifactVersion:
    return ArtifactVersionFactory(artifact__project=project, artifact__name="model")


@pytest.fixture
def secret(project) -> ArtifactVersion:
    """A version of a restricted artifact in the same project."""
    return ArtifactVersionFactory(artifact__project=project, artifact__name="secret", artifact__restricted=True)


def listed(api, path: str, key: str = "id") -> set:
    response = api.get(path)
    assert response.status_code == 200, response.json()
    return {row[key] for row in response.json()["results"]}


# Clause 2: a project role reaches everything in the project but restricted artifacts ----------------------


@pytest.mark.parametrize("role", PROJECT_ROLES)
def test_a_project_role_reaches_every_unrestricted_artifact_of_the_project(api_as, project, model, role):
    other = ArtifactVersionFactory(artifact__project=project)
    api = api_as(grant(role, on=project).user)

    assert listed(api, "/api/v1/artifacts/") == {model.artifact_id, other.artifact_id}
    assert listed(api, "/api/v1/artifact-versions/") == {model.pk, other.pk}
    assert api.get(f"/api/v1/artifact-versions/{model.pk}/download/").status_code == 200


@pytest.mark.parametrize("role", PROJECT_ROLES)
def test_a_restricted_artifact_is_out_of_every_project_roles_reach(api_as, project, model, secret, role):
    user = grant(role, on=project).user
    api = api_as(user)

    assert listed(api, "/api/v1/artifacts/") == {model.artifact_id}
    assert listed(api, "/api/v1/artifact-versions/") == {model.pk}
    for path in (
        f"/api/v1/artifacts/{secret.artifact_id}/",
        f"/api/v1/artifacts/{secret.artifact_id}/members/",
        f"/api/v1/artifact-versions/{secret.pk}/",
        f"/api/v1/artifact-versions/{secret.pk}/download/",
        f"/api/v1/lineage/artifact-version/{secret.pk}/",
    ):
        assert api.get(path).status_code == 404, path
    assert not Artifact.objects.visible_to(user).filter(pk=secret.artifact_id).exists()
    assert not can(user, Verb.VIEW, secret.artifact)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MAINTAINER])
def test_a_grant_on_a_restricted_artifact_is_the_way_in(api_as, project, secret, role):
    user = grant(Role.VIEWER, on=project).user
    grant(role, on=secret.artifact, user=user)
    api = api_as(user)

    assert secret.artifact_id in listed(api, "/api/v1/artifacts/")
    assert api.get(f"/api/v1/artifact-versions/{secret.pk}/download/").status_code == 200
    assert can(user, Verb.VIEW, secret.artifact)


# Clauses 3 and 4: an artifact role reaches that artifact alone, and shows its project's name --------------


def test_an_artifact_only_grantee_sees_that_artifact_its_versions_and_bytes(api_as, project, model):
    other = ArtifactVersionFactory(artifact__project=project)
    dataset_version = DatasetVersionFactory(dataset__project=project)
    run = RunFactory(project=project)
    api = api_as(grant(Role.VIEWER, on=model.artifact).user)

    assert listed(api, "/api/v1/artifacts/") == {model.artifact_id}
    assert listed(api, "/api/v1/artifact-versions/") == {model.pk}
    download = api.get(f"/api/v1/artifact-versions/{model.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content)
    # The project is visible by name; nothing else in it is.
    assert listed(api, "/api/v1/projects/", "slug") == {project.slug}
    assert api.get(f"/api/v1/projects/{project.slug}/").status_code == 200
    assert listed(api, "/api/v1/datasets/") == set()
    assert listed(api, "/api/v1/dataset-versions/") == set()
    assert listed(api, "/api/v1/runs/") == set()
    for path in (
        f"/api/v1/artifacts/{other.artifact_id}/",
        f"/api/v1/artifact-versions/{other.pk}/",
        f"/api/v1/datasets/{dataset_version.dataset_id}/",
        f"/api/v1/dataset-versions/{dataset_version.pk}/",
        f"/api/v1/runs/{run.pk}/",
    ):
        assert api.get(path).status_code == 404, path
    # Through the project's blob endpoint: the bytes of the versions they see, and no other bytes of the project.
    assert api.get(f"/api/v1/projects/{project.slug}/blobs/{model.blob.prefixed_digest}").status_code == 200
    assert api.get(f"/api/v1/projects/{project.slug}/blobs/{dataset_version.blob.prefixed_digest}").status_code == 404


def test_a_project_viewer_who_contributes_to_one_artifact_publishes_to_that_artifact_only(api_as, project, model):
    other = ArtifactFactory(project=project)
    user = grant(Role.VIEWER, on=project).user
    grant(Role.CONTRIBUTOR, on=model.artifact, user=user)
    api = api_as(user)
    # Bytes someone uploaded to the project, which the project viewer may read.
    digest = BlobFactory(project=project).prefixed_digest

    published = api.post("/api/v1/artifact-versions/", {"artifact": model.artifact_id, "digest": digest}, format="json")
    assert published.status_code == 201, published.json()
    assert (
        api.patch(f"/api/v1/artifacts/{model.artifact_id}/", {"description": "Mine."}, format="json").status_code == 200
    )

    refused = api.post("/api/v1/artifact-versions/", {"artifact": other.pk, "digest": digest}, format="json")
    assert refused.status_code == 403
    assert "contributor or maintainer role on the artifact or its project" in refused.json()["detail"]
    assert api.patch(f"/api/v1/artifacts/{other.pk}/", {"description": "No."}, format="json").status_code == 403
    assert api.post("/api/v1/runs/", {"project": project.slug, "external_id": "r"}, format="json").status_code == 403
    assert ArtifactVersion.objects.filter(artifact=other).count() == 0
    assert not Run.objects.exists()


def test_verbs_are_the_union_of_project_and_artifact_roles(project, model):
    user = grant(Role.REVIEWER, on=project).user
    grant(Role.AUDITOR, on=model.artifact, user=user)

    assert can(user, Verb.REVIEW, model.artifact)  # from the project
    assert can(user, Verb.AUDIT, model.artifact)  # from the artifact
    assert not can(user, Verb.AUDIT, project)
    assert not can(user, Verb.CONTRIBUTE, model.artifact)


# Clause 5: groups --------------------------------------------------------------------------------------


@pytest.fixture
def team() -> Group:
    return Group.objects.create(name="fraud-analysts")


@pytest.mark.parametrize("scope", ["project", "artifact"])
def test_a_groups_role_counts_for_its_members_until_they_leave(api_as, project, model, team, scope):
    target = project if scope == "project" else model.artifact
    member = UserFactory()
    member.groups.add(team)
    grant(Role.CONTRIBUTOR, on=target, group=team)
    api = api_as(member)

    assert api.get(f"/api/v1/artifact-versions/{model.pk}/").status_code == 200
    assert can(member, Verb.CONTRIBUTE, target)

    member.groups.remove(team)

    assert api.get(f"/api/v1/artifact-versions/{model.pk}/").status_code == 404
    assert not can(member, Verb.VIEW, target)


@pytest.mark.parametrize("scope", ["project", "artifact"])
def test_revoking_a_groups_role_takes_it_from_every_member(api_as, project, model, team, scope):
    target = project if scope == "project" else model.artifact
    members = UserFactory.create_batch(2)
    team.user_set.add(*members)
    group_grant = grant(Role.VIEWER, on=target, group=team)
    assert all(Artifact.objects.visible_to(member).filter(pk=model.artifact_id).exists() for member in members)

    role_revoke(grant=group_grant, revoked_by=None)

    for member in members:
        assert not Artifact.objects.visible_to(member).exists()
        assert api_as(member).get(f"/api/v1/artifacts/{model.artifact_id}/").status_code == 404


def test_a_members_own_role_and_the_groups_add_up(project, model, team):
    member = grant(Role.AUDITOR, on=project).user
    member.groups.add(team)
    grant(Role.CONTRIBUTOR, on=project, group=team)

    assert can(member, Verb.AUDIT, project)
    assert can(member, Verb.CONTRIBUTE, project)
    assert not can(member, Verb.MANAGE, project)


# Clause 1: superusers and inactive accounts -------------------------------------------------------------


def test_a_superuser_sees_everything_restricted_artifacts_included(api_as, project, model, secret):
    dataset_version = DatasetVersionFactory(dataset__project=project)
    api = api_as(UserFactory(is_superuser=True))

    assert listed(api, "/api/v1/artifacts/") == {model.artifact_id, secret.artifact_id}
    assert listed(api, "/api/v1/dataset-versions/") == {dataset_version.pk}
    assert api.get(f"/api/v1/artifact-versions/{secret.pk}/download/").status_code == 200
    assert api.patch(f"/api/v1/projects/{project.slug}/", {"name": "Renamed"}, format="json").status_code == 200


@pytest.mark.parametrize("superuser", [False, True])
def test_an_inactive_account_sees_nothing(api_as, project, model, secret, superuser):
    dataset_version = DatasetVersionFactory(dataset__project=project)
    user = grant(Role.MAINTAINER, on=project).user
    grant(Role.MAINTAINER, on=secret.artifact, user=user)
    user.is_superuser = superuser
    user.save(update_fields=["is_superuser"])
    api = api_as(user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    for model_class in (Project, Dataset, DatasetVersion, Run, Artifact, ArtifactVersion):
        assert not model_class.objects.visible_to(user).exists(), model_class.__name__
    assert not can(user, Verb.VIEW, project)
    assert not can(user, Verb.VIEW, secret.artifact)
    # Its tokens stop working too.
    response = api.get(f"/api/v1/dataset-versions/{dataset_version.pk}/")
    assert response.status_code == 401
    assert response.json()["detail"] == "The token's user is inactive."


# Revocation takes exactly one role ----------------------------------------------------------------------


def test_revoking_one_role_keeps_what_another_gives(api_as, project, model):
    grant(Role.MAINTAINER, on=project)  # so the revoked maintainer is not the last one
    maintainer = grant(Role.MAINTAINER, on=project)
    user = maintainer.user
    grant(Role.VIEWER, on=project, user=user)
    api = api_as(user)

    role_revoke(grant=maintainer, revoked_by=None)

    assert can(user, Verb.VIEW, project)
    assert not can(user, Verb.CONTRIBUTE, project)
    assert not can(user, Verb.MANAGE, project)
    assert api.get(f"/api/v1/artifact-versions/{model.pk}/download/").status_code == 200
    assert api.patch(f"/api/v1/projects/{project.slug}/", {"name": "Renamed"}, format="json").status_code == 403
    assert api.get(f"/api/v1/projects/{project.slug}/members/").status_code == 403


def test_revoking_a_project_role_leaves_an_artifact_role_alone(api_as, project, model):
    project_grant = grant(Role.CONTRIBUTOR, on=project)
    user = project_grant.user
    grant(Role.VIEWER, on=model.artifact, user=user)

    role_revoke(grant=project_grant, revoked_by=None)

    assert Artifact.objects.visible_to(user).get() == model.artifact
    assert not can(user, Verb.CONTRIBUTE, model.artifact)
    assert Project.objects.visible_to(user).get() == project
    assert not Project.objects.where(user, Verb.VIEW).exists()


# Rule 6: a token's scope and project cap the roles ------------------------------------------------------


def _capped(user, scope: str, project=None):
    """A fresh instance of `user`, bound to a token's cap as the bearer authentication binds it."""
    instance = get_user_model().objects.get(pk=user.pk)
    bind_credential(instance, Credential(scope=scope, project_id=project.pk if project else None))
    return instance


def test_a_scope_caps_the_roles_and_never_adds_to_them():
    version = ArtifactVersionFactory()
    project = version.artifact.project
    maintainer = grant(Role.MAINTAINER, on=project).user
    viewer = grant(Role.VIEWER, on=project).user

    read, write = _capped(maintainer, Scope.READ), _capped(maintainer, Scope.WRITE)
    assert can(read, Verb.VIEW, version)
    assert not can(read, Verb.CONTRIBUTE, version)
    assert can(write, Verb.CONTRIBUTE, version)
    assert not can(write, Verb.MANAGE, project)
    assert not can(_capped(viewer, Scope.ADMIN, project), Verb.CONTRIBUTE, version)
    # The cap is the instance's: the same user asked about otherwise is answered by the roles alone.
    assert can(maintainer, Verb.MANAGE, project)


def test_a_project_restriction_hides_every_other_project_even_from_a_superuser():
    mine, other = ArtifactVersionFactory(), ArtifactVersionFactory(artifact__restricted=True)
    superuser = UserFactory(is_superuser=True)
    restricted = _capped(superuser, Scope.ADMIN, mine.artifact.project)

    assert set(Project.objects.visible_to(restricted)) == {mine.artifact.project}
    assert set(ArtifactVersion.objects.visible_to(restricted)) == {mine}
    assert can(restricted, Verb.MANAGE, mine.artifact.project)
    assert not can(restricted, Verb.VIEW, other)
    # A superuser's read token reads everything, restricted artifacts included, and changes nothing.
    reader = _capped(superuser, Scope.READ)
    assert set(ArtifactVersion.objects.visible_to(reader)) == {mine, other}
    assert not ArtifactVersion.objects.where(reader, Verb.CONTRIBUTE).exists()
