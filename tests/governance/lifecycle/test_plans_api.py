"""Retention plans over the API: list, detail with totals and progress, items, planning and applying."""

import pytest

from artifacts.access.roles import Role
from artifacts.models import VersionTombstone
from governance.lifecycle.models import RetentionPlan
from governance.lifecycle.services.holds import legal_hold_place
from governance.lifecycle.services.plans import retention_plan_create
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    grant,
)
from tests.governance.lifecycle.retention import rules_in_force
from tests.governance.registry.promotions import maintainer_of

pytestmark = pytest.mark.django_db

PLANS = "/api/v1/retention-plans/"


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def maintainer(project):
    return maintainer_of(project)


def swept(project, count: int = 2) -> list:
    """`count` artifact versions and one dataset version under a rule deleting everything."""
    artifact = ArtifactFactory(project=project)
    versions = [ArtifactVersionFactory(artifact=artifact) for _ in range(count)]
    versions.append(DatasetVersionFactory(dataset=DatasetFactory(project=project)))
    rules_in_force(project, {"name": "sweep"})
    return versions


def test_a_maintainer_plans_and_reads_the_totals_and_progress(api_as, project, maintainer):
    swept(project)
    answer = api_as(maintainer).post(PLANS, {"project": project.slug}, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["state"], body["trigger"], body["created_by"]) == ("planned", "manual", maintainer.username)
    assert (body["versions_to_delete"], body["versions_protected"]) == (3, 0)
    assert body["bytes_reclaimable"] == body["bytes_selected"] > 0
    assert body["progress"] == {"delete": {"pending": 3}}


def test_an_auditor_reads_plans_but_may_not_plan_or_apply(api_as, project, maintainer):
    swept(project)
    plan = retention_plan_create(project=project, created_by=maintainer)
    auditor = api_as(grant(Role.AUDITOR, on=project).user)
    assert [row["id"] for row in auditor.get(PLANS, {"project": project.slug}).json()["results"]] == [plan.pk]
    refused = auditor.post(PLANS, {"project": project.slug}, format="json")
    assert refused.status_code == 403
    assert "needs the maintainer role" in refused.json()["detail"]
    assert auditor.post(f"{PLANS}{plan.pk}/apply/").status_code == 403


def test_a_viewer_reads_plans_and_the_number_of_a_hold_but_not_its_reason(api_as, project, maintainer):
    versions = swept(project)
    hold = legal_hold_place(
        project=project, artifact_version=versions[0], reason="Sealed matter 7.", placed_by=maintainer
    )
    plan = retention_plan_create(project=project, created_by=maintainer)
    viewer = api_as(grant(Role.VIEWER, on=project).user)
    assert [row["id"] for row in viewer.get(PLANS, {"project": project.slug}).json()["results"]] == [plan.pk]
    kept = viewer.get(f"{PLANS}{plan.pk}/items/", {"action": "keep"}).json()["results"]
    assert [item["protected_by"] for item in kept] == [f"legal hold #{hold.pk}"]
    assert viewer.get(f"/api/v1/legal-holds/{hold.pk}/").status_code == 404


def test_items_are_paged_and_filtered_by_action_and_state(api_as, project, maintainer):
    versions = swept(project, count=3)
    plan = retention_plan_create(project=project, created_by=maintainer)
    client = api_as(maintainer)
    page = client.get(f"{PLANS}{plan.pk}/items/", {"page_size": 2, "action": "delete", "state": "pending"}).json()
    assert len(page["results"]) == 2
    assert page["next"]
    item = page["results"][0]
    assert set(item) >= {"version_kind", "version_id", "version", "digest", "size", "rule", "protected_by", "outcome"}
    assert item["rule"] == "sweep"
    everything = client.get(f"{PLANS}{plan.pk}/items/", {"page_size": 10}).json()["results"]
    assert {row["version_id"] for row in everything} == {v.pk for v in versions}
    assert client.get(f"{PLANS}{plan.pk}/items/", {"state": "done"}).json()["results"] == []
    assert client.get(f"{PLANS}{plan.pk}/items/", {"action": "nonsense"}).status_code == 400
    # Left empty, a filter is no filter, as the schema says (allowEmptyValue) and every list's filters do.
    unfiltered = client.get(f"{PLANS}{plan.pk}/items/", {"action": "", "state": "", "page_size": 10}).json()
    assert {row["version_id"] for row in unfiltered["results"]} == {v.pk for v in versions}


def test_apply_answers_202_and_the_worker_applies(api_as, project, maintainer, django_capture_on_commit_callbacks):
    versions = swept(project)
    plan = retention_plan_create(project=project, created_by=maintainer)
    with django_capture_on_commit_callbacks(execute=True):
        answer = api_as(maintainer).post(f"{PLANS}{plan.pk}/apply/")
    assert answer.status_code == 202
    plan.refresh_from_db()
    assert (plan.state, plan.applied_by) == ("applied", maintainer)
    assert VersionTombstone.objects.filter(plan_id=plan.pk).count() == len(versions)
    again = api_as(maintainer).post(f"{PLANS}{plan.pk}/apply/")
    assert again.status_code == 200
    assert again.json()["progress"] == {"delete": {"done": 3}}


def test_a_superseded_plan_answers_409_naming_the_newer(api_as, project, maintainer):
    swept(project)
    older = retention_plan_create(project=project, created_by=maintainer)
    newer = retention_plan_create(project=project, created_by=maintainer)
    answer = api_as(maintainer).post(f"{PLANS}{older.pk}/apply/")
    assert answer.status_code == 409
    assert f"superseded by plan #{newer.pk}" in answer.json()["detail"]
    assert RetentionPlan.objects.get(pk=older.pk).state == "superseded"


def test_items_of_a_restricted_artifact_are_shown_only_to_those_who_see_it(api_as, project, maintainer):
    secret = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, restricted=True))
    rules_in_force(project, {"name": "sweep"})
    plan = retention_plan_create(project=project, created_by=maintainer)
    viewer = api_as(grant(Role.VIEWER, on=project).user)
    assert viewer.get(f"{PLANS}{plan.pk}/items/").json()["results"] == []
    insider = api_as(grant(Role.VIEWER, on=project, user=grant(Role.VIEWER, on=secret.artifact).user).user)
    assert [row["version_id"] for row in insider.get(f"{PLANS}{plan.pk}/items/").json()["results"]] == [secret.pk]


@pytest.mark.parametrize("suffix", ["", "items/"])
def test_lists_cost_the_same_queries_for_1_row_as_for_10(
    api_as, project, maintainer, suffix, django_assert_max_num_queries
):
    rules_in_force(project, {"name": "sweep"})
    artifact = ArtifactFactory(project=project)
    client = api_as(maintainer)

    def url() -> str:
        newest = RetentionPlan.objects.filter(project=project).first()
        return f"{PLANS}{newest.pk}/{suffix}" if suffix else PLANS

    ArtifactVersionFactory(artifact=artifact)
    retention_plan_create(project=project, created_by=maintainer)
    with django_assert_max_num_queries(100) as one:
        client.get(url())
    for _ in range(9):
        ArtifactVersionFactory(artifact=artifact)
        retention_plan_create(project=project, created_by=maintainer)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert len(client.get(url()).json()["results"]) == 10
