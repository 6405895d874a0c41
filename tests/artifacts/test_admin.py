"""The artifact store's admin: every page renders at a cost that does not grow with its rows, the record's
immutable rows are view-only, nothing is deleted, and adds and edits go through the services."""

from collections.abc import Callable
from types import SimpleNamespace

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection, models
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from artifacts import services
from artifacts.models import Artifact, Dataset, Project, Run
from core.admin import human_size, short_digest
from core.errors import Conflict
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    BlobFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
)
from tests.pages import messages_of

pytestmark = pytest.mark.django_db


def admin_url(model: type[models.Model] | models.Model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def record():
    """One of everything: a run that read a dataset version and a base model and produced a new model."""
    project = ProjectFactory(slug="churn")
    dataset_version = DatasetVersionFactory(dataset=DatasetFactory(project=project, name="events"))
    base = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="base-model"))
    run = RunFactory(
        project=project, external_id="train-1", input_dataset_versions=[dataset_version], input_artifact_versions=[base]
    )
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="classifier"), run=run)
    external, _ = services.dataset_version_create(
        dataset=DatasetFactory(project=project, name="warehouse"),
        created_by=run.created_by,
        uri="s3://lake/warehouse/2024-06/",
        manifest_digest="sha256:" + "c" * 64,
    )
    return SimpleNamespace(
        external_datasetversion=external,
        project=project,
        blob=version.blob,
        projectblob=version.blob.project_links.get(),
        dataset=dataset_version.dataset,
        datasetversion=dataset_version,
        run=run,
        artifact=version.artifact,
        artifactversion=version,
    )


ALL_MODELS = ["project", "blob", "projectblob", "dataset", "datasetversion", "run", "artifact", "artifactversion"]
VIEW_ONLY_MODELS = ["blob", "projectblob", "datasetversion", "run", "artifactversion"]


# Every page renders -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_MODELS)
def test_changelist_renders_with_rows(admin_client, record, name):
    obj = getattr(record, name)

    response = admin_client.get(admin_url(obj, "changelist"))

    assert response.status_code == 200
    assert obj in response.context["cl"].result_list


@pytest.mark.parametrize("name", ALL_MODELS)
def test_change_page_renders(admin_client, record, name):
    obj = getattr(record, name)

    response = admin_client.get(admin_url(obj, "change", obj.pk))

    assert response.status_code == 200
    assert response.context["original"] == obj


def test_dataset_version_kept_elsewhere_shows_its_location_and_manifest(admin_client, record):
    version = record.external_datasetversion

    listing = admin_client.get(admin_url(version, "changelist")).content.decode()
    page = admin_client.get(admin_url(version, "change", version.pk)).content.decode()

    assert "s3://lake/warehouse/2024-06/" in listing
    assert "sha256:cccccccccccc…" in listing
    assert "c" * 64 in page


@pytest.mark.parametrize("model", [Project, Dataset, Artifact])
def test_add_page_renders(admin_client, model):
    response = admin_client.get(admin_url(model, "add"))

    assert response.status_code == 200
    assert 'name="_save"' in response.content.decode()


def test_run_page_shows_its_inputs_and_outputs(admin_client, record):
    response = admin_client.get(admin_url(record.run, "change", record.run.pk))

    page = response.content.decode()
    assert str(record.datasetversion) in page
    assert str(record.artifact.versions.get()) in page
    assert "base-model" in page
    # The lineage edges are read-only rows: no delete box, no empty row to add one.
    assert "dataset_inputs-0-DELETE" not in page
    assert "artifact_inputs-0-DELETE" not in page
    assert response.context["inline_admin_formsets"][0].formset.extra == 0


def test_versions_are_found_by_their_digest_as_clients_write_it(admin_client, record):
    digest = record.artifactversion.blob.prefixed_digest[:20]

    response = admin_client.get(admin_url(record.artifactversion, "changelist"), {"q": digest})

    assert list(response.context["cl"].result_list) == [record.artifactversion]


def test_sizes_and_digests_are_shown_for_people():
    hex_digest = "ab" * 32

    assert human_size(1_234_567) == "1.2\xa0MB"
    assert short_digest(f"sha256:{hex_digest}") == short_digest(hex_digest)
    assert short_digest(hex_digest) == f'<span title="sha256:{hex_digest}">sha256:abababababab…</span>'


# No N+1 -----------------------------------------------------------------------------------------------


def _versions_made_by_runs(factory: Callable, parent_factory: Callable, parent: str) -> Callable[[int], None]:
    def make(count: int) -> None:
        for _ in range(count):
            owner = parent_factory()
            factory(**{parent: owner, "run": RunFactory(project=owner.project)})

    return make


