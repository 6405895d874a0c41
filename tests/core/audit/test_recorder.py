"""What the audit log records: every create and state change through the services, and every read of artifact
bytes, with who acted (a user, the token they used, or the system), from where, and what changed.

(Over 600 lines on purpose: one section per kind of act, so a reader checks in one file that every kind is
recorded, each with the same helpers below that read the log.)"""

import io
import json
import os
import sys
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from artifacts import services
from artifacts.access.roles import Role
from artifacts.access.services import role_grant, role_revoke
from artifacts.models import Artifact, Blob, Project, RoleGrant, Run, UploadSession
from artifacts.services import uploads
from artifacts.tasks import verify_blob, verify_direct_upload
from core import changes as change_sets
from core.audit.actions import AuditAction
from core.audit.tree import log_size
from core.errors import InvalidInput
from core.models import AuditEntry
from governance.access.models import AccessReviewItem, ApiToken
from governance.access.services import api_token_revoke, item_decide
from governance.audit.selectors import entries_about_artifact
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    BlobFactory,
    DatasetFactory,
    ProjectFactory,
    UserFactory,
    grant,
    sha256,
)
from tests.governance.factories import AccessReviewCampaignFactory, ApiTokenFactory

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects/"


def recorded(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("seq"))


def only(action: str) -> AuditEntry:
    entries = recorded(action)
    assert len(entries) == 1, [str(entry) for entry in entries]
    return entries[0]


def changes(entry: AuditEntry) -> dict:
    return json.loads(entry.changes)


def token_id_of(client) -> int:
    """The API token an `api`/`api_as` client authenticates with (the user's only token)."""
    return ApiToken.objects.get(user=client.user).pk


def upload(api, project: Project, data: bytes):
    return api.put(f"{PROJECTS}{project.slug}/blobs/{sha256(data)}", data=data, content_type="application/octet-stream")


def publish(api, artifact, data: bytes):
    assert upload(api, artifact.project, data).status_code in (200, 201)
    return api.post("/api/v1/artifact-versions/", {"artifact": artifact.pk, "digest": sha256(data)}, format="json")


# Who, from where -----------------------------------------------------------------------------------------


def test_api_write_records_the_user_their_token_and_the_request(api, user):
    response = api.post(
        PROJECTS,
        {"slug": "churn", "name": "Churn"},
        format="json",
        HTTP_X_REQUEST_ID="trace-42",
        HTTP_USER_AGENT="provenant-client/1.2",
        REMOTE_ADDR="203.0.113.7",
    )

    assert response.status_code == 201
    assert response["X-Request-ID"] == "trace-42"
    entry = only("project.created")
    assert (entry.actor_kind, entry.actor_user_id, entry.actor_label) == ("user", user.pk, user.username)
    assert entry.token_id == token_id_of(api)
    assert (entry.request_id, entry.source_ip, entry.user_agent) == ("trace-42", "203.0.113.7", "provenant-client/1.2")
    project = Project.objects.get(slug="churn")
    assert (entry.object_type, entry.object_id, entry.object_label) == ("project", str(project.pk), "churn")
    assert (entry.project_id, entry.project_label) == (project.pk, "churn")
    assert changes(entry) == {"slug": "churn", "name": "Churn", "description": ""}


def test_a_request_without_an_id_gets_one_that_the_entry_and_the_response_share(api):
    response = api.post(PROJECTS, {"slug": "churn", "name": "Churn"}, format="json")

    assert only("project.created").request_id == response["X-Request-ID"] != ""


def test_the_creator_becomes_maintainer_and_both_acts_are_recorded_in_one_request(api, user):
    response = api.post(PROJECTS, {"slug": "churn", "name": "Churn"}, format="json")

    granted = only("role_grant.granted")
    assert granted.request_id == only("project.created").request_id == response["X-Request-ID"]
    assert changes(granted)["role"] == Role.MAINTAINER
    assert changes(granted)["grantee"] == f"user {user.username}"


# What is recorded: the catalogue -------------------------------------------------------------------------


