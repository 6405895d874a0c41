"""Access as people meet it: a contributor who is revoked, an auditor who reads but never writes, a member of
one project guessing at another's ids and digests, restricted bytes, lineage across what one may not see, and
the members endpoints.

(Over 600 lines on purpose: one section per scenario, each a story of the same access rule told end to end; the
endpoint-by-endpoint table is test_permission_matrix.py.)"""

import os
import uuid
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, Permission

from artifacts.access.roles import Role
from artifacts.access.services import role_revoke
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    Dataset,
    DatasetVersion,
    Project,
    RoleGrant,
    Run,
    UploadSession,
)
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    BlobFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
    sha256,
)

pytestmark = pytest.mark.django_db

NOWHERE = 10**9  # an id nothing has
MISSING_DIGEST = sha256(b"bytes nobody uploaded")


def same_as_missing(response, missing_response, real: object, missing: object) -> None:
    """`response` tells nothing `missing_response` (about something that does not exist) does not."""
    assert response.status_code == missing_response.status_code
    assert response.content.decode() == missing_response.content.decode().replace(str(missing), str(real))


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# A contributor who is revoked --------------------------------------------------------------------------


@pytest.fixture
def team_project():
    """A project whose team are viewers through a group; one of them is also a contributor."""
    project = ProjectFactory()
    grant(Role.MAINTAINER, on=project)
    viewers = Group.objects.create(name="team")
    grant(Role.VIEWER, on=project, group=viewers)
    contributor = grant(Role.CONTRIBUTOR, on=project)
    contributor.user.groups.add(viewers)
    return SimpleNamespace(
        project=project,
        contributor=contributor,
        artifact=ArtifactFactory(project=project),
        dataset=DatasetFactory(project=project),
        blob=BlobFactory(project=project),
    )


def test_a_revoked_contributor_who_still_views_is_refused_every_publication(api_as, team_project):
    world = team_project
    api = api_as(world.contributor.user)
    digest = world.blob.prefixed_digest
    new_bytes = os.urandom(200)

    role_revoke(grant=world.contributor, revoked_by=None)

    refusals = [
        api.post("/api/v1/artifact-versions/", {"artifact": world.artifact.pk, "digest": digest}, format="json"),
        api.post("/api/v1/dataset-versions/", {"dataset": world.dataset.pk, "digest": digest}, format="json"),
        api.put(
            f"/api/v1/projects/{world.project.slug}/blobs/{sha256(new_bytes)}",
            new_bytes,
            content_type="application/octet-stream",
        ),
        api.post(f"/api/v1/projects/{world.project.slug}/uploads/", {"digest": sha256(new_bytes)}, format="json"),
        api.patch(f"/api/v1/artifacts/{world.artifact.pk}/", {"description": "Mine."}, format="json"),
    ]
    assert [response.status_code for response in refusals] == [403] * len(refusals)
    assert "contributor or maintainer role" in refusals[0].json()["detail"]
    assert not ArtifactVersion.objects.exists()
    assert not DatasetVersion.objects.exists()
    assert not Blob.objects.filter(digest=sha256(new_bytes).removeprefix("sha256:")).exists()
    assert not UploadSession.objects.exists()
    # Reading is still theirs, through the group.
    assert api.get(f"/api/v1/artifacts/{world.artifact.pk}/").status_code == 200


def test_a_contributor_revoked_from_the_project_finds_nothing_to_publish_to(api_as, team_project):
    world = team_project
    world.contributor.user.groups.clear()
    api = api_as(world.contributor.user)
    role_revoke(grant=world.contributor, revoked_by=None)

    def publish(artifact_id: int):
        return api.post(
            "/api/v1/artifact-versions/", {"artifact": artifact_id, "digest": world.blob.prefixed_digest}, format="json"
        )

    same_as_missing(publish(world.artifact.pk), publish(NOWHERE), world.artifact.pk, NOWHERE)
    assert publish(world.artifact.pk).json() == {"artifact": [f"No artifact with id {world.artifact.pk}."]}
    new_bytes = os.urandom(200)
    put = api.put(
        f"/api/v1/projects/{world.project.slug}/blobs/{sha256(new_bytes)}",
        new_bytes,
        content_type="application/octet-stream",
    )
    assert put.status_code == 404
    assert not ArtifactVersion.objects.exists()


