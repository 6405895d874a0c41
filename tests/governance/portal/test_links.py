"""Every reference the portal prints leads to a portal page: an audit entry's object (governance.portal.links), and
the model versions listed on the models, model, promotions and dashboard pages, which lead to their artifact
version's page."""

import re

import pytest
from django.urls import reverse

from artifacts.access.roles import Role
from core.audit.recorder import audit_record
from governance.portal.links import portal_url_for, portal_urls_for, with_object_urls
from governance.registry.services.promotions import promotion_approve
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
    grant,
)
from tests.governance.factories import (
    ModelVersionFactory,
    PromotionRequestFactory,
    RegisteredModelFactory,
    auditor_of,
    global_auditor,
)

pytestmark = pytest.mark.django_db


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


# An audit entry's object -------------------------------------------------------------------------------------------


def test_audit_references_map_to_their_portal_pages():
    user = UserFactory(is_superuser=True)
    project = ProjectFactory(slug="fraud")
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    model_version = ModelVersionFactory(registered_model=RegisteredModelFactory(project=project))
    run = RunFactory(project=project)
    dataset_version = DatasetVersionFactory(dataset__project=project)
    request = PromotionRequestFactory(model_version=model_version)

    assert portal_url_for("run", str(run.pk), user) == f"/runs/{run.pk}/"
    dataset = dataset_version.dataset_id
    assert portal_url_for("dataset", str(dataset), user) == f"/datasets/{dataset}/"
    assert portal_url_for("dataset_version", str(dataset_version.pk), user) == (
        f"/datasets/versions/{dataset_version.pk}/"
    )
    assert portal_url_for("artifact_version", str(version.pk), user) == f"/versions/{version.pk}/"
    registered = model_version.registered_model_id
    assert portal_url_for("registered_model", str(registered), user) == f"/models/{registered}/"
    assert portal_url_for("promotion_request", str(request.pk), user) == f"/promotions/{request.pk}/"
    assert portal_url_for("project", str(project.pk), user) == "/projects/fraud/"
    assert portal_url_for("legal_hold", "1", user, project_id=project.pk) == "/projects/fraud/lifecycle/"
    assert portal_url_for("model_version", str(model_version.pk), user) == (
        f"/versions/{model_version.artifact_version_id}/"
    )
    assert portal_url_for("artifact", str(version.artifact_id), user) == f"/versions/{version.pk}/"


@pytest.mark.parametrize(
    ("object_type", "object_id"),
    [
        ("blob", "1"),
        ("role_grant", "1"),
        ("user", "ada"),
        ("audit_log", "audit_log"),
        ("run", "x"),
        ("run", "\u00b2"),
        ("run", "9" * 40),
        ("run", "999999"),
        ("legal_hold", "1"),  # no project recorded
    ],
)
def test_references_without_a_page_are_not_links(object_type, object_id):
    assert portal_url_for(object_type, object_id, UserFactory(is_superuser=True)) is None


def test_a_record_the_user_may_not_see_gets_no_link():
    model_version = ModelVersionFactory()
    project = model_version.registered_model.project
    run = RunFactory(project=project)
    outsider = UserFactory()

    assert portal_url_for("model_version", str(model_version.pk), outsider) is None
    assert portal_url_for("artifact", str(model_version.artifact_version.artifact_id), outsider) is None
    assert portal_url_for("run", str(run.pk), outsider) is None
    assert portal_url_for("project", str(project.pk), outsider) is None
    assert portal_url_for("legal_hold", "1", outsider, project_id=project.pk) is None


def test_an_audit_entrys_object_links_to_its_portal_page_for_those_who_may_open_it(client):
    project = ProjectFactory()
    run = RunFactory(project=project, name="train-gbm")
    entry = audit_record("run.updated", obj=run)
    link = f'<a href="/runs/{run.pk}/">{entry.object_label}</a>'

    client.force_login(auditor_of(project))  # the auditor role reads the project too
    assert link in client.get(reverse("portal:audit-entry", args=[entry.seq])).content.decode()

    # Who reads the whole log by permission alone may not open the run: the entry names it, without a link to a 404.
    client.force_login(global_auditor())
    html = client.get(reverse("portal:audit-entry", args=[entry.seq])).content.decode()
    assert entry.object_label in html
    assert f'href="/runs/{run.pk}/"' not in html


