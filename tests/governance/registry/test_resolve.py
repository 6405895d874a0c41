"""GET /api/v1/resolve/: a reference (`fraud-scorer@production`, `model@3`, `sha256:…`) to one artifact version, in
one call, with what a client needs to download it; and refusals that say what was looked for."""

import pytest

from artifacts.access.roles import Role
from artifacts.services.integrity import blob_verify
from governance.registry.models import RegisteredModel
from governance.registry.selectors import reference_parse
from governance.registry.services.registry import model_alias_set, model_version_register
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    ProjectFactory,
    PublisherFactory,
    UserFactory,
    grant,
    sha256,
)
from tests.governance.factories import RegisteredModelFactory
from tests.governance.registry.promotions import promoted, version_of

pytestmark = pytest.mark.django_db

RESOLVE = "/api/v1/resolve/"


def resolve(api, project, ref: str):
    return api.get(RESOLVE, {"project": project.slug, "ref": ref})


def alias(model: RegisteredModel, name: str, version) -> None:
    model_alias_set(registered_model=model, name=name, model_version=version, set_by=PublisherFactory())


def register(model: RegisteredModel, artifact_version):
    return model_version_register(
        registered_model=model, artifact_version=artifact_version, created_by=PublisherFactory()
    )[0]


@pytest.fixture
def scorer():
    """fraud-scorer: v1 in production (aliased champion), v2 in staging (aliased candidate)."""
    model = RegisteredModelFactory(name="fraud-scorer")
    first, second = version_of(model), version_of(model)
    promoted(first)
    promoted(second, "staging")
    alias(model, "champion", first)
    alias(model, "candidate", second)
    return model


# What a reference names ----------------------------------------------------------------------------------------------


def test_a_models_stage_answers_its_version_with_everything_a_download_needs(api, scorer):
    production = scorer.versions.get(number=1)
    artifact_version = production.artifact_version

    response = resolve(api, scorer.project, "fraud-scorer@production")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ref"] == "fraud-scorer@production"
    assert body["project"] == scorer.project.slug
    assert body["resolved_through"] == "stage"
    assert body["alias"] is None
    found = body["artifact_version"]
    assert found["id"] == artifact_version.pk
    assert found["artifact_name"] == artifact_version.artifact.name
    assert found["number"] == artifact_version.number
    assert found["digest"] == artifact_version.blob.prefixed_digest
    assert found["size"] == artifact_version.blob.size
    assert found["media_type"] == artifact_version.media_type
    assert found["blob_state"] == "verified"
    assert body["model_version"]["id"] == production.pk
    assert body["model_version"]["number"] == 1
    assert body["model_version"]["stage"] == "production"
    download = api.get(found["download_url"])
    assert download.status_code == 200
    assert download["ETag"] == f'"{artifact_version.blob.prefixed_digest}"'


def test_a_models_alias_answers_the_version_it_points_at(api, scorer):
    body = resolve(api, scorer.project, "fraud-scorer@candidate").json()

    assert body["resolved_through"] == "alias"
    assert body["alias"] == "candidate"
    assert body["model_version"]["number"] == 2
    assert body["artifact_version"]["id"] == scorer.versions.get(number=2).artifact_version_id


def test_a_models_version_number_answers_that_version(api, scorer):
    body = resolve(api, scorer.project, "fraud-scorer@2").json()

    assert body["resolved_through"] == "model_version"
    assert body["model_version"]["number"] == 2
    assert body["model_version"]["stage"] == "staging"


def test_an_artifacts_version_number_answers_that_version_without_the_registry(api):
    artifact = ArtifactFactory(name="tokenizer")
    versions = [ArtifactVersionFactory(artifact=artifact) for _ in range(3)]

    body = resolve(api, artifact.project, "tokenizer@2").json()

    assert body["resolved_through"] == "artifact_version"
    assert body["artifact_version"]["id"] == versions[1].pk
    assert body["model_version"] is None


@pytest.mark.parametrize("prefix", ["sha256:", "SHA256:", ""])
def test_a_digest_answers_the_projects_version_with_those_bytes(api, prefix):
    version = ArtifactVersionFactory(content=b"weights")
    digest = sha256(b"weights").removeprefix("sha256:")

    body = resolve(api, version.artifact.project, prefix + digest).json()

    assert body["resolved_through"] == "digest"
    assert body["artifact_version"]["id"] == version.pk


def test_a_name_that_is_both_a_model_and_an_artifact_answers_where_both_readings_agree(api):
    artifact = ArtifactFactory(name="ranker")
    first = ArtifactVersionFactory(artifact=artifact)
    model = RegisteredModelFactory(project=artifact.project, name="ranker")
    register(model, first)

    body = resolve(api, artifact.project, "ranker@1").json()

    assert body["resolved_through"] == "model_version"
    assert body["artifact_version"]["id"] == first.pk