@pytest.mark.parametrize("still_a_viewer", [True, False])
def test_an_upload_in_progress_stops_when_the_contributor_is_revoked(api_as, team_project, still_a_viewer):
    world = team_project
    if not still_a_viewer:
        world.contributor.user.groups.clear()
    api = api_as(world.contributor.user)
    data = os.urandom(300)
    # No size announced, so a first chunk shorter than the minimum is taken (as the last one).
    started = api.post(f"/api/v1/projects/{world.project.slug}/uploads/", {"digest": sha256(data)}, format="json")
    assert started.status_code == 201, started.json()
    url = started.json()["url"]
    first = api.patch(url, data[:100], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="0")
    assert first.status_code == 202, first.json()

    role_revoke(grant=world.contributor, revoked_by=None)

    chunk = api.patch(url, data[100:], content_type="application/octet-stream", HTTP_UPLOAD_OFFSET="100")
    assert chunk.status_code == 403
    assert f"You may not upload to project '{world.project}'" in chunk.json()["detail"]
    finish = api.put(f"{url}?digest={sha256(data)}", data[100:], content_type="application/octet-stream")
    assert finish.status_code == 403
    assert UploadSession.objects.get().offset == 100
    assert not Blob.objects.filter(digest=sha256(data).removeprefix("sha256:")).exists()


def test_an_upload_session_is_its_starters_alone(api_as, team_project):
    world = team_project
    data = os.urandom(300)
    url = (
        api_as(world.contributor.user)
        .post(f"/api/v1/projects/{world.project.slug}/uploads/", {"digest": sha256(data)}, format="json")
        .json()["url"]
    )
    session_id = UploadSession.objects.get().pk
    other = api_as(grant(Role.MAINTAINER, on=world.project).user)

    same_as_missing(other.get(url), other.get(f"/api/v1/uploads/{uuid.UUID(int=1)}/"), session_id, uuid.UUID(int=1))
    assert other.delete(url).status_code == 404
    assert UploadSession.objects.exists()


# An auditor reads everything and changes nothing --------------------------------------------------------


