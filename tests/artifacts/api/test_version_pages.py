"""The newest-first pages of artifact versions on PostgreSQL, where a user who sees few artifacts gets a page picked
through each artifact's newest versions (artifacts.selectors.artifact_versions_in_page): the few are counted among
the artifacts the list's filters leave, and every page holds exactly the rows the access rule alone selects."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts import selectors
from artifacts.access.roles import Role
from artifacts.models import Artifact, ArtifactVersion
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

URL = "/api/v1/artifact-versions/"
#: How the page statement names the rows picked through the artifacts' newest versions.
PICKED = '"artifacts_artifactversion"."id" IN ('


@pytest.fixture(autouse=True)
def postgresql(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the page is picked through each artifact's newest versions on PostgreSQL only")
    monkeypatch.setattr(selectors, "FEW_ARTIFACTS", 3)  # "few" is 3 here: a handful of rows shows both ways


@pytest.fixture
def world():
    """A quiet project (its versions the oldest) with 4 artifacts: an open model and a report (another kind), which the
    user sees through grants on them, one restricted and granted, one restricted and not; and a busy project the
    user views, with 4 artifacts: 7 artifacts seen in all, more than "few", 3 of them in the quiet project."""
    quiet, busy = ProjectFactory(slug="quiet"), ProjectFactory(slug="busy")
    user = UserFactory()
    open_model = ArtifactFactory(project=quiet)
    granted = ArtifactFactory(project=quiet, restricted=True)
    secret = ArtifactFactory(project=quiet, restricted=True)
    report = ArtifactFactory(project=quiet, kind=Artifact.Kind.EVALUATION_REPORT)
    grant(Role.VIEWER, on=open_model, user=user)
    grant(Role.VIEWER, on=granted, user=user)
    grant(Role.VIEWER, on=report, user=user)
    for artifact in (open_model, granted, secret, report) * 2:
        ArtifactVersionFactory(artifact=artifact)
    grant(Role.VIEWER, on=busy, user=user)
    for artifact in [ArtifactFactory(project=busy) for _ in range(4)] * 2:
        ArtifactVersionFactory(artifact=artifact)
    return user


def walk(api, query: dict) -> tuple[list[int], list[str]]:
    """Every page, two rows at a time, forwards: the ids, and each page's statement on the versions (none where the
    page is known to be empty without one)."""
    ids, statements, url, params = [], [], URL, {**query, "page_size": 2}
    while url:
        with CaptureQueriesContext(connection) as queries:
            response = api.get(url, params)
        assert response.status_code == 200, response.content
        ids += [row["id"] for row in response.json()["results"]]
        order = 'ORDER BY "artifacts_artifactversion"."id"'
        statements += [q["sql"] for q in queries.captured_queries if order in q["sql"]]
        url, params = response.json()["next"], None
    return ids, statements


def newest_first(user, **filters) -> list[int]:
    return list(ArtifactVersion.objects.visible_to(user).filter(**filters).order_by("-id").values_list("id", flat=True))


def test_a_project_filter_counts_the_users_artifacts_in_that_project(api_as, world):
    """7 artifacts seen, 3 in the quiet project: unfiltered, the backward walk; filtered by the quiet project,
    the pages are picked through its 3 artifacts' newest versions. The same rows either way as the rule alone."""
    api = api_as(world)
    ids, statements = walk(api, {})
    assert ids == newest_first(world)
    assert not any(PICKED in sql for sql in statements)

    ids, statements = walk(api, {"project": "quiet"})
    assert ids == newest_first(world, artifact__project__slug="quiet")
    assert len(ids) == 6  # the open model, the granted and the report: not the secret one
    assert all(PICKED in sql for sql in statements)


def test_kind_and_artifact_filters_narrow_the_count_too(api_as, world):
    api = api_as(world)
    ids, statements = walk(api, {"project": "quiet", "kind": Artifact.Kind.MODEL})
    assert ids == newest_first(world, artifact__project__slug="quiet", artifact__kind=Artifact.Kind.MODEL)
    assert len(ids) == 4
    assert all(PICKED in sql for sql in statements)

    secret = Artifact.objects.get(project__slug="quiet", restricted=True, role_grants__isnull=True)
    ids, _ = walk(api, {"artifact": secret.pk})
    assert ids == []
    busy_one = Artifact.objects.filter(project__slug="busy").first()
    ids, statements = walk(api, {"artifact": busy_one.pk})
    assert ids == newest_first(world, artifact=busy_one)
    assert len(ids) == 2
    assert all(PICKED in sql for sql in statements)


def test_an_unknown_project_is_an_empty_list(api_as, world):
    assert walk(api_as(world), {"project": "no-such-project"})[0] == []


def test_the_artifact_level_filters_are_the_version_filters_made_on_the_artifact():
    """ArtifactVersionFilter.artifacts must keep every artifact the version filters leave: each lookup it makes is
    the version filter's own, exact, without the `artifact__` step."""
    from artifacts.filters import ArtifactVersionFilter

    for name, lookup in ArtifactVersionFilter.ARTIFACT_LOOKUPS.items():
        declared = ArtifactVersionFilter.base_filters[name]
        assert declared.lookup_expr == "exact"
        assert declared.field_name == ("artifact" if lookup == "pk" else f"artifact__{lookup}")


def test_a_superuser_s_project_list_is_picked_through_the_projects_artifacts(api, world):
    """A superuser sees every artifact (8 here, more than "few"): unfiltered, the backward walk without asking; the
    quiet project's 3 models are few, so their pages are picked through them, the restricted ones included."""
    ids, statements = walk(api, {})
    assert ids == list(ArtifactVersion.objects.order_by("-id").values_list("id", flat=True))
    assert not any(PICKED in sql for sql in statements)
    ids, statements = walk(api, {"project": "quiet", "kind": Artifact.Kind.MODEL})
    assert ids == newest_first(api.user, artifact__project__slug="quiet", artifact__kind=Artifact.Kind.MODEL)
    assert len(ids) == 6
    assert all(PICKED in sql for sql in statements)