def test_a_number_that_names_different_versions_of_a_model_and_an_artifact_is_ambiguous(api):
    artifact = ArtifactFactory(name="ranker")
    first, second = ArtifactVersionFactory(artifact=artifact), ArtifactVersionFactory(artifact=artifact)
    model = RegisteredModelFactory(project=artifact.project, name="ranker")
    register(model, second)  # the model's version 1 is the artifact's version 2

    ambiguous = resolve(api, artifact.project, "ranker@1")
    as_model = resolve(api, artifact.project, "model:ranker@1").json()
    as_artifact = resolve(api, artifact.project, "artifact:ranker@1").json()

    assert ambiguous.status_code == 404
    assert ambiguous.json()["code"] == "ambiguous_reference"
    assert "model:ranker@1 or artifact:ranker@1" in ambiguous.json()["detail"]
    assert as_model["artifact_version"]["id"] == second.pk
    assert as_artifact["artifact_version"]["id"] == first.pk


def test_an_artifacts_alias_is_the_one_a_model_of_the_project_gives_its_version(api):
    """Aliases belong to registered models: `preprocessor@champion` names the preprocessor's version that a model
    (here `fraud-features`) calls champion."""
    artifact = ArtifactFactory(name="preprocessor", kind="preprocessor")
    old, new = ArtifactVersionFactory(artifact=artifact), ArtifactVersionFactory(artifact=artifact)
    model = RegisteredModelFactory(project=artifact.project, name="fraud-features")
    register(model, old)
    alias(model, "champion", register(model, new))

    body = resolve(api, artifact.project, "preprocessor@champion").json()
    unaliased = resolve(api, artifact.project, "preprocessor@candidate")

    assert body["resolved_through"] == "alias"
    assert body["artifact_version"]["id"] == new.pk
    assert body["model_version"]["model_name"] == "fraud-features"
    assert unaliased.status_code == 404
    assert unaliased.json()["detail"] == (
        f"No model of project '{artifact.project.slug}' holds a version of artifact 'preprocessor' under the alias "
        "'candidate' (stages and aliases belong to registered models)."
    )


def test_an_artifacts_alias_given_by_two_models_is_ambiguous(api):
    artifact = ArtifactFactory(name="preprocessor")
    old, new = ArtifactVersionFactory(artifact=artifact), ArtifactVersionFactory(artifact=artifact)
    for name, version in (("left", old), ("right", new)):
        model = RegisteredModelFactory(project=artifact.project, name=name)
        alias(model, "champion", register(model, version))

    response = resolve(api, artifact.project, "preprocessor@champion")

    assert response.status_code == 404
    assert response.json()["code"] == "ambiguous_reference"
    assert "(left@1, right@1)" in response.json()["detail"]


def test_two_versions_in_staging_are_ambiguous_and_the_answer_says_how_to_name_one(api, scorer):
    third = version_of(scorer)
    promoted(third, "staging")

    response = resolve(api, scorer.project, "fraud-scorer@staging")

    assert response.status_code == 404
    assert response.json() == {
        "detail": f"'fraud-scorer@staging' is ambiguous in project '{scorer.project.slug}': model 'fraud-scorer' has "
        "several versions in staging (3, 2). Name one by its number, as fraud-scorer@3.",
        "code": "ambiguous_reference",
        "field": "ref",
    }


def test_the_same_bytes_published_twice_in_a_project_are_ambiguous_by_digest(api):
    project = ProjectFactory()
    for name in ("weights", "checkpoint"):
        ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name=name), content=b"same bytes")

    response = resolve(api, project, sha256(b"same bytes"))

    assert response.status_code == 404
    assert response.json()["code"] == "ambiguous_reference"
    assert "(checkpoint@1, weights@1)" in response.json()["detail"]
    assert f"/api/v1/projects/{project.slug}/blobs/{sha256(b'same bytes')}" in response.json()["detail"]


# What is not there, or not to be seen ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "detail"),
    [
        ("nothing@production", "Project '{slug}' has no model or artifact named 'nothing'."),
        ("artifact:fraud-scorer@1", "Project '{slug}' has no artifact named 'fraud-scorer'."),
        ("fraud-scorer@7", "Project '{slug}' has no version 7 of model 'fraud-scorer'."),
        ("fraud-scorer@ghost", "Model 'fraud-scorer' of project '{slug}' has no alias 'ghost'."),
        ("fraud-scorer@archived", "Model 'fraud-scorer' of project '{slug}' has no version in archived."),
        ("sha256:" + "0" * 64, "Project '{slug}' has no artifact version with the digest sha256:" + "0" * 64 + "."),
    ],
)
def test_a_reference_to_nothing_answers_404_naming_what_was_looked_for(api, scorer, ref, detail):
    response = resolve(api, scorer.project, ref)

    assert response.status_code == 404
    assert response.json() == {"detail": detail.format(slug=scorer.project.slug), "code": "not_found", "field": "ref"}