def test_an_auditor_reads_everything_and_changes_nothing(api_as):
    project = ProjectFactory()
    grant(Role.MAINTAINER, on=project)
    dataset_version = DatasetVersionFactory(dataset__project=project)
    run = RunFactory(project=project, input_dataset_versions=[dataset_version])
    version = ArtifactVersionFactory(artifact__project=project, run=run)
    artifact_grant = grant(Role.VIEWER, on=version.artifact)
    project_grant = grant(Role.VIEWER, on=project)
    api = api_as(grant(Role.AUDITOR, on=project).user)
    slug, artifact = project.slug, version.artifact
    new_bytes = os.urandom(200)

    reads = [
        "/api/v1/projects/",
        f"/api/v1/projects/{slug}/",
        f"/api/v1/projects/{slug}/members/",
        f"/api/v1/datasets/{dataset_version.dataset_id}/",
        f"/api/v1/dataset-versions/{dataset_version.pk}/",
        f"/api/v1/runs/{run.pk}/",
        f"/api/v1/artifacts/{artifact.pk}/",
        f"/api/v1/artifacts/{artifact.pk}/members/",
        f"/api/v1/artifact-versions/{version.pk}/",
        f"/api/v1/artifact-versions/{version.pk}/download/",
        f"/api/v1/projects/{slug}/blobs/{version.blob.prefixed_digest}",
        f"/api/v1/lineage/run/{run.pk}/",
    ]
    for path in reads:
        assert api.get(path).status_code == 200, path
    members = api.get(f"/api/v1/projects/{slug}/members/").json()["results"]
    assert {member["role"] for member in members} == {Role.MAINTAINER, Role.VIEWER, Role.AUDITOR}

    writes = [
        ("post", "/api/v1/datasets/", {"project": slug, "name": "d"}),
        ("patch", f"/api/v1/datasets/{dataset_version.dataset_id}/", {"description": "x"}),
        ("post", "/api/v1/dataset-versions/", {"dataset": dataset_version.dataset_id, "digest": MISSING_DIGEST}),
        ("post", "/api/v1/runs/", {"project": slug, "external_id": "r"}),
        ("patch", f"/api/v1/runs/{run.pk}/", {"status": Run.Status.FAILED}),
        ("post", "/api/v1/artifacts/", {"project": slug, "name": "a", "kind": Artifact.Kind.MODEL}),
        ("patch", f"/api/v1/artifacts/{artifact.pk}/", {"description": "x"}),
        ("patch", f"/api/v1/artifacts/{artifact.pk}/", {"restricted": True}),
        ("post", "/api/v1/artifact-versions/", {"artifact": artifact.pk, "digest": version.blob.prefixed_digest}),
        ("patch", f"/api/v1/projects/{slug}/", {"name": "x"}),
        ("post", f"/api/v1/projects/{slug}/members/", {"role": Role.AUDITOR, "user": UserFactory().username}),
        ("delete", f"/api/v1/projects/{slug}/members/{project_grant.pk}/", None),
        ("post", f"/api/v1/artifacts/{artifact.pk}/members/", {"role": Role.VIEWER, "user": UserFactory().username}),
        ("delete", f"/api/v1/artifacts/{artifact.pk}/members/{artifact_grant.pk}/", None),
        ("post", f"/api/v1/projects/{slug}/uploads/", {"digest": sha256(new_bytes)}),
    ]  # fmt: skip
    for method, path, data in writes:
        response = getattr(api, method)(path, data, format="json")
        assert response.status_code == 403, (method, path, response.json())
    put = api.put(
        f"/api/v1/projects/{slug}/blobs/{sha256(new_bytes)}", new_bytes, content_type="application/octet-stream"
    )
    assert put.status_code == 403
    assert Dataset.objects.count() == Run.objects.count() == Artifact.objects.count() == 1
    assert RoleGrant.objects.count() == 4
    assert not UploadSession.objects.exists()


# One project's member guessing at another's ids and digests ---------------------------------------------


@pytest.fixture
def two_projects():
    """Alpha, where the caller contributes, and beta, where they have no role; one file is in both."""
    shared = os.urandom(300)
    alpha, beta = ProjectFactory(slug="alpha"), ProjectFactory(slug="beta")
    dataset_version = DatasetVersionFactory(dataset__project=beta, content=shared)
    run = RunFactory(project=beta, input_dataset_versions=[dataset_version])
    return SimpleNamespace(
        alpha=alpha,
        beta=beta,
        shared=sha256(shared),
        mine=ArtifactVersionFactory(artifact__project=alpha, content=shared),
        my_dataset=DatasetFactory(project=alpha),
        dataset_version=dataset_version,
        run=run,
        artifact_version=ArtifactVersionFactory(artifact__project=beta, run=run),
        beta_only=BlobFactory(project=beta).prefixed_digest,
        maintainer_grant=grant(Role.MAINTAINER, on=beta),
        contributor=grant(Role.CONTRIBUTOR, on=alpha).user,
    )