def test_an_api_write_appends_its_entries_after_the_visibility_re_read(api_as):
    """The append locks the log's head row until the commit: the API's re-read of the written object (the access
    rule's statement) runs before it, so concurrent writers do not queue behind that read too."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    project, maintainer = ProjectFactory(), UserFactory()
    grant(Role.MAINTAINER, on=project, user=maintainer)
    api = api_as(maintainer)
    api.get(PROJECTS)  # the first use of a token records it: keep that write out
    with CaptureQueriesContext(connection) as queries:
        response = api.patch(f"{PROJECTS}{project.slug}/", {"description": "Weekly."}, format="json")
    assert response.status_code == 200, response.content
    statements = [query["sql"] for query in queries.captured_queries]
    head = next(i for i, sql in enumerate(statements) if sql.startswith('UPDATE "core_auditloghead"'))
    assert [sql.split()[0] for sql in statements[head + 1 :] if "SAVEPOINT" not in sql] == ["INSERT"]
    assert any('"artifacts_project"' in sql and sql.startswith("SELECT") for sql in statements[:head])
    assert only("project.updated").changes


def test_project_update_records_before_and_after_of_what_changed_only(api):
    project = ProjectFactory(slug="churn", name="Churn", description="old")

    api.patch(f"{PROJECTS}churn/", {"name": "Churn model", "description": "old"}, format="json")

    entry = only("project.updated")
    assert changes(entry) == {"name": ["Churn", "Churn model"]}
    assert entry.object_id == str(project.pk)


def test_an_update_that_changes_nothing_records_nothing(api):
    ProjectFactory(slug="churn", name="Churn")

    assert api.patch(f"{PROJECTS}churn/", {"name": "Churn"}, format="json").status_code == 200

    assert recorded("project.updated") == []


def test_dataset_creation_and_description_change_are_recorded(api):
    project = ProjectFactory()

    created = api.post("/api/v1/datasets/", {"project": project.slug, "name": "events"}, format="json")
    api.patch(f"/api/v1/datasets/{created.data['id']}/", {"description": "click events"}, format="json")

    entry = only("dataset.created")
    assert (entry.object_type, entry.object_label, entry.project_id) == (
        "dataset",
        f"{project.slug}/events",
        project.pk,
    )
    assert changes(entry) == {"name": "events", "description": ""}
    assert changes(only("dataset.updated")) == {"description": ["", "click events"]}


def test_dataset_version_creation_is_recorded_and_recording_the_same_content_again_is_not(api, user):
    dataset = DatasetFactory()
    data = os.urandom(64)
    upload(api, dataset.project, data)
    body = {"dataset": dataset.pk, "digest": sha256(data)}

    first = api.post("/api/v1/dataset-versions/", body, format="json")
    again = api.post("/api/v1/dataset-versions/", body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    entry = only("dataset_version.created")
    assert (entry.object_type, entry.object_id, entry.actor_user_id) == (
        "dataset_version",
        str(first.data["id"]),
        user.pk,
    )
    assert entry.object_label == f"{dataset}@v1"
    assert changes(entry)["digest"] == sha256(data)
    assert changes(entry)["number"] == 1


def test_run_creation_and_its_finish_are_recorded(api, user):
    project = ProjectFactory()

    created = api.post(
        "/api/v1/runs/",
        {"project": project.slug, "external_id": "train-1", "metrics": {"loss": 0.5}},
        format="json",
    )
    api.patch(f"/api/v1/runs/{created.data['id']}/", {"status": "completed", "metrics": {"loss": 0.2}}, format="json")

    entry = only("run.created")
    assert (entry.object_type, entry.object_label, entry.actor_user_id) == (
        "run",
        f"{project.slug}/runs/train-1",
        user.pk,
    )
    assert changes(entry)["status"] == Run.Status.RUNNING
    assert changes(entry)["metrics"] == {"loss": 0.5}
    update = changes(only("run.updated"))
    assert update["status"] == ["running", "completed"]
    assert update["metrics"] == [{"loss": 0.5}, {"loss": 0.2}]
    assert update["ended_at"][0] is None
    assert update["ended_at"][1]


def test_artifact_creation_and_restriction_are_recorded_with_the_artifact(api, user):
    project = ProjectFactory()

    created = api.post(
        "/api/v1/artifacts/", {"project": project.slug, "name": "classifier", "kind": "model"}, format="json"
    )
    api.patch(f"/api/v1/artifacts/{created.data['id']}/", {"restricted": True}, format="json")
    api.patch(f"/api/v1/artifacts/{created.data['id']}/", {"restricted": False}, format="json")

    artifact_id = created.data["id"]
    entry = only("artifact.created")
    assert (entry.object_type, entry.object_id, entry.artifact_id, entry.project_id) == (
        "artifact",
        str(artifact_id),
        artifact_id,
        project.pk,
    )
    assert changes(entry) == {"name": "classifier", "kind": "model", "description": "", "restricted": False}
    assert [changes(update) for update in recorded("artifact.updated")] == [
        {"restricted": [False, True]},
        {"restricted": [True, False]},
    ]
    assert all(update.actor_user_id == user.pk for update in recorded("artifact.updated"))


def test_publishing_a_version_is_recorded_once_and_republishing_the_same_bytes_is_not(api, user):
    artifact = ArtifactFactory(name="classifier")
    data = os.urandom(128)

    first = publish(api, artifact, data)
    again = publish(api, artifact, data)

    assert (first.status_code, again.status_code) == (201, 200)
    entry = only("artifact_version.published")
    assert (entry.object_type, entry.object_id, entry.artifact_id, entry.project_id) == (
        "artifact_version",
        str(first.data["id"]),
        artifact.pk,
        artifact.project_id,
    )
    assert entry.object_label == f"{artifact.project.slug}/classifier@v1"
    assert entry.actor_user_id == user.pk
    assert entry.token_id == token_id_of(api)
    assert changes(entry)["digest"] == sha256(data)
    assert changes(entry)["number"] == 1


# Blobs and uploads --------------------------------------------------------------------------------------


def test_new_bytes_are_recorded_as_stored_and_the_same_bytes_in_another_project_as_claimed(api, user):
    first, second = ProjectFactory(slug="first"), ProjectFactory(slug="second")
    data = os.urandom(100)

    upload(api, first, data)
    upload(api, first, data)  # bytes the project already holds: nothing changes, nothing is recorded
    upload(api, second, data)

    stored = only("blob.stored")
    blob = Blob.objects.get()
    assert (stored.object_type, stored.object_id, stored.object_label) == ("blob", str(blob.pk), sha256(data))
    assert (stored.project_id, stored.actor_user_id) == (first.pk, user.pk)
    assert changes(stored) == {"digest": sha256(data), "size": 100, "state": "pending", "project": "first"}
    claimed = only("project_blob.claimed")
    assert (claimed.object_type, claimed.project_id, claimed.object_label) == (
        "project_blob",
        second.pk,
        f"second@{sha256(data)}",
    )


def test_a_good_upload_of_corrupt_bytes_records_the_repair(api):
    project = ProjectFactory()
    data = os.urandom(100)
    upload(api, project, data)
    Blob.objects.update(state=Blob.State.CORRUPT, verified_at=timezone.now())

    upload(api, project, data)

    assert changes(only("blob.repaired"))["state"] == ["corrupt", "pending"]


def test_a_worker_verification_is_recorded_as_the_system_task():
    blob = BlobFactory()

    verify_blob.apply(args=(blob.pk,))  # in this process even where a broker is configured (integration)

    entry = only("blob.verified")
    assert (entry.actor_kind, entry.actor_user_id, entry.token_id) == ("system", None, None)
    assert entry.actor_label == "task artifacts.tasks.verify_blob"
    assert (entry.object_type, entry.object_id) == ("blob", str(blob.pk))
    assert changes(entry)["state"] == ["pending", "verified"]
    assert entry.request_id == ""


def test_corrupt_bytes_found_by_a_worker_are_recorded_as_corrupt():
    blob = BlobFactory()
    storages["blobs"].save(blob.storage_key, ContentFile(b"tampered"))  # a local folder or the bucket alike

    verify_blob.apply(args=(blob.pk,))  # in this process even where a broker is configured (integration)

    entry = only("blob.corrupt")
    assert entry.actor_label == "task artifacts.tasks.verify_blob"
    assert changes(entry)["state"] == ["pending", "corrupt"]
    assert changes(entry)["found"]["size"] == len(b"tampered")


def test_an_upload_session_records_its_start_and_its_finish():
    project, uploader = ProjectFactory(), UserFactory()
    data = os.urandom(300)

    session, _ = uploads.upload_session_start(project=project, digest=sha256(data), size=300, created_by=uploader)
    uploads.upload_session_finish(session=session, stream=io.BytesIO(data), start=0, length=300)

    started = only("upload_session.started")
    assert (started.object_type, started.object_id, started.project_id) == (
        "upload_session",
        str(session.pk),
        project.pk,
    )
    assert started.actor_user_id == uploader.pk
    assert changes(started) == {"digest": sha256(data), "size": 300, "direct": False}
    finished = only("upload_session.finished")
    assert finished.object_id == str(session.pk)
    assert changes(finished) == {"digest": sha256(data), "size": 300}
    assert only("blob.stored").seq == finished.seq + 1  # one transaction: the session ends with the blob stored


def test_an_upload_whose_bytes_do_not_match_its_digest_records_its_failure_and_no_blob():
    project, uploader = ProjectFactory(), UserFactory()
    announced, sent = os.urandom(300), os.urandom(300)
    session, _ = uploads.upload_session_start(project=project, digest=sha256(announced), size=300, created_by=uploader)

    with pytest.raises(InvalidInput):
        uploads.upload_session_finish(session=session, stream=io.BytesIO(sent), start=0, length=300)

    failed = only("upload_session.failed")
    assert failed.object_id == str(session.pk)
    assert changes(failed) == {"digest": sha256(announced), "offset": 300, "received": sha256(sent)}
    assert recorded("blob.stored") == []


def test_a_cancelled_and_an_expired_upload_session_are_recorded():
    project, uploader = ProjectFactory(), UserFactory()
    cancelled, _ = uploads.upload_session_start(project=project, digest=sha256(b"a"), size=1, created_by=uploader)
    idle, _ = uploads.upload_session_start(project=project, digest=sha256(b"b"), size=1, created_by=uploader)

    uploads.upload_session_cancel(session=cancelled)
    UploadSession.objects.filter(pk=idle.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    uploads.upload_sessions_expire()

    assert only("upload_session.cancelled").object_id == str(cancelled.pk)
    expired = only("upload_session.expired")
    assert (expired.object_id, expired.actor_kind, expired.project_id) == (str(idle.pk), "system", project.pk)


class FakeDirectSink:
    """Stands for the bucket a direct upload's parts went to (the unit suite has no S3)."""

    def abort(self, state: dict) -> None:
        """Nothing was uploaded, so there is nothing to abort."""

    def complete(self, state: dict, key: str) -> None:
        """The parts are taken as assembled: the test decides what their hash turns out to be."""


