"""The portal's lifecycle pages (governance/portal/views/lifecycle.py), the dashboard's storage accounting panel and
what the version page says of deleted, archived and collected bytes: the right figures, only what the user may see,
a 404 for a project they may not see, and the same number of queries however long the lists."""

from datetime import timedelta

import pytest
from django.urls import reverse

from artifacts.access.roles import Role
from artifacts.models import Artifact, Blob
from governance.lifecycle.models import LegalHold, RetentionPlan, RetentionPlanItem
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, UserFactory, grant
from tests.governance.lifecycle.scenario import build, tombstone
from tests.pages import queries_for

pytestmark = pytest.mark.django_db


def page(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def lifecycle_url(slug: str) -> str:
    return reverse("portal:project-lifecycle", args=[slug])


def plan_url(plan: RetentionPlan) -> str:
    return reverse("portal:retention-plan", args=[plan.project.slug, plan.pk])


# The project's lifecycle page ---------------------------------------------------------------------------------------


def test_the_lifecycle_page_shows_the_projects_storage_rules_holds_and_plans(client):
    scenario = build()
    client.force_login(scenario.viewer_of_both)

    response = client.get(lifecycle_url("fraud"))

    assert response.status_code == 200
    html = response.content.decode()
    totals = response.context["report"].totals
    assert (totals.stored_bytes, totals.deduplicated_bytes, totals.archived_bytes) == (1800, 300, 500)
    assert "1.8\xa0KB" in html
    assert f"From plan #{scenario.plan.pk}" in html
    assert [row.kind for row in response.context["report"].by_kind] == ["model", "config", "dataset"]
    # The rules in force are version 2's, with their criteria in words.
    assert "Version 2, set" in html
    assert "cold-datasets" in html
    assert "older than days: 60" in html
    assert "Checkpoints are kept a month now." in html
    # The hold, what it covers and why.
    assert "artifact model" in html
    assert "Litigation 2026-17: keep every model." in html
    # Both plans, newest first, the superseded one too.
    assert [plan.state for plan in response.context["page"].object_list] == ["planned", "superseded"]
    assert plan_url(scenario.plan) in html


def test_a_released_hold_is_no_longer_listed(client):
    scenario = build()
    hold = scenario.first.legal_holds.get()
    LegalHold.objects.filter(pk=hold.pk).update(
        released_at=scenario.now, released_by=scenario.maintainer, release_reason="Case closed."
    )

    html = page(client, scenario.viewer_of_both, lifecycle_url("fraud"))

    assert "Litigation 2026-17" not in html
    assert "No legal hold you may see is in force." in html


def test_a_project_without_rules_or_plans_says_so(client):
    scenario = build()

    html = page(client, scenario.viewer_of_both, lifecycle_url("churn"))

    assert "No retention rules: churn keeps every version." in html
    assert "No plan yet" in html
    assert "1000\xa0bytes" in html


def test_a_project_the_user_may_not_see_answers_404_on_every_lifecycle_page(client):
    scenario = build()
    client.force_login(scenario.viewer_of_second)

    assert client.get(lifecycle_url("fraud")).status_code == 404
    assert client.get(plan_url(scenario.plan)).status_code == 404
    assert client.get(lifecycle_url("no-such-project")).status_code == 404


def test_a_plan_of_another_project_is_not_found_under_this_one(client):
    scenario = build()
    client.force_login(scenario.viewer_of_both)

    response = client.get(reverse("portal:retention-plan", args=["churn", scenario.plan.pk]))

    assert response.status_code == 404


def test_an_artifact_grantee_sees_their_artifacts_bytes_and_none_of_the_projects_records(client):
    scenario = build()
    grantee = grant(Role.VIEWER, on=scenario.model_v1.artifact).user

    client.force_login(grantee)
    response = client.get(lifecycle_url("fraud"))

    assert response.status_code == 200
    assert response.context["report"].totals.stored_bytes == 1000 + 300  # the model's live versions alone
    assert response.context["policy"] is None
    assert response.context["holds"] == []
    assert list(response.context["page"].object_list) == []
    assert client.get(plan_url(scenario.plan)).status_code == 404


def test_the_anonymous_visitor_is_sent_to_sign_in(client):
    scenario = build()

    response = client.get(lifecycle_url("fraud"))

    assert response.status_code == 302
    assert scenario.first.slug not in response["Location"].split("?")[0]


# A plan ---------------------------------------------------------------------------------------------------------------


def test_the_plan_page_lists_each_item_with_its_action_rule_size_and_protection(client):
    scenario = build()

    html = page(client, scenario.viewer_of_both, plan_url(scenario.plan))

    assert "Plan #" in html
    assert "transactions v1" in html
    assert "cold-datasets" in html
    assert "Legal hold: Litigation 2026-17." in html
    assert reverse("portal:artifact-version", args=[scenario.model_v1.pk]) in html
    assert "would leave storage when it is applied" in html


def test_items_on_a_restricted_artifact_are_left_out_and_counted(client):
    scenario = build()
    secret = ArtifactFactory(project=scenario.first, name="secret-model", kind=Artifact.Kind.MODEL, restricted=True)
    hidden = ArtifactVersionFactory(artifact=secret)
    RetentionPlanItem.objects.create(
        plan=scenario.plan, artifact_version=hidden, blob_id=hidden.blob_id, size=256, action="delete", rule="r"
    )

    html = page(client, scenario.viewer_of_both, plan_url(scenario.plan))

    assert "secret-model" not in html
    assert "1 more version of artifacts you may not see is left out." in html


def test_the_plan_pages_cost_the_same_queries_for_one_or_many_items_and_plans(client):
    scenario = build()
    client.force_login(scenario.viewer_of_both)
    few_items, few_plans = queries_for(client, plan_url(scenario.plan)), queries_for(client, lifecycle_url("fraud"))

    model = scenario.model_v1.artifact
    for index in range(8):
        version = ArtifactVersionFactory(artifact=model)
        RetentionPlanItem.objects.create(
            plan=scenario.plan, artifact_version=version, blob_id=version.blob_id, size=256, action="delete", rule="r"
        )
        RetentionPlan.objects.create(
            project=scenario.first,
            policy_version=2,
            state="superseded",
            trigger="schedule",
            created_at=scenario.now - timedelta(days=10 + index),
        )

    assert queries_for(client, plan_url(scenario.plan)) == few_items
    assert queries_for(client, lifecycle_url("fraud")) == few_plans


# The dashboard's panel --------------------------------------------------------------------------------------------


def test_the_dashboard_panel_counts_every_visible_project_and_lists_them_largest_first(client):
    scenario = build()
    client.force_login(scenario.viewer_of_both)

    response = client.get(reverse("portal:dashboard"))

    totals = response.context["storage_totals"]
    assert (totals.stored_bytes, totals.deduplicated_bytes, totals.archived_bytes) == (1800, 1300, 500)
    rows = response.context["storage_projects"]
    assert [(row.project.slug, plan.plan_id if plan else None) for row, plan in rows] == [
        ("fraud", scenario.plan.pk),
        ("churn", None),
    ]
    html = response.content.decode()
    assert lifecycle_url("fraud") in html
    assert "no plan yet" in html


def test_the_dashboard_panel_hides_other_projects(client):
    scenario = build()
    client.force_login(scenario.viewer_of_second)

    response = client.get(reverse("portal:dashboard"))

    assert [row.project.slug for row, _ in response.context["storage_projects"]] == ["churn"]
    assert response.context["storage_totals"].stored_bytes == 1000


# The version page ---------------------------------------------------------------------------------------------------


def test_a_deleted_versions_page_says_when_by_whom_and_why_and_offers_no_download(client):
    scenario = build()

    html = page(client, scenario.viewer_of_both, reverse("portal:artifact-version", args=[scenario.deleted.pk]))

    assert "Deleted on" in html
    assert f"by {scenario.maintainer.get_username()}" in html
    assert "Older than 90 days." in html
    assert "old-checkpoints" in html
    assert "are no longer served" in html
    assert reverse("api:artifactversion-download", args=[scenario.deleted.pk]) not in html


def test_a_version_deleted_on_schedule_and_collected_says_so(client):
    scenario = build()

    html = page(client, scenario.viewer_of_both, reverse("portal:artifact-version", args=[scenario.collected.pk]))

    assert "the project's retention schedule" in html
    assert "Superseded checkpoint." in html
    assert "were collected" in html


def test_an_archived_versions_page_names_its_storage_class(client):
    scenario = build()
    archived = ArtifactVersionFactory(artifact=scenario.model_v1.artifact)
    Blob.objects.filter(pk=archived.blob_id).update(storage_class="DEEP_ARCHIVE", archived_at=scenario.now)

    html = page(client, scenario.viewer_of_both, reverse("portal:artifact-version", args=[archived.pk]))

    assert "Archived" in html
    assert "DEEP_ARCHIVE" in html
    assert "Deleted on" not in html


def test_a_live_versions_page_mentions_no_deletion(client):
    scenario = build()

    html = page(client, scenario.viewer_of_both, reverse("portal:artifact-version", args=[scenario.model_v1.pk]))

    assert "Deleted on" not in html
    assert "were collected" not in html


def test_a_deleted_version_stays_hidden_from_who_may_not_see_it(client):
    scenario = build()
    other = ArtifactVersionFactory(artifact=scenario.model_v1.artifact)
    tombstone(other, by=UserFactory(username="remover"), at=scenario.now)
    client.force_login(scenario.viewer_of_second)

    assert client.get(reverse("portal:artifact-version", args=[other.pk])).status_code == 404