def test_every_url_of_another_project_answers_as_if_nothing_were_there(api_as, two_projects):
    world = two_projects
    api = api_as(world.contributor)
    beta = world.beta.slug
    version, artifact = world.artifact_version, world.artifact_version.artifact
    dataset_version = world.dataset_version
    urls = [
        (f"/api/v1/projects/{beta}/", beta),
        (f"/api/v1/projects/{beta}/members/", beta),
        (f"/api/v1/projects/{beta}/members/{world.maintainer_grant.pk}/", beta),
        (f"/api/v1/projects/{beta}/blobs/{world.beta_only}", beta),
        (f"/api/v1/projects/{beta}/uploads/", beta),
        (f"/api/v1/datasets/{dataset_version.dataset_id}/", dataset_version.dataset_id),
        (f"/api/v1/dataset-versions/{dataset_version.pk}/", dataset_version.pk),
        (f"/api/v1/runs/{world.run.pk}/", world.run.pk),
        (f"/api/v1/artifacts/{artifact.pk}/", artifact.pk),
        (f"/api/v1/artifacts/{artifact.pk}/members/", artifact.pk),
        (f"/api/v1/artifact-versions/{version.pk}/", version.pk),
        (f"/api/v1/artifact-versions/{version.pk}/download/", version.pk),
        (f"/api/v1/lineage/dataset-version/{dataset_version.pk}/", dataset_version.pk),
        (f"/api/v1/lineage/run/{world.run.pk}/", world.run.pk),
        (f"/api/v1/lineage/artifact-version/{version.pk}/", version.pk),
    ]
    for url, name in urls:
        missing_url = url.replace(f"/{name}/", f"/{'no-such-project' if name == beta else NOWHERE}/")
        for method in ("get", "patch", "post", "delete"):
            response = getattr(api, method)(url, {}, format="json")
            if response.status_code == 405:
                continue
            assert response.status_code == 404, (method, url)
            missing = "no-such-project" if name == beta else NOWHERE
            same_as_missing(response, getattr(api, method)(missing_url, {}, format="json"), name, missing)
    assert ArtifactVersion.objects.count() == 2
    assert world.maintainer_grant in RoleGrant.objects.all()


def test_a_digest_reaches_only_through_a_project_that_holds_it(api_as, two_projects):
    world = two_projects
    api = api_as(world.contributor)

    mine = api.get(f"/api/v1/projects/alpha/blobs/{world.shared}")
    assert mine.status_code == 200
    assert api.get(f"/api/v1/projects/beta/blobs/{world.shared}").status_code == 404
    assert api.head(f"/api/v1/projects/beta/blobs/{world.shared}").status_code == 404
    # Beta's own bytes through alpha: the same answer as bytes nobody has.
    same_as_missing(
        api.get(f"/api/v1/projects/alpha/blobs/{world.beta_only}"),
        api.get(f"/api/v1/projects/alpha/blobs/{MISSING_DIGEST}"),
        world.beta_only,
        MISSING_DIGEST,
    )
    published = api.post(
        "/api/v1/artifact-versions/", {"artifact": world.mine.artifact_id, "digest": world.beta_only}, format="json"
    )
    assert published.status_code == 400
    assert published.json()["code"] == "unknown_blob"


def test_filtering_by_digest_finds_nothing_of_another_project(api_as, two_projects):
    api = api_as(two_projects.contributor)
    shared = two_projects.shared

    artifact_versions = api.get("/api/v1/artifact-versions/", {"digest": shared}).json()["results"]
    assert [row["id"] for row in artifact_versions] == [two_projects.mine.pk]
    assert api.get("/api/v1/dataset-versions/", {"digest": shared}).json()["results"] == []
    assert api.get("/api/v1/artifact-versions/", {"digest": two_projects.beta_only}).json()["results"] == []


@pytest.mark.parametrize(
    ("path", "parameter", "record"),
    [
        ("/api/v1/artifact-versions/", "artifact", lambda world: world.artifact_version.artifact),
        ("/api/v1/artifact-versions/", "run", lambda world: world.run),
        ("/api/v1/artifact-versions/", "dataset_version", lambda world: world.dataset_version),
        ("/api/v1/dataset-versions/", "dataset", lambda world: world.dataset_version.dataset),
        ("/api/v1/dataset-versions/", "run", lambda world: world.run),
        ("/api/v1/runs/", "dataset_version", lambda world: world.dataset_version),
        ("/api/v1/runs/", "artifact_version", lambda world: world.artifact_version),
    ],
)
def test_filtering_by_another_projects_ids_answers_as_for_ids_nothing_has(
    api_as, two_projects, path, parameter, record
):
    api = api_as(two_projects.contributor)
    theirs = record(two_projects).pk

    response = api.get(path, {parameter: theirs})

    assert response.status_code == 200
    assert response.json()["results"] == []
    same_as_missing(response, api.get(path, {parameter: NOWHERE}), theirs, NOWHERE)