def test_an_unknown_project_and_one_the_caller_may_not_see_answer_alike(api_as, scorer):
    outsider = api_as(UserFactory())

    hidden = outsider.get(RESOLVE, {"project": scorer.project.slug, "ref": "fraud-scorer@production"})
    missing = outsider.get(RESOLVE, {"project": "no-such-project", "ref": "fraud-scorer@production"})

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == f"No project '{scorer.project.slug}'."
    assert missing.json()["detail"] == "No project 'no-such-project'."


def test_an_alias_on_a_restricted_version_reads_as_an_alias_that_does_not_exist(api_as, scorer):
    project = scorer.project
    secret = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, restricted=True))
    blob_verify(blob=secret.blob)
    alias(scorer, "shadow", register(scorer, secret))
    viewer = api_as(grant(Role.VIEWER, on=project).user)

    hidden = resolve(viewer, project, "fraud-scorer@shadow")
    missing = resolve(viewer, project, "fraud-scorer@ghost")
    by_number = resolve(viewer, project, "fraud-scorer@3")
    by_digest = resolve(viewer, project, secret.blob.prefixed_digest)

    assert hidden.status_code == missing.status_code == by_number.status_code == by_digest.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"].replace("ghost", "shadow")
    assert by_number.json()["detail"] == f"Project '{project.slug}' has no version 3 of model 'fraud-scorer'."
    assert resolve(viewer, project, "fraud-scorer@champion").status_code == 200


def test_an_artifacts_grantee_resolves_that_artifact_and_nothing_else_of_the_project(api_as, scorer):
    production = scorer.versions.get(number=1)
    grantee = api_as(grant(Role.VIEWER, on=production.artifact_version.artifact).user)

    seen = resolve(grantee, scorer.project, "fraud-scorer@production")
    unseen = resolve(grantee, scorer.project, "fraud-scorer@candidate")

    assert seen.status_code == 200
    assert seen.json()["artifact_version"]["id"] == production.artifact_version_id
    assert unseen.status_code == 404
    assert (
        unseen.json()["detail"] == f"Model 'fraud-scorer' of project '{scorer.project.slug}' has no alias 'candidate'."
    )


# Malformed references ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("", "Name what to resolve"),
        ("   ", "Name what to resolve"),
        ("fraud-scorer", "Say which version of 'fraud-scorer' after '@': fraud-scorer@3 (a version number)"),
        ("fraud-scorer@", "Say which version of 'fraud-scorer' after '@'"),
        ("fraud/scorer@1", "'fraud/scorer' is not a name: Use 1-128 letters"),
        ("a@b@c", "'a@b' is not a name"),
        ("fraud-scorer@0", "A version number is a whole number from 1"),
        ("fraud-scorer@" + "9" * 19, "A version number is a whole number from 1, at most 18 digits"),
        ("fraud-scorer@prod uction", "'prod uction' after '@' is neither a version number, a stage nor an alias"),
        ("fraud-scorer@" + "a" * 65, "An alias is at most 64 characters."),
        ("blob:fraud-scorer@1", "'blob:' is not a kind of name: write model:<name>@… or artifact:<name>@…"),
        ("sha256:abc", "A sha256 digest is 64 hexadecimal characters"),
        ("md5:" + "a" * 32, "'md5:' is not a kind of name"),
        ("x" * 301, "A reference is at most 300 characters."),
    ],
)
def test_a_malformed_reference_answers_400_saying_what_would_do(api, scorer, ref, says):
    response = resolve(api, scorer.project, ref)

    assert response.status_code == 400
    assert response.json()["field"] == "ref"
    assert response.json()["detail"].startswith(says), response.json()["detail"]


def test_a_malformed_reference_is_refused_before_the_project_is_looked_up(api_as):
    response = api_as(UserFactory()).get(RESOLVE, {"project": "no-such-project", "ref": "no-at-sign"})

    assert response.status_code == 400
    assert "no-such-project" not in response.json()["detail"]


def test_the_project_must_be_named(api):
    response = api.get(RESOLVE, {"ref": "fraud-scorer@production"})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Name the project to resolve in: `?project=<slug>`.",
        "code": "invalid",
        "field": "project",
    }


def test_a_reference_is_parsed_into_its_parts():
    assert reference_parse(" model:fraud-scorer@production ").reading == "model"
    assert reference_parse("fraud-scorer@production").stage == "production"
    assert reference_parse("fraud-scorer@12").number == 12
    champion = reference_parse("fraud-scorer@champion")
    assert (champion.name, champion.selector, champion.stage, champion.number) == (
        "fraud-scorer",
        "champion",
        None,
        None,
    )
    assert reference_parse("AB" * 32).digest == "ab" * 32


def test_resolving_reads_a_fixed_number_of_queries(api, scorer, django_assert_max_num_queries):
    # Authentication, the project, the model, the artifact, the version with everything the answer shows, and the
    # model version's aliases: never a query per field.
    with django_assert_max_num_queries(9):
        assert resolve(api, scorer.project, "fraud-scorer@production").status_code == 200
