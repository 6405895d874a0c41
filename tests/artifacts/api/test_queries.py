"""Every list endpoint costs the same number of queries whatever the page size (no N+1)."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts.access.roles import Role
from artifacts.models import Project
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
)

pytestmark = pytest.mark.django_db

LIST_URLS = [
    "/api/v1/projects/",
    "/api/v1/datasets/",
    "/api/v1/dataset-versions/",
    "/api/v1/runs/",
    "/api/v1/artifacts/",
    "/api/v1/artifact-versions/",
]


def make_rows(count: int) -> Project:
    project = ProjectFactory()
    for _ in range(count):
        dataset_version = DatasetVersionFactory(dataset__project=project)
        run = RunFactory(project=project, input_dataset_versions=[dataset_version])
        version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), run=run)
        RunFactory(project=project, input_artifact_versions=[version])
    return project


def queries_for(api, url: str, page_size: int) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = api.get(url, {"page_size": page_size})
    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size
    return len(captured)


@pytest.mark.parametrize("url", LIST_URLS)
def test_list_query_count_does_not_grow_with_page_size(api, url):
    make_rows(12)
    if url == "/api/v1/projects/":
        for _ in range(11):
            ProjectFactory()
    api.get(url)  # the first use of a token records it; keep that write out of the comparison
    assert queries_for(api, url, 2) == queries_for(api, url, 12)


@pytest.mark.parametrize("url", LIST_URLS)
def test_list_query_count_for_a_member_does_not_grow_with_page_size(api_as, url):
    """The access rule is part of the list's one statement, not a query per row: a viewer through a group,
    who also holds a role on a restricted artifact of another project, pays the same for 2 rows as for 12."""
    team = Group.objects.create(name="team")
    member = UserFactory()
    member.groups.add(team)
    grant(Role.VIEWER, on=make_rows(12), group=team)
    grant(Role.CONTRIBUTOR, on=ArtifactVersionFactory(artifact__restricted=True).artifact, user=member)
    if url == "/api/v1/projects/":
        for _ in range(11):
            grant(Role.VIEWER, on=ProjectFactory(), group=team)
    ProjectFactory()  # and one the member may not see
    api = api_as(member)
    api.get(url)
    assert queries_for(api, url, 2) == queries_for(api, url, 12)


def test_cursor_pagination_walks_every_row_once(api):
    for _ in range(5):
        ProjectFactory()
    seen, url = [], "/api/v1/projects/?page_size=2"
    while url:
        page = api.get(url).json()
        seen += [p["slug"] for p in page["results"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == 5


def test_page_size_goes_up_to_500(api):
    from artifacts.models import Project

    Project.objects.bulk_create(Project(slug=f"p-{i}", name=f"P {i}") for i in range(501))
    page = api.get("/api/v1/projects/?page_size=500").json()
    assert len(page["results"]) == 500
    assert page["next"]
    assert api.get("/api/v1/projects/?page_size=501").status_code == 400