@pytest.mark.parametrize(
    ("path", "payload", "field", "noun"),
    [
        (
            "/api/v1/runs/",
            lambda w: {"project": "alpha", "external_id": "r", "input_dataset_versions": [w.dataset_version.pk]},
            "input_dataset_versions",
            "dataset version",
        ),
        (
            "/api/v1/runs/",
            lambda w: {"project": "alpha", "external_id": "r", "input_artifact_versions": [w.artifact_version.pk]},
            "input_artifact_versions",
            "artifact version",
        ),
        (
            "/api/v1/artifact-versions/",
            lambda w: {"artifact": w.mine.artifact_id, "digest": w.shared, "run": w.run.pk},
            "run",
            "run",
        ),
        (
            "/api/v1/artifact-versions/",
            lambda w: {"artifact": w.artifact_version.artifact_id, "digest": w.shared},
            "artifact",
            "artifact",
        ),
        (
            "/api/v1/dataset-versions/",
            lambda w: {"dataset": w.dataset_version.dataset_id, "digest": w.shared},
            "dataset",
            "dataset",
        ),
        (
            "/api/v1/dataset-versions/",
            lambda w: {"dataset": w.my_dataset.pk, "digest": w.shared, "run": w.run.pk},
            "run",
            "run",
        ),
    ],
)
def test_naming_another_projects_records_answers_as_for_ids_nothing_has(
    api_as, two_projects, path, payload, field, noun
):
    api = api_as(two_projects.contributor)
    data = payload(two_projects)
    theirs = data[field][0] if isinstance(data[field], list) else data[field]
    missing = {**data, field: [NOWHERE] if isinstance(data[field], list) else NOWHERE}

    response = api.post(path, data, format="json")

    assert response.status_code == 400
    assert response.json()[field] == [f"No {noun} with id {theirs}."]
    same_as_missing(response, api.post(path, missing, format="json"), theirs, NOWHERE)
    assert Run.objects.count() == 1
    assert ArtifactVersion.objects.count() == 2
    assert DatasetVersion.objects.count() == 1


# Restricted bytes ----------------------------------------------------------------------------------------


@pytest.fixture
def restricted_world():
    project = ProjectFactory()
    secret = ArtifactVersionFactory(artifact__project=project, artifact__restricted=True)
    return SimpleNamespace(
        project=project,
        secret=secret,
        digest=secret.blob.prefixed_digest,
        model=ArtifactFactory(project=project),
        dataset=DatasetFactory(project=project),
        contributor=grant(Role.CONTRIBUTOR, on=project).user,
    )


def test_a_restricted_artifacts_bytes_stay_out_of_reach_of_one_who_knows_their_digest(api_as, restricted_world):
    world = restricted_world
    api = api_as(world.contributor)
    blob_url = f"/api/v1/projects/{world.project.slug}/blobs/"

    same_as_missing(api.get(blob_url + world.digest), api.get(blob_url + MISSING_DIGEST), world.digest, MISSING_DIGEST)
    assert api.head(blob_url + world.digest).status_code == 404
    for path, data in [
        ("/api/v1/artifact-versions/", {"artifact": world.model.pk}),
        ("/api/v1/dataset-versions/", {"dataset": world.dataset.pk}),
    ]:
        republished = api.post(path, {**data, "digest": world.digest}, format="json")
        assert republished.status_code == 400
        same_as_missing(
            republished, api.post(path, {**data, "digest": MISSING_DIGEST}, format="json"), world.digest, MISSING_DIGEST
        )
    assert api.get("/api/v1/artifact-versions/", {"digest": world.digest}).json()["results"] == []
    # Starting an upload of those bytes does not confirm the project holds them.
    started = api.post(f"/api/v1/projects/{world.project.slug}/uploads/", {"digest": world.digest}, format="json")
    assert started.status_code == 201
    assert ArtifactVersion.objects.count() == 1