ROW_MAKERS: dict[str, Callable[[int], object]] = {
    "project": ProjectFactory.create_batch,
    "blob": BlobFactory.create_batch,
    "projectblob": BlobFactory.create_batch,
    "dataset": DatasetVersionFactory.create_batch,
    "datasetversion": _versions_made_by_runs(DatasetVersionFactory, DatasetFactory, "dataset"),
    "run": RunFactory.create_batch,
    "artifact": ArtifactVersionFactory.create_batch,
    "artifactversion": _versions_made_by_runs(ArtifactVersionFactory, ArtifactFactory, "artifact"),
}


@pytest.mark.parametrize("name", ROW_MAKERS)
def test_changelist_queries_do_not_grow_with_rows(admin_client, name):
    url = reverse(f"admin:artifacts_{name}_changelist")
    ROW_MAKERS[name](2)
    admin_client.get(url)  # the first request loads the session and caches content types

    with CaptureQueriesContext(connection) as two_rows:
        admin_client.get(url)
    ROW_MAKERS[name](18)
    with CaptureQueriesContext(connection) as twenty_rows:
        response = admin_client.get(url)

    assert response.context["cl"].result_count == 20
    assert len(twenty_rows) == len(two_rows), "\n".join(query["sql"] for query in twenty_rows.captured_queries)


def test_run_page_queries_do_not_grow_with_its_inputs(admin_client):
    def run_reading(count: int) -> Run:
        project = ProjectFactory()
        return RunFactory(
            project=project,
            input_dataset_versions=DatasetVersionFactory.create_batch(count, dataset=DatasetFactory(project=project)),
            input_artifact_versions=ArtifactVersionFactory.create_batch(
                count, artifact=ArtifactFactory(project=project)
            ),
        )

    small, large = run_reading(2), run_reading(12)
    admin_client.get(admin_url(small, "change", small.pk))

    with CaptureQueriesContext(connection) as few:
        admin_client.get(admin_url(small, "change", small.pk))
    with CaptureQueriesContext(connection) as many:
        admin_client.get(admin_url(large, "change", large.pk))

    assert len(many) == len(few), "\n".join(query["sql"] for query in many.captured_queries)


# The record is view-only and never deleted --------------------------------------------------------------


@pytest.mark.parametrize("name", VIEW_ONLY_MODELS)
def test_immutable_rows_cannot_be_added(admin_client, record, name):
    url = admin_url(getattr(record, name), "add")

    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {}).status_code == 403


@pytest.mark.parametrize("name", VIEW_ONLY_MODELS)
def test_immutable_rows_are_shown_without_save_and_refuse_changes(admin_client, record, name):
    obj = getattr(record, name)
    url = admin_url(obj, "change", obj.pk)

    response = admin_client.get(url)

    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    assert admin_client.post(url, {"number": 99, "state": "corrupt", "status": "completed"}).status_code == 403


@pytest.mark.parametrize("name", ALL_MODELS)
def test_nothing_in_the_record_can_be_deleted(admin_client, record, name):
    obj = getattr(record, name)
    url = admin_url(obj, "delete", obj.pk)

    assert admin_client.get(url).status_code == 403
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert "delete_selected" not in admin_client.get(admin_url(obj, "changelist")).content.decode()


# Projects, datasets and artifacts are written by their services ----------------------------------------


def spy(monkeypatch, name: str) -> list[dict]:
    """Record the keyword arguments of each call to `services.<name>`, which still runs."""
    calls: list[dict] = []
    real = getattr(services, name)

    def recording(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(services, name, recording)
    return calls


def test_project_added_in_admin_is_created_by_the_service(admin_client, monkeypatch):
    calls = spy(monkeypatch, "project_create")

    response = admin_client.post(
        admin_url(Project, "add"), {"slug": "churn", "name": "Churn", "description": "Who leaves"}
    )

    assert response.status_code == 302
    project = Project.objects.get(slug="churn")
    assert calls == [
        {"slug": "churn", "name": "Churn", "description": "Who leaves", "created_by": response.wsgi_request.user}
    ]
    entry = LogEntry.objects.get()
    assert entry.is_addition()
    assert entry.object_id == str(project.pk)


def test_duplicate_project_slug_is_a_form_error(admin_client):
    ProjectFactory(slug="churn")

    response = admin_client.post(admin_url(Project, "add"), {"slug": "churn", "name": "Another"})

    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert Project.objects.filter(slug="churn").count() == 1


def test_malformed_project_slug_is_a_form_error(admin_client):
    response = admin_client.post(admin_url(Project, "add"), {"slug": "Not A Slug", "name": "Bad"})

    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert not Project.objects.exists()


def test_project_edit_goes_through_the_service_and_keeps_the_slug(admin_client, monkeypatch):
    project = ProjectFactory(slug="churn", name="Old")
    calls = spy(monkeypatch, "project_update")

    response = admin_client.post(
        admin_url(project, "change", project.pk), {"slug": "renamed", "name": "New", "description": ""}
    )

    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.slug, project.name) == ("churn", "New")
    assert len(calls) == 1


