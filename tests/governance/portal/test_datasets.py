"""The portal's dataset page (its versions) and dataset version page (content, schema, the run that made it and the
runs that read it): only for those who may see them, as the API."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from artifacts.access.roles import Role
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

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger():
    project = ProjectFactory(slug="payments")
    dataset = DatasetFactory(project=project, name="ledger", description="Card transactions, one row each.")
    prep = RunFactory(project=project, name="extract-ledger")
    first = DatasetVersionFactory(dataset=dataset, run=prep, row_count=1200, schema={"amount": "float"})
    second = DatasetVersionFactory(dataset=dataset)
    reader = RunFactory(project=project, name="train-on-ledger", input_dataset_versions=[first])
    return locals()


def test_a_dataset_page_lists_its_versions_newest_first_with_links(client, ledger):
    client.force_login(grant(Role.VIEWER, on=ledger["project"]).user)

    response = client.get(f"/datasets/{ledger['dataset'].pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Card transactions, one row each." in html
    first, second = (f'href="/datasets/versions/{ledger[name].pk}/"' for name in ("first", "second"))
    assert html.index(second) < html.index(first)
    assert f'href="/runs/{ledger["prep"].pk}/"' in html
    assert 'href="/projects/payments/"' in html
    assert "/api/" not in html


def test_a_dataset_version_page_shows_its_content_its_run_and_its_readers(client, ledger):
    client.force_login(grant(Role.VIEWER, on=ledger["project"]).user)

    response = client.get(f"/datasets/versions/{ledger['first'].pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert ledger["first"].content_digest in html
    assert "1200" in html
    assert "amount" in html
    assert f'href="/runs/{ledger["prep"].pk}/"' in html
    assert f'href="/runs/{ledger["reader"].pk}/"' in html
    assert f'href="/datasets/{ledger["dataset"].pk}/"' in html
    assert "/api/" not in html


def test_those_who_may_not_see_the_dataset_get_the_portals_404(client, ledger):
    client.force_login(UserFactory())
    assert client.get(f"/datasets/{ledger['dataset'].pk}/").status_code == 404
    assert client.get(f"/datasets/versions/{ledger['first'].pk}/").status_code == 404

    # A grant on one artifact shows the project's name, not its datasets (the API's rule).
    artifact = ArtifactVersionFactory(artifact=ArtifactFactory(project=ledger["project"])).artifact
    client.force_login(grant(Role.VIEWER, on=artifact).user)
    assert client.get(f"/datasets/{ledger['dataset'].pk}/").status_code == 404
    assert client.get(f"/datasets/versions/{ledger['first'].pk}/").status_code == 404
    assert client.get("/datasets/999999/").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(client, ledger):
    assert client.get(f"/datasets/{ledger['dataset'].pk}/").status_code == 302
    assert client.get(f"/datasets/versions/{ledger['first'].pk}/").status_code == 302


@pytest.mark.parametrize("page", ["dataset", "version"])
def test_query_count_does_not_grow_with_versions_or_readers(client, page):
    def queries(count: int) -> int:
        project = ProjectFactory()
        dataset = DatasetFactory(project=project)
        versions = [DatasetVersionFactory(dataset=dataset, run=RunFactory(project=project)) for _ in range(count)]
        for _ in range(count):
            RunFactory(project=project, input_dataset_versions=[versions[0]])
        client.force_login(grant(Role.VIEWER, on=project).user)
        url = f"/datasets/{dataset.pk}/" if page == "dataset" else f"/datasets/versions/{versions[0].pk}/"
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    assert queries(1) == queries(5)