def test_the_restricted_artifacts_own_members_read_its_bytes_through_the_project(api_as, restricted_world):
    world = restricted_world
    grant(Role.VIEWER, on=world.secret.artifact, user=world.contributor)

    download = api_as(world.contributor).get(f"/api/v1/projects/{world.project.slug}/blobs/{world.digest}")

    assert download.status_code == 200
    assert body(download)


def test_an_artifact_only_grantee_cannot_publish_the_projects_other_bytes(api_as, restricted_world):
    """Publishing a digest to the artifact one holds a role on, then downloading that version, would read any
    file of the project whose digest one knows."""
    world = restricted_world
    dataset_bytes = DatasetVersionFactory(dataset=world.dataset).blob.prefixed_digest
    api = api_as(grant(Role.CONTRIBUTOR, on=world.model).user)

    for digest in (dataset_bytes, world.digest):
        published = api.post(
            "/api/v1/artifact-versions/", {"artifact": world.model.pk, "digest": digest}, format="json"
        )
        assert published.status_code == 400
        same_as_missing(
            published,
            api.post(
                "/api/v1/artifact-versions/", {"artifact": world.model.pk, "digest": MISSING_DIGEST}, format="json"
            ),
            digest,
            MISSING_DIGEST,
        )
    assert not ArtifactVersion.objects.filter(artifact=world.model).exists()


# Lineage across what one may not see --------------------------------------------------------------------


def test_lineage_leaves_out_what_the_reader_may_not_see_and_counts_it(api_as):
    project = ProjectFactory()
    dataset_version = DatasetVersionFactory(dataset__project=project)
    run = RunFactory(project=project, input_dataset_versions=[dataset_version])
    model = ArtifactVersionFactory(artifact__project=project, run=run)
    secret = ArtifactVersionFactory(artifact__project=project, artifact__restricted=True, run=run)

    viewer = api_as(grant(Role.VIEWER, on=project).user)
    from_run = viewer.get(f"/api/v1/lineage/run/{run.pk}/").json()
    assert {node["key"] for node in from_run["nodes"]} == {
        f"dataset_version:{dataset_version.pk}",
        f"artifact_version:{model.pk}",
    }
    assert from_run["hidden_nodes"] == 1
    assert all(f"artifact_version:{secret.pk}" not in edge.values() for edge in from_run["edges"])

    model_only = api_as(grant(Role.VIEWER, on=model.artifact).user)
    upstream = model_only.get(f"/api/v1/lineage/artifact-version/{model.pk}/", {"direction": "upstream"}).json()
    assert upstream["nodes"] == []
    assert upstream["edges"] == []
    assert upstream["hidden_nodes"] == 2


# The members endpoints -----------------------------------------------------------------------------------


@pytest.fixture
def managed():
    project = ProjectFactory()
    maintainer = grant(Role.MAINTAINER, on=project)
    return SimpleNamespace(project=project, maintainer=maintainer, url=f"/api/v1/projects/{project.slug}/members/")