@pytest.mark.parametrize(("hashed_as", "outcome"), [("announced", "finished"), ("other", "failed")])
def test_a_direct_uploads_check_by_the_worker_is_recorded_as_the_system_task(monkeypatch, hashed_as, outcome):
    data = os.urandom(300)
    session = UploadSession.objects.create(
        project=ProjectFactory(),
        created_by=UserFactory(),
        digest=sha256(data).removeprefix("sha256:"),
        size=300,
        offset=300,
        hash_state=b"",
        storage_state={"sink": "s3-direct", "staging": "uploads/x"},
        state=UploadSession.State.VERIFYING,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    found = session.digest if hashed_as == "announced" else "0" * 64
    monkeypatch.setattr(uploads, "S3DirectSink", FakeDirectSink)
    monkeypatch.setattr(uploads, "hash_stored_blob", lambda key: (found, 300))

    verify_direct_upload.apply(args=(str(session.pk),))

    entry = only(f"upload_session.{outcome}")
    assert (entry.actor_kind, entry.actor_label) == ("system", "task artifacts.tasks.verify_direct_upload")
    assert changes(entry)["state"] == ["verifying", "completed" if outcome == "finished" else "failed"]
    assert len(recorded("blob.stored")) == (1 if outcome == "finished" else 0)


# Permissions, tokens and reviews -------------------------------------------------------------------------


def test_a_grant_is_recorded_with_who_granted_it_and_its_revocation_with_who_revoked_it():
    project, alice, bob, carol = ProjectFactory(slug="churn"), UserFactory(), UserFactory(), UserFactory()

    given, _ = role_grant(obj=project, role=Role.VIEWER, user=carol, granted_by=alice)
    role_grant(obj=project, role=Role.VIEWER, user=carol, granted_by=bob)  # held already: nothing new
    role_revoke(grant=given, revoked_by=bob)

    granted = only("role_grant.granted")
    assert (granted.actor_user_id, granted.object_type, granted.object_id) == (alice.pk, "role_grant", str(given.pk))
    assert granted.object_label == f"viewer for user {carol.username} on project churn"
    assert changes(granted)["role"] == "viewer"
    assert changes(granted)["user"] == carol.pk
    revoked = only("role_grant.revoked")
    assert (revoked.actor_user_id, revoked.object_id, revoked.project_id) == (bob.pk, str(given.pk), project.pk)
    assert changes(revoked)["granted_by"] == alice.username


def test_a_grant_on_an_artifact_is_found_with_the_artifact():
    artifact = ArtifactFactory()

    given = grant(Role.CONTRIBUTOR, on=artifact)

    entry = only("role_grant.granted")
    assert (entry.artifact_id, entry.project_id, entry.object_id) == (artifact.pk, artifact.project_id, str(given.pk))


def test_token_issue_and_revocation_are_recorded_without_any_secret():
    token = ApiTokenFactory(name="nightly")

    api_token_revoke(token=token)

    issued = only("api_token.issued")
    assert (issued.object_type, issued.object_id) == ("api_token", str(token.pk))
    assert changes(issued)["name"] == "nightly"
    document = issued.changes + issued.object_label
    assert token.plaintext not in document
    assert token.key_hash not in document
    assert token.plaintext[12:] not in document
    assert changes(only("api_token.revoked"))["revoked_at"][0] is None


def test_using_a_token_records_nothing(api):
    before = AuditEntry.objects.count()

    assert api.get(PROJECTS).status_code == 200

    assert AuditEntry.objects.count() == before


def test_a_token_issued_by_the_management_command_is_recorded_as_the_command(user, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["manage.py", "issue_token", user.username])

    call_command("issue_token", user.username, "--name", "ci", stdout=io.StringIO())

    entry = only("api_token.issued")
    assert (entry.actor_kind, entry.actor_label) == ("system", "command issue_token")
    assert changes(entry)["user"] == user.username


def test_an_access_review_records_its_opening_each_decision_and_its_completion(reviewed):
    campaign = AccessReviewCampaignFactory(project=reviewed.project, opened_by=reviewed.alice)
    items = list(campaign.items.select_related("reviewer").order_by("pk"))

    for item in items:
        decision = AccessReviewItem.Decision.REVOKE if item.grant_id == reviewed.carol_views.pk else "keep"
        item_decide(item=item, decision=decision, comment="no longer on the team", decided_by=item.reviewer)

    opened = only("access_review.opened")
    assert (opened.object_type, opened.object_id, opened.actor_user_id) == (
        "access_review",
        str(campaign.pk),
        reviewed.alice.pk,
    )
    assert (opened.project_id, changes(opened)["items"]) == (reviewed.project.pk, len(items))
    decided = recorded("access_review_item.decided")
    assert [entry.actor_user_id for entry in decided] == [item.reviewer_id for item in items]
    revoking = next(entry for entry in decided if changes(entry)["decision"] == ["pending", "revoke"])
    assert changes(revoking)["grant"] == reviewed.carol_views.pk
    assert only("role_grant.revoked").seq == revoking.seq - 1  # the revocation the decision made, just before it
    completed = only("access_review.completed")
    assert completed.seq == decided[-1].seq + 1
    assert changes(completed)["state"] == ["open", "completed"]


# Admin and logins ---------------------------------------------------------------------------------------


def test_an_admin_edit_is_recorded_as_the_admin_user(admin_client, admin_user):
    project = ProjectFactory(slug="churn", name="Old")

    response = admin_client.post(
        reverse("admin:artifacts_project_change", args=[project.pk]),
        {"slug": "churn", "name": "New", "description": ""},
        HTTP_USER_AGENT="Firefox",
    )

    assert response.status_code == 302
    entry = only("project.updated")
    assert (entry.actor_user_id, entry.token_id, entry.user_agent) == (admin_user.pk, None, "Firefox")
    assert changes(entry) == {"name": ["Old", "New"]}


def test_logins_and_failed_logins_through_the_sign_in_the_admin_sends_to_are_recorded_without_the_password():
    UserFactory(username="alice", is_staff=True)
    client = Client()
    sign_in = client.get("/admin/login/?next=/admin/").url  # the admin has no sign-in form of its own

    client.post(sign_in, {"login": "alice", "password": "wrong password"})
    client.post(sign_in, {"login": "alice", "password": "correct horse battery staple"})

    failed = only("user.login_failed")
    assert (failed.actor_kind, failed.actor_label, changes(failed)) == ("anonymous", "alice", {"username": "alice"})
    assert "wrong password" not in failed.changes
    logged_in = only("user.logged_in")
    assert (logged_in.actor_kind, logged_in.actor_label) == ("user", "alice")


# Reads --------------------------------------------------------------------------------------------------


def test_downloading_a_versions_bytes_is_recorded_with_its_artifact(api, user):
    version = ArtifactVersionFactory(content=os.urandom(1000))

    response = api.get(f"/api/v1/artifact-versions/{version.pk}/download/")

    assert response.status_code == 200
    entry = only("blob.downloaded")
    assert (entry.object_type, entry.object_id) == ("blob", str(version.blob_id))
    assert (entry.artifact_id, entry.project_id) == (version.artifact_id, version.artifact.project_id)
    assert (entry.actor_user_id, entry.token_id) == (user.pk, token_id_of(api))
    assert changes(entry) == {"digest": version.blob.prefixed_digest, "size": 1000, "artifact_version": version.pk}


def test_a_range_download_records_the_range(api):
    version = ArtifactVersionFactory(content=os.urandom(1000))

    response = api.get(f"/api/v1/artifact-versions/{version.pk}/download/", HTTP_RANGE="bytes=100-199")

    assert response.status_code == 206
    assert changes(only("blob.downloaded"))["range"] == {"first": 100, "last": 199, "length": 100}


def test_downloading_a_projects_blob_is_recorded_with_the_project(api):
    blob = BlobFactory()
    project = blob.project_links.get().project

    assert api.get(f"{PROJECTS}{project.slug}/blobs/{blob.prefixed_digest}").status_code == 200

    entry = only("blob.downloaded")
    assert (entry.project_id, entry.artifact_id, entry.object_label) == (
        project.pk,
        None,
        f"{project.slug}@{blob.prefixed_digest}",
    )


def test_asking_without_receiving_bytes_records_no_read(api):
    version = ArtifactVersionFactory()
    url = f"/api/v1/artifact-versions/{version.pk}/download/"

    assert api.head(url).status_code == 200
    assert api.get(url, HTTP_IF_NONE_MATCH=f'"{version.blob.prefixed_digest}"').status_code == 304
    assert api.get(url, HTTP_RANGE="bytes=5000-").status_code == 416

    assert recorded("blob.downloaded") == []


def test_issuing_a_presigned_url_is_recorded(api, monkeypatch):
    version = ArtifactVersionFactory()
    monkeypatch.setattr("artifacts.api.downloads.presigned_url", lambda *args, **kwargs: "https://s3.example/x")

    response = api.get(f"/api/v1/artifact-versions/{version.pk}/download/?redirect=true")

    assert response.status_code == 302
    entry = only("blob.presigned_url_issued")
    assert (entry.artifact_id, entry.object_id) == (version.artifact_id, str(version.blob_id))
    assert recorded("blob.downloaded") == []


# Atomicity ----------------------------------------------------------------------------------------------


def test_a_refused_write_leaves_no_entry(api):
    ProjectFactory(slug="churn")
    before = AuditEntry.objects.count()

    response = api.post(PROJECTS, {"slug": "churn", "name": "Again"}, format="json")

    assert response.status_code == 409
    assert AuditEntry.objects.count() == before


def test_a_write_that_fails_after_recording_part_of_its_work_leaves_no_entry_and_no_gap(user, monkeypatch):
    ProjectFactory(slug="before")
    head_before = log_size()

    record = change_sets.audit_record_many

    def fail_on_project_created(acts, **kwargs):
        failing = next(index for index, act in enumerate(acts) if act.action == AuditAction.PROJECT_CREATED)
        record(acts[:failing], **kwargs)
        raise RuntimeError("the database went away")

    # The maintainer grant records its entry first; the project's own entry then fails, and the act rolls back.
    monkeypatch.setattr(change_sets, "audit_record_many", fail_on_project_created)
    with pytest.raises(RuntimeError):
        services.project_create(slug="churn", name="Churn", created_by=user)
    monkeypatch.undo()

    assert not Project.objects.filter(slug="churn").exists()
    assert not RoleGrant.objects.filter(project__slug="churn").exists()
    assert log_size() == head_before == AuditEntry.objects.count()
    services.project_create(slug="after", name="After", created_by=None)
    assert only("project.created").seq == head_before


def test_an_entry_rolls_back_with_the_transaction_of_its_act():
    head_before = log_size()

    def create_then_fail() -> None:
        with transaction.atomic():
            services.project_create(slug="churn", name="Churn", created_by=None)
            raise RuntimeError("the caller's later step failed")

    with pytest.raises(RuntimeError):
        create_then_fail()

    assert AuditEntry.objects.count() == head_before == log_size()


# The auditor's question -----------------------------------------------------------------------------------


def test_who_changed_or_downloaded_an_artifact_between_two_moments_is_one_query(api, user, django_assert_num_queries):
    earlier = ArtifactFactory(name="classifier")
    publish(api, earlier, os.urandom(64))  # an artifact's history before the window
    other = ArtifactFactory(project=earlier.project, name="other")
    opened = AuditEntry.objects.order_by("-seq").first()

    created = api.post(
        "/api/v1/artifacts/", {"project": earlier.project.slug, "name": "detector", "kind": "model"}, format="json"
    )
    artifact_id = created.data["id"]
    data = os.urandom(64)
    version = publish(api, Artifact.objects.get(pk=artifact_id), data)
    api.get(f"/api/v1/artifact-versions/{version.data['id']}/download/", HTTP_RANGE="bytes=0-9")
    # The same bytes read through the project's blob endpoint, which names no artifact, are still its bytes.
    assert api.get(f"{PROJECTS}{earlier.project.slug}/blobs/{sha256(data)}").status_code == 200
    publish(api, other, os.urandom(64))  # another artifact's act inside the window
    closed = AuditEntry.objects.order_by("-seq").first()
    api.get(f"/api/v1/artifact-versions/{version.data['id']}/download/")  # after the window

    with django_assert_num_queries(1):
        answer = list(
            entries_about_artifact(AuditEntry.objects.all(), artifact_id)
            .filter(recorded_at__range=(opened.recorded_at, closed.recorded_at))
            .order_by("seq")
        )

    assert [entry.action for entry in answer] == [
        "artifact.created",
        "artifact_version.published",
        "blob.downloaded",
        "blob.downloaded",
    ]
    assert {entry.actor_user_id for entry in answer} == {user.pk}
    assert changes(answer[2])["range"] == {"first": 0, "last": 9, "length": 10}
    assert answer[3].artifact_id is None
