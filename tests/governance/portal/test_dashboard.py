"""The portal's dashboard (governance/portal/views/dashboard.py and the dashboard reads in
governance/*/selectors.py): each
section counts only what the signed-in user may see, says so when there is nothing, and the page costs the same
number of queries whatever the amount of data."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.models import Blob
from artifacts.services.integrity import blob_verify
from artifacts.services.lifecycle import blob_collect, version_delete
from core.models import AuditEntry
from governance.lifecycle.services.snapshots import storage_snapshot_take
from governance.registry.gates import gates_evaluate
from governance.registry.models import PromotionPolicy
from governance.registry.services.promotions import promotion_approve
from governance.registry.services.registry import promotion_policy_set
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
)
from tests.governance.factories import (
    ModelVersionFactory,
    PromotionRequestFactory,
    RegisteredModelFactory,
    artifact_version_with_lineage,
)

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"


# Arranging ---------------------------------------------------------------------------------------------------------


def dashboard_for(client, user):
    client.force_login(user)
    response = client.get(reverse("portal:dashboard"))
    assert response.status_code == 200
    return response


def promoted(version) -> None:
    """Move `version` into production the normal way: a request, and approvals by as many new reviewers."""
    request = PromotionRequestFactory(model_version=version)
    for _ in range(request.approvals_required):
        request = promotion_approve(
            request=request, reviewer=grant(Role.REVIEWER, on=version.registered_model.project).user
        )
    assert request.state == "approved", request.blocked_by


def production_version(project, *, accuracy: float = 0.93):
    """A new model of `project` with one version, in production; its run measured `accuracy`."""
    model = RegisteredModelFactory(project=project)
    version = ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(project, metrics={"accuracy": accuracy})
    )
    promoted(version)
    return version


def policy(project, **values) -> PromotionPolicy:
    maintainer = grant(Role.MAINTAINER, on=project).user
    return promotion_policy_set(project=project, stage="production", changed_by=maintainer, **values)[0]


def svg_of(response) -> ET.Element:
    found = re.search(r"<svg\b.*?</svg>", response.content.decode(), flags=re.DOTALL)
    assert found, "the page draws no SVG"
    return ET.fromstring(found.group(0))  # noqa: S314 (the markup is the page under test, not untrusted input)


# Signing in --------------------------------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("portal:dashboard"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:login')}?next=/"


def test_user_with_no_role_sees_every_section_empty(client):
    other = ProjectFactory()
    production_version(other)
    PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=RegisteredModelFactory(project=other)))

    response = dashboard_for(client, UserFactory())

    page = response.content.decode()
    for sentence in [
        "No promotion request is waiting for your decision.",
        "No stored bytes you can see yet.",
        "No model version you can see yet.",
        "No production version you can see.",
        "No daily storage snapshot of a project you can see in the last 30 days, so nothing to chart yet",
        "No version you can see keeps bytes here yet, and none was published or deleted this year.",
        "You audit no project or artifact, so this lists your own latest acts only.",
    ]:
        assert sentence in page
    assert "<svg" not in page
    # Signing in is the one act of theirs on record.
    assert [entry.action for entry, _ in response.context["entries"]] == ["user.logged_in"]


# Promotion requests awaiting me ------------------------------------------------------------------------------------


def test_awaiting_lists_open_requests_the_user_may_decide_and_has_not(client):
    project, elsewhere = ProjectFactory(slug="fraud"), ProjectFactory()
    reviewer = grant(Role.REVIEWER, on=project, user=UserFactory(username="rui")).user
    grant(Role.CONTRIBUTOR, on=project, user=reviewer)
    model = RegisteredModelFactory(project=project, name="scorer")
    waiting = PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=model))
    own = PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=model), requested_by=reviewer)
    already_approved = PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=model))
    promotion_approve(request=already_approved, reviewer=reviewer)
    theirs = PromotionRequestFactory(
        model_version=ModelVersionFactory(registered_model=RegisteredModelFactory(project=elsewhere))
    )

    response = dashboard_for(client, reviewer)

    assert response.context["awaiting"] == [waiting]
    page = response.content.decode()
    assert f'href="/promotions/{waiting.pk}/"' in page
    assert f"fraud/scorer v{waiting.model_version.number}" in page
    assert waiting.requested_by.get_username() in page
    awaiting_section = page.split('id="activity-heading"')[0]  # the activity below may name the reviewer's own acts
    for hidden in (own, already_approved, theirs):
        assert f"/promotions/{hidden.pk}/" not in awaiting_section


# Integrity and storage ---------------------------------------------------------------------------------------------


def test_integrity_counts_the_visible_blobs_by_state_and_the_last_verification(client, isolated_blob_folder):
    project, elsewhere = ProjectFactory(), ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    verified = [BlobFactory(project=project) for _ in range(2)]
    for blob in verified:
        blob_verify(blob=blob)
    BlobFactory(project=project)
    corrupt = BlobFactory(project=project)
    (isolated_blob_folder / corrupt.storage_key).unlink()
    blob_verify(blob=corrupt)
    blob_verify(blob=BlobFactory(project=elsewhere))
    BlobFactory(project=elsewhere)

    response = dashboard_for(client, viewer)

    blobs = response.context["blobs"]
    assert (blobs["verified"], blobs["pending"], blobs["corrupt"]) == (2, 1, 1)
    last = Blob.objects.filter(project_links__project=project).order_by("-verified_at").first().verified_at
    assert blobs["last_verified_at"] == last
    assert f'<time datetime="{last.isoformat()}"' in response.content.decode()


def test_integrity_leaves_out_blobs_whose_bytes_were_collected(client):
    project = ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    kept, gone = (ArtifactVersionFactory(artifact__project=project) for _ in range(2))
    version_delete(version=gone, deleted_by=None, reason="Old.")
    assert blob_collect(blob_id=gone.blob_id)

    blobs = dashboard_for(client, viewer).context["blobs"]

    assert (blobs["verified"], blobs["pending"], blobs["corrupt"]) == (0, 1, 0)
    assert kept.blob.state == Blob.State.PENDING


def test_storage_used_is_what_the_snapshots_of_the_visible_projects_store(client):
    first, second, elsewhere = ProjectFactory(), ProjectFactory(), ProjectFactory()
    viewer = grant(Role.VIEWER, on=first).user
    grant(Role.VIEWER, on=second, user=viewer)
    ArtifactVersionFactory(artifact__project=first, content=b"f" * 1000)
    ArtifactVersionFactory(artifact__project=second, content=b"s" * 500)
    ArtifactVersionFactory(artifact__project=elsewhere, content=b"e" * 7000)
    gone = ArtifactVersionFactory(artifact__project=first, content=b"g" * 4000)
    version_delete(version=gone, deleted_by=None, reason="Old.")
    blob_collect(blob_id=gone.blob_id)
    storage_snapshot_take()

    response = dashboard_for(client, viewer)

    assert response.context["storage_totals"].stored_bytes == 1500
    card = response.content.decode().split('id="storage-heading"')[1].split("</section>")[0]
    assert "1.5\xa0KB" in card
    assert "For the 2 live versions of the projects you may see" in card


def test_storage_growth_draws_each_daily_snapshot_of_the_last_thirty_days(client):
    project = ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    now = timezone.now()
    ArtifactVersionFactory(artifact__project=project, content=b"o" * 100)
    storage_snapshot_take(now=now - timedelta(days=40))  # before the span: the first change is measured from it
    ArtifactVersionFactory(artifact__project=project, content=b"t" * 20)
    storage_snapshot_take(now=now - timedelta(days=10))
    removed = ArtifactVersionFactory(artifact__project=project, content=b"r" * 50)
    storage_snapshot_take(now=now - timedelta(days=1))
    version_delete(version=removed, deleted_by=None, reason="Old.")
    blob_collect(blob_id=removed.blob_id)
    storage_snapshot_take(now=now)
    ArtifactVersionFactory(artifact__project=ProjectFactory(), content=b"x" * 9999)

    points = dashboard_for(client, viewer).context["storage"]["points"]

    today = now.astimezone(UTC).date()
    assert [(point.day, point.total, point.change) for point in points] == [
        (today - timedelta(days=10), 120, "+20\xa0bytes"),
        (today - timedelta(days=1), 170, "+50\xa0bytes"),
        (today, 120, "-50\xa0bytes"),
    ]
    assert points[-1].x > points[1].x > points[0].x  # placed by date: nine days apart, then one


def test_storage_chart_is_well_formed_svg_with_a_title_a_description_axes_and_every_snapshot_day(client):
    project = ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    ArtifactVersionFactory(artifact__project=project, content=b"o" * 2048)
    storage_snapshot_take(now=timezone.now() - timedelta(days=5))
    storage_snapshot_take()

    svg = svg_of(dashboard_for(client, viewer))

    assert svg.tag == f"{SVG}svg"
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "storage-chart-title storage-chart-desc"
    assert svg.find(f"{SVG}title").get("id") == "storage-chart-title"
    assert "2.0\xa0KB" in svg.find(f"{SVG}desc").text
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    assert {"Day (UTC)", "Bytes stored"} <= set(texts)
    assert "2.0\xa0KB" in texts
    points = svg.findall(f"{SVG}g[@class='points']/{SVG}circle")
    assert len(points) == 2
    day = (timezone.now() - timedelta(days=5)).astimezone(UTC).date().isoformat()
    assert f"{day}: 2.0\xa0KB (+2.0\xa0KB)" in [point.find(f"{SVG}title").text for point in points]


def test_without_a_daily_snapshot_the_chart_says_why_it_is_empty(client):
    project = ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    ArtifactVersionFactory(artifact__project=project)

    response = dashboard_for(client, viewer)

    assert response.context["storage"] is None
    assert "No daily storage snapshot of a project you can see in the last 30 days" in response.content.decode()


# Lineage completeness ----------------------------------------------------------------------------------------------


def test_lineage_counts_versions_whose_run_has_a_commit_and_an_input_dataset(client):
    project = ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    model = RegisteredModelFactory(project=project)
    complete = ModelVersionFactory(registered_model=model)
    no_run = ArtifactVersionFactory(artifact=ArtifactFactory(project=project))
    no_input = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), run=RunFactory(project=project))
    input_version = DatasetVersionFactory(dataset=DatasetFactory(project=project))
    no_commit = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project),
        run=RunFactory(project=project, code_commit="", input_dataset_versions=[input_version]),
    )
    versions = [complete] + [
        ModelVersionFactory(registered_model=model, artifact_version=artifact_version)
        for artifact_version in (no_run, no_input, no_commit)
    ]
    ModelVersionFactory(registered_model=RegisteredModelFactory(project=ProjectFactory()))

    response = dashboard_for(client, viewer)

    assert response.context["lineage"] == {"total": 4, "complete": 1}
    assert response.context["lineage_share"] == 25
    assert "Complete for 1 of 4 model versions" in response.content.decode()
    # The same verdict as the lineage gate's, version by version.
    lineage_only = PromotionPolicy(stage="staging", require_verified_blob=False, require_complete_lineage=True)
    passing = [
        gates_evaluate(lineage_only, version, current_production=None, now=timezone.now())[0]["passed"]
        for version in versions
    ]
    assert passing == [True, False, False, False]


# Policy compliance -------------------------------------------------------------------------------------------------


def test_compliance_judges_production_versions_under_the_current_policy_and_names_the_failing_gate(client):
    project, elsewhere = ProjectFactory(), ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    strong = production_version(project, accuracy=0.99)
    weak = production_version(project, accuracy=0.93)
    ModelVersionFactory(registered_model=strong.registered_model)  # Not in production: not judged.
    hidden = production_version(elsewhere, accuracy=0.5)
    for each in (project, elsewhere):
        policy(each, metric_thresholds=[{"metric": "accuracy", "operator": ">=", "value": 0.95}])

    response = dashboard_for(client, viewer)

    assert response.context["compliant"] == 1
    assert response.context["compliance_share"] == 50
    assert [row.version for row in response.context["non_compliant"]] == [weak]
    page = response.content.decode()
    assert "Passing now for 1 of 2 production versions" in page
    assert f"{project.slug}/{weak.registered_model.name} v{weak.number}" in page
    assert "accuracy is 0.93, needs &gt;= 0.95." in page
    assert strong.registered_model.name not in page.split("Production versions failing their policy now")[1]
    assert hidden.registered_model.name not in page


def test_compliance_uses_the_default_policy_where_a_project_saved_none(client, isolated_blob_folder):
    project = ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    version = production_version(project)
    blob = version.artifact_version.blob
    (isolated_blob_folder / blob.storage_key).unlink()
    blob_verify(blob=blob)

    response = dashboard_for(client, viewer)

    assert [row.version for row in response.context["non_compliant"]] == [version]
    [failing] = [gate for gate in response.context["non_compliant"][0].gates_now if not gate["passed"]]
    assert failing["gate"] == "integrity"
    assert "default" in response.content.decode()


def test_all_production_versions_compliant_lists_none(client):
    project = ProjectFactory()
    viewer = grant(Role.VIEWER, on=project).user
    production_version(project)

    response = dashboard_for(client, viewer)

    assert response.context["compliance_share"] == 100
    assert "Production versions failing their policy now" not in response.content.decode()


# Recent activity ---------------------------------------------------------------------------------------------------


def test_an_auditor_sees_the_latest_entries_of_the_projects_they_audit(client):
    project, elsewhere = ProjectFactory(), ProjectFactory()
    auditor = grant(Role.AUDITOR, on=project).user
    for _ in range(20):
        RegisteredModelFactory(project=project)
    RegisteredModelFactory(project=elsewhere)

    response = dashboard_for(client, auditor)

    entries = [entry for entry, _ in response.context["entries"]]
    assert len(entries) == 15
    assert {entry.project_id for entry in entries} == {project.pk}
    newest = AuditEntry.objects.filter(project_id=project.pk).order_by("-seq")[:15]
    assert [entry.seq for entry in entries] == [entry.seq for entry in newest]
    assert "The latest entries of the audit log you may read." in response.content.decode()


def test_someone_who_audits_nothing_sees_only_their_own_acts(client):
    project = ProjectFactory()
    contributor = grant(Role.CONTRIBUTOR, on=project).user
    RegisteredModelFactory(project=project, created_by=contributor, name="by-me")
    RegisteredModelFactory(project=project, name="by-someone-else")

    response = dashboard_for(client, contributor)

    entries = [entry for entry, _ in response.context["entries"]]
    assert entries
    assert {entry.actor_user_id for entry in entries} == {contributor.pk}
    page = response.content.decode()
    assert "You audit no project or artifact, so this lists your own latest acts only." in page
    assert "by-me" in page
    assert "by-someone-else" not in page


# Cost --------------------------------------------------------------------------------------------------------------


def add_project_of_everything(user, index: int) -> None:
    """A project `user` reviews and audits, holding one of each thing the dashboard counts: a production version,
    a request awaiting the user, blobs of every state, audit entries and daily storage snapshots; every other one
    has a saved policy."""
    project = ProjectFactory()
    grant(Role.REVIEWER, on=project, user=user)
    grant(Role.AUDITOR, on=project, user=user)
    production_version(project)
    if index % 2:
        policy(project, metric_thresholds=[{"metric": "accuracy", "operator": ">=", "value": 0.95}])
    PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=RegisteredModelFactory(project=project)))
    BlobFactory(project=project)
    storage_snapshot_take(project=project, now=timezone.now() - timedelta(days=index))
    storage_snapshot_take(project=project)


def test_the_number_of_queries_does_not_grow_with_the_data(client):
    user = UserFactory()
    client.force_login(user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("portal:dashboard"))
        assert response.status_code == 200
        return len(captured)

    add_project_of_everything(user, 0)
    with_one = queries()
    for index in range(1, 10):
        add_project_of_everything(user, index)
    with_ten = queries()

    assert with_ten == with_one
    response = client.get(reverse("portal:dashboard"))
    assert len(response.context["awaiting"]) == 10
    assert len(response.context["production"]) == 10
    assert response.context["lineage"]["total"] == 20