def test_a_maintainer_grants_and_revokes_roles(api_as, managed):
    api = api_as(managed.maintainer.user)
    newcomer = UserFactory()
    ArtifactVersionFactory(artifact__project=managed.project)

    granted = api.post(managed.url, {"role": Role.VIEWER, "user": newcomer.username}, format="json")
    assert granted.status_code == 201, granted.json()
    assert granted.json()["user"] == newcomer.username
    assert granted.json()["granted_by"] == managed.maintainer.user.username
    again = api.post(managed.url, {"role": Role.VIEWER, "user": newcomer.username}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == granted.json()["id"]
    assert api_as(newcomer).get("/api/v1/artifact-versions/").json()["results"]

    revoked = api.delete(f"{managed.url}{granted.json()['id']}/")
    assert revoked.status_code == 204
    assert api_as(newcomer).get("/api/v1/artifact-versions/").json()["results"] == []
    assert api.delete(f"{managed.url}{granted.json()['id']}/").status_code == 404


def test_a_group_is_granted_by_name(api_as, managed):
    group = Group.objects.create(name="analysts")
    member = UserFactory()
    member.groups.add(group)

    granted = api_as(managed.maintainer.user).post(
        managed.url, {"role": Role.AUDITOR, "group": "analysts"}, format="json"
    )

    assert granted.status_code == 201
    assert granted.json()["group"] == "analysts"
    assert api_as(member).get(managed.url).status_code == 200


def test_the_last_maintainer_cannot_be_revoked(api_as, managed):
    response = api_as(managed.maintainer.user).delete(f"{managed.url}{managed.maintainer.pk}/")

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"User {managed.maintainer.user.username} is the last maintainer of project {managed.project.slug}; "
        "grant the role to someone else first, so the project is never left without one."
    )
    assert RoleGrant.objects.filter(pk=managed.maintainer.pk).exists()


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"role": Role.VIEWER, "user": "ghost"}, {"user": ["No active user named 'ghost'."]}),
        ({"role": Role.VIEWER, "group": "ghosts"}, {"group": ["No group named 'ghosts'."]}),
        ({"role": "owner"}, {"role": ['"owner" is not a valid choice.']}),
        ({"role": Role.VIEWER}, {"non_field_errors": ["Name either a user or a group to grant the role to."]}),
    ],
)
def test_a_grant_that_names_no_one_is_explained(api_as, managed, data, errors):
    response = api_as(managed.maintainer.user).post(managed.url, data, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert RoleGrant.objects.count() == 1


def test_an_inactive_user_is_not_granted_a_role(api_as, managed):
    sleeper = UserFactory(is_active=False)

    response = api_as(managed.maintainer.user).post(
        managed.url, {"role": Role.VIEWER, "user": sleeper.username}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"user": [f"No active user named '{sleeper.username}'."]}


def test_a_viewer_may_not_read_or_change_the_members(api_as, managed):
    api = api_as(grant(Role.VIEWER, on=managed.project).user)

    listing = api.get(managed.url)
    assert listing.status_code == 403
    assert listing.json()["detail"] == (
        f"You may not manage project '{managed.project}': that needs the maintainer role on the project."
    )
    assert api.post(managed.url, {"role": Role.MAINTAINER, "user": "x"}, format="json").status_code == 403
    assert api.delete(f"{managed.url}{managed.maintainer.pk}/").status_code == 403
    assert RoleGrant.objects.count() == 2


def test_the_members_of_a_project_one_cannot_see_answer_404(api_as, managed):
    api = api_as(grant(Role.MAINTAINER, on=ProjectFactory()).user)

    assert api.get(managed.url).status_code == 404
    assert api.post(managed.url, {"role": Role.VIEWER, "user": "x"}, format="json").status_code == 404
    assert api.delete(f"{managed.url}{managed.maintainer.pk}/").status_code == 404
    assert RoleGrant.objects.filter(pk=managed.maintainer.pk).exists()


def test_a_grant_is_revoked_only_through_the_object_it_is_on(api_as, managed):
    artifact = ArtifactFactory(project=managed.project)
    on_artifact = grant(Role.VIEWER, on=artifact)
    api = api_as(managed.maintainer.user)

    assert api.delete(f"{managed.url}{on_artifact.pk}/").status_code == 404
    assert api.delete(f"/api/v1/artifacts/{artifact.pk}/members/{managed.maintainer.pk}/").status_code == 404
    assert api.delete(f"/api/v1/artifacts/{artifact.pk}/members/{on_artifact.pk}/").status_code == 204
    assert list(RoleGrant.objects.all()) == [managed.maintainer]


# Restricting, and creating projects ----------------------------------------------------------------------


def test_restricting_an_artifact_keeps_the_maintainer_who_did_it(api_as, managed):
    artifact = ArtifactFactory(project=managed.project)
    other_maintainer = grant(Role.MAINTAINER, on=managed.project).user
    api = api_as(managed.maintainer.user)

    response = api.patch(f"/api/v1/artifacts/{artifact.pk}/", {"restricted": True}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["restricted"] is True
    assert api.get(f"/api/v1/artifacts/{artifact.pk}/").status_code == 200
    assert RoleGrant.objects.filter(artifact=artifact, user=managed.maintainer.user, role=Role.MAINTAINER).exists()
    assert api_as(other_maintainer).get(f"/api/v1/artifacts/{artifact.pk}/").status_code == 404


def test_creating_a_restricted_artifact_keeps_its_creator_in(api_as, managed):
    api = api_as(managed.maintainer.user)

    response = api.post(
        "/api/v1/artifacts/",
        {"project": managed.project.slug, "name": "secret", "kind": Artifact.Kind.MODEL, "restricted": True},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert api.get(f"/api/v1/artifacts/{response.json()['id']}/").status_code == 200
    assert api.get(f"/api/v1/artifacts/{response.json()['id']}/members/").json()["results"][0]["role"] == "maintainer"


def test_a_superuser_restricting_an_artifact_needs_no_grant(api_as):
    artifact = ArtifactFactory()

    response = api_as(UserFactory(is_superuser=True)).patch(
        f"/api/v1/artifacts/{artifact.pk}/", {"restricted": True}, format="json"
    )

    assert response.status_code == 200
    assert not RoleGrant.objects.exists()


def test_creating_a_project_takes_the_global_permission_and_makes_the_creator_its_maintainer(api_as):
    creator = UserFactory()
    api = api_as(creator)
    data = {"slug": "fraud", "name": "Fraud"}

    refused = api.post("/api/v1/projects/", data, format="json")
    assert refused.status_code == 403
    assert "artifacts.add_project" in refused.json()["detail"]
    assert not Project.objects.exists()

    creator.user_permissions.add(Permission.objects.get(codename="add_project"))
    created = api.post("/api/v1/projects/", data, format="json")
    assert created.status_code == 201, created.json()
    members = api.get("/api/v1/projects/fraud/members/").json()["results"]
    assert [(member["user"], member["role"]) for member in members] == [(creator.username, Role.MAINTAINER)]


# A contributor to one artifact ---------------------------------------------------------------------------


def test_a_contributor_to_one_artifact_uploads_and_publishes_to_it_and_reads_nothing_else(api_as):
    artifact = ArtifactFactory()
    project = artifact.project
    dataset_bytes = DatasetVersionFactory(dataset__project=project).blob.prefixed_digest
    user = grant(Role.CONTRIBUTOR, on=artifact).user
    api = api_as(user)
    data = os.urandom(300)
    blob_url = f"/api/v1/projects/{project.slug}/blobs/{sha256(data)}"

    assert api.put(blob_url, data, content_type="application/octet-stream").status_code == 201
    assert api.head(blob_url).status_code == 200  # their own upload
    published = api.post("/api/v1/artifact-versions/", {"artifact": artifact.pk, "digest": sha256(data)}, format="json")
    assert published.status_code == 201, published.json()
    # Another artifact of the project, and the project's other bytes, stay out of reach.
    other = ArtifactFactory(project=project)
    refused = api.post("/api/v1/artifact-versions/", {"artifact": other.pk, "digest": sha256(data)}, format="json")
    assert refused.status_code == 400
    hidden = api.get(f"/api/v1/projects/{project.slug}/blobs/{dataset_bytes}")
    same_as_missing(
        hidden,
        api.get(f"/api/v1/projects/{project.slug}/blobs/{MISSING_DIGEST}"),
        dataset_bytes,
        MISSING_DIGEST,
    )