def test_the_audit_list_and_the_dashboards_activity_link_each_object_the_viewer_may_open(client):
    project = ProjectFactory()
    run = RunFactory(project=project, name="train-gbm")
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    hidden = RunFactory(name="elsewhere")  # another project, which the auditor does not audit
    entries = [audit_record("run.updated", obj=each) for each in (run, version, hidden)]
    auditor = auditor_of(project)
    client.force_login(auditor)

    for page in (reverse("portal:audit"), reverse("portal:dashboard")):
        html = client.get(page).content.decode()
        assert f'href="/runs/{run.pk}/"' in html, page
        assert f'href="/versions/{version.pk}/"' in html, page
        assert entries[2].object_label not in html, page  # not even listed: the entry is not the auditor's to read
        assert f'href="/runs/{hidden.pk}/"' not in html, page


def test_a_page_of_entries_finds_its_links_in_one_query_per_kind_of_object(django_assert_num_queries):
    project = ProjectFactory()
    runs = RunFactory.create_batch(4, project=project)
    versions = [ArtifactVersionFactory(artifact=ArtifactFactory(project=project)) for _ in range(3)]
    entries = [audit_record("run.updated", obj=each) for each in [*runs, *versions]]
    superuser = UserFactory(is_superuser=True)

    with django_assert_num_queries(2):  # the runs, then the artifact versions
        linked = with_object_urls(entries, superuser)

    assert [url for _, url in linked] == [f"/runs/{r.pk}/" for r in runs] + [f"/versions/{v.pk}/" for v in versions]


def test_an_artifact_links_to_its_newest_version_in_a_batch_too():
    artifact = ArtifactFactory()
    older, newest = ArtifactVersionFactory(artifact=artifact), ArtifactVersionFactory(artifact=artifact)
    reference = ("artifact", str(artifact.pk), artifact.project_id)

    assert older.number < newest.number
    assert portal_urls_for([reference], UserFactory(is_superuser=True)) == {reference: f"/versions/{newest.pk}/"}


# Model versions, wherever they are listed ---------------------------------------------------------------------------


@pytest.fixture
def registry():
    project = ProjectFactory(slug="fraud")
    model = RegisteredModelFactory(project=project, name="scorer")
    first = ModelVersionFactory(registered_model=model)
    second = ModelVersionFactory(registered_model=model)
    request = PromotionRequestFactory(model_version=second, target_stage="staging")
    reviewer = grant(Role.REVIEWER, on=project).user
    grant(Role.VIEWER, on=project, user=reviewer)
    return {"project": project, "model": model, "first": first, "second": second, "request": request, "user": reviewer}


def version_href(model_version) -> str:
    return f"/versions/{model_version.artifact_version_id}/"


def test_the_model_page_links_each_version_row_and_digest_to_its_version_page(client, registry):
    client.force_login(registry["user"])

    html = client.get(f"/models/{registry['model'].pk}/").content.decode()

    for name in ("first", "second"):
        digest = registry[name].artifact_version.blob.digest[:12]
        assert f'<a href="{version_href(registry[name])}"><code title="sha256:' in html
        assert f'">{digest}</code></a>' in html
        assert hrefs(html).count(version_href(registry[name])) >= 2  # the row's number and its digest


def test_the_promotions_list_and_the_dashboard_link_the_version_under_review(client, registry):
    client.force_login(registry["user"])

    promotions = client.get("/promotions/").content.decode()
    dashboard = client.get("/").content.decode()

    assert version_href(registry["second"]) in hrefs(promotions)
    assert version_href(registry["second"]) in hrefs(dashboard)
    assert f"/models/{registry['model'].pk}/" in hrefs(promotions)


def test_the_models_list_links_versions_in_a_stage_and_the_project(client, registry):
    request = PromotionRequestFactory(model_version=registry["first"])
    for _ in range(request.approvals_required):
        request = promotion_approve(request=request, reviewer=grant(Role.REVIEWER, on=registry["project"]).user)
    assert request.state == "approved", request.blocked_by
    client.force_login(registry["user"])

    html = client.get("/models/").content.decode()

    assert version_href(registry["first"]) in hrefs(html)
    assert "/projects/fraud/" in hrefs(html)


def test_no_page_of_the_registry_links_into_the_api(client, registry):
    DatasetVersionFactory(dataset__project=registry["project"])
    client.force_login(registry["user"])
    model = registry["model"]
    pages = ["/", "/models/", f"/models/{model.pk}/", "/promotions/", f"/promotions/{registry['request'].pk}/"]
    pages.append(f"/models/{model.pk}/compare/?a=1&b=2")

    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert not [href for href in hrefs(response.content.decode()) if href.startswith("/api/")], page