def test_a_refusal_the_form_could_not_foresee_is_shown_not_raised(admin_client, monkeypatch):
    def taken_meanwhile(**kwargs):
        raise Conflict("A project with slug 'churn' already exists.", field="slug")

    monkeypatch.setattr(services, "project_create", taken_meanwhile)
    url = admin_url(Project, "add")

    response = admin_client.post(url, {"slug": "churn", "name": "Churn"}, follow=True)

    assert response.redirect_chain == [(url, 302)]
    assert messages_of(response) == ["A project with slug 'churn' already exists."]
    assert not LogEntry.objects.exists()


def test_dataset_added_in_admin_is_created_by_the_service(admin_client, monkeypatch):
    project = ProjectFactory()
    calls = spy(monkeypatch, "dataset_create")

    response = admin_client.post(admin_url(Dataset, "add"), {"project": project.pk, "name": "events"})

    assert response.status_code == 302
    assert Dataset.objects.filter(project=project, name="events").exists()
    assert calls == [{"project": project, "name": "events", "description": ""}]


def test_taken_dataset_name_is_shown_on_the_name_field(admin_client):
    dataset = DatasetFactory(name="events")

    response = admin_client.post(admin_url(Dataset, "add"), {"project": dataset.project.pk, "name": "events"})

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "already exists" in form.errors["name"][0]
    assert not form.non_field_errors()
    assert Dataset.objects.count() == 1


def test_dataset_name_may_repeat_in_another_project(admin_client):
    DatasetFactory(name="events")
    other = ProjectFactory()

    response = admin_client.post(admin_url(Dataset, "add"), {"project": other.pk, "name": "events"})

    assert response.status_code == 302
    assert Dataset.objects.filter(name="events").count() == 2


def test_dataset_edit_changes_only_the_description(admin_client):
    dataset = DatasetFactory(name="events")
    project = dataset.project

    response = admin_client.post(
        admin_url(dataset, "change", dataset.pk),
        {"project": ProjectFactory().pk, "name": "renamed", "description": "Clicks"},
    )

    assert response.status_code == 302
    dataset.refresh_from_db()
    assert (dataset.project, dataset.name, dataset.description) == (project, "events", "Clicks")


def test_artifact_added_in_admin_is_created_by_the_service(admin_client, monkeypatch):
    project = ProjectFactory()
    calls = spy(monkeypatch, "artifact_create")

    response = admin_client.post(
        admin_url(Artifact, "add"), {"project": project.pk, "name": "classifier", "kind": "model"}
    )

    assert response.status_code == 302
    assert Artifact.objects.get(project=project, name="classifier").kind == "model"
    assert len(calls) == 1


def test_taken_artifact_name_is_shown_on_the_name_field(admin_client):
    artifact = ArtifactFactory(name="classifier")

    response = admin_client.post(
        admin_url(Artifact, "add"), {"project": artifact.project.pk, "name": "classifier", "kind": "config"}
    )

    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors


def test_artifact_identity_is_fixed_once_created(admin_client, monkeypatch):
    artifact = ArtifactFactory(name="classifier", kind=Artifact.Kind.MODEL)
    project = artifact.project
    calls = spy(monkeypatch, "artifact_update")

    response = admin_client.post(
        admin_url(artifact, "change", artifact.pk),
        {"project": ProjectFactory().pk, "name": "renamed", "kind": "config", "description": "Gradient boosting"},
    )

    assert response.status_code == 302
    artifact.refresh_from_db()
    assert (artifact.project, artifact.name, artifact.kind) == (project, "classifier", "model")
    assert artifact.description == "Gradient boosting"
    assert len(calls) == 1


# Runs -------------------------------------------------------------------------------------------------


def test_cancel_action_ends_running_runs_and_skips_finished_ones(admin_client):
    running = RunFactory()
    finished = RunFactory(status=Run.Status.COMPLETED)

    response = admin_client.post(
        admin_url(Run, "changelist"),
        {"action": "cancel_runs", "_selected_action": [running.pk, finished.pk]},
        follow=True,
    )

    running.refresh_from_db()
    finished.refresh_from_db()
    assert running.status == Run.Status.CANCELLED
    assert running.ended_at is not None
    assert finished.status == Run.Status.COMPLETED
    notes = messages_of(response)
    assert "Cancelled 1 run(s)." in notes
    assert any(note.startswith("Skipped 1:") and "completed" in note for note in notes)


def test_the_admin_says_whose_it_is(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Provenant · record of ML artifacts" in page
