"""Recording runs: what defines them is fixed at creation, progress moves until they finish."""

import pytest

from artifacts.models import Run
from tests.artifacts.factories import ArtifactVersionFactory, DatasetVersionFactory, ProjectFactory, RunFactory
from tests.schema_contract import assert_conforms

pytestmark = pytest.mark.django_db

COMMIT = "3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"


def run_payload(project, **extra):
    return {
        "project": project.slug,
        "external_id": "train-2026-11-03-a",
        "code_repository": "https://git.example.com/ml/fraud.git",
        "code_commit": COMMIT,
        "entry_point": "python -m fraud.train",
        "parameters": {"learning_rate": 0.05, "epochs": 30},
        "metrics": {"accuracy": 0.94},
        "environment": {"python_version": "3.11.7", "dependencies": ["numpy==2.1.3"], "hardware": {"gpu": "none"}},
        "started_at": "2026-11-03T10:00:00Z",
        **extra,
    }


def test_run_is_recorded_with_its_inputs(api):
    project = ProjectFactory()
    dataset_version = DatasetVersionFactory(dataset__project=project)
    base_model = ArtifactVersionFactory(artifact__project=project)
    response = api.post(
        "/api/v1/runs/",
        run_payload(project, input_dataset_versions=[dataset_version.id], input_artifact_versions=[base_model.id]),
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["input_dataset_versions"] == [dataset_version.id]
    assert body["input_artifact_versions"] == [base_model.id]
    assert body["code_commit"] == COMMIT
    assert body["status"] == "running"
    assert body["environment"]["dependencies"] == ["numpy==2.1.3"]


def test_unknown_inputs_are_named(api):
    response = api.post("/api/v1/runs/", run_payload(ProjectFactory(), input_dataset_versions=[999998, 999999]),
                        format="json")  # fmt: skip
    assert response.status_code == 400
    assert response.json()["input_dataset_versions"] == ["No dataset version with id 999998, 999999."]
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code_commit": "not-a-commit"}, "code_commit"),
        ({"external_id": "../etc/passwd"}, "external_id"),
        ({"metrics": {"accuracy": "high"}}, "metrics"),
        ({"metrics": [0.9]}, "metrics"),
        ({"parameters": "lr=0.1"}, "parameters"),
        ({"environment": {"dependencies": "numpy"}}, "environment"),
        ({"status": "exploded"}, "status"),
        ({"started_at": "yesterday"}, "started_at"),
    ],
)
def test_bad_run_input_is_a_400(api, change, field):
    response = api.post("/api/v1/runs/", run_payload(ProjectFactory(), **change), format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert field in body or body.get("field") == field
    assert not Run.objects.exists()


def test_run_cannot_end_before_it_started(api):
    payload = run_payload(ProjectFactory(), status="completed", ended_at="2026-11-03T09:00:00Z")
    response = api.post("/api/v1/runs/", payload, format="json")
    assert response.status_code == 400
    assert "before" in response.json()["detail"]


def test_duplicate_external_id_in_a_project_is_a_409(api):
    project = ProjectFactory()
    assert api.post("/api/v1/runs/", run_payload(project), format="json").status_code == 201
    assert api.post("/api/v1/runs/", run_payload(project), format="json").status_code == 409


def test_progress_merges_metrics_and_finishing_stamps_the_end(api):
    run = RunFactory(metrics={"loss": 0.7})
    progress = api.patch(f"/api/v1/runs/{run.id}/", {"metrics": {"accuracy": 0.91}}, format="json")
    assert progress.json()["metrics"] == {"loss": 0.7, "accuracy": 0.91}

    finished = api.patch(f"/api/v1/runs/{run.id}/", {"status": "completed"}, format="json")
    assert finished.status_code == 200
    assert finished.json()["ended_at"] is not None


def test_a_finished_run_is_frozen(api):
    run = RunFactory(status=Run.Status.COMPLETED)
    response = api.patch(f"/api/v1/runs/{run.id}/", {"metrics": {"accuracy": 0.99}}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "run_finished"
    run.refresh_from_db()
    assert run.metrics == {"accuracy": 0.93}


@pytest.mark.parametrize("field", ["code_commit", "parameters", "input_dataset_versions", "external_id"])
def test_what_a_run_was_cannot_be_patched(api, field):
    run = RunFactory()
    response = api.patch(f"/api/v1/runs/{run.id}/", {field: "x"}, format="json")
    assert response.status_code == 400
    assert "Unknown field" in str(response.json()[field])


def test_inputs_from_another_project_are_refused(api):
    project = ProjectFactory()
    elsewhere = DatasetVersionFactory()
    response = api.post("/api/v1/runs/", run_payload(project, input_dataset_versions=[elsewhere.id]), format="json")
    assert response.status_code == 400
    assert "another project" in response.json()["detail"]
    assert not Run.objects.exists()


def test_a_running_run_has_no_end(api):
    created = api.post("/api/v1/runs/", run_payload(ProjectFactory(), ended_at="2026-11-03T11:00:00Z"), format="json")
    assert created.status_code == 400
    run = RunFactory()
    patched = api.patch(f"/api/v1/runs/{run.id}/", {"ended_at": "2030-01-01T00:00:00Z"}, format="json")
    assert patched.status_code == 400
    finished = api.patch(
        f"/api/v1/runs/{run.id}/", {"status": "failed", "ended_at": "2030-01-01T00:00:00Z"}, format="json"
    )
    assert finished.json()["ended_at"] == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize("hardware", [None, "a100", ["a100"], 4])
def test_hardware_that_is_not_an_object_is_a_400_as_the_schema_says(api, hardware):
    body = {"project": ProjectFactory().slug, "external_id": "r", "environment": {"hardware": hardware}}

    response = api.post("/api/v1/runs/", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["environment"][0].startswith("hardware: ")
    assert_conforms(response, "POST", "/api/v1/runs/")
    assert not Run.objects.exists()


def test_hardware_as_an_object_is_kept_as_sent(api):
    hardware = {"machine": "n2-standard-4", "gpu": None}
    body = {"project": ProjectFactory().slug, "external_id": "r", "environment": {"hardware": hardware}}

    response = api.post("/api/v1/runs/", body, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["environment"]["hardware"] == hardware
    assert_conforms(response, "POST", "/api/v1/runs/")


def test_an_environment_value_of_another_type_than_the_schema_says_is_a_400(api):
    project = ProjectFactory()
    body = {"project": project.slug, "external_id": "r", "environment": {"python_version": 3.11, "gpu": "a100"}}
    response = api.post("/api/v1/runs/", body, format="json")
    assert response.status_code == 400, response.content
    (message,) = response.json()["environment"]
    assert message.startswith("python_version: Expected a string"), message


def test_a_run_that_fails_says_why_when_it_ends_and_the_reason_is_frozen_with_it(api):
    run = RunFactory()
    failed = api.patch(
        f"/api/v1/runs/{run.id}/", {"status": "failed", "failure_reason": "exit status 3"}, format="json"
    )
    assert failed.status_code == 200, failed.json()
    assert_conforms(failed, "PATCH", "/api/v1/runs/{id}/")
    assert failed.json()["failure_reason"] == "exit status 3"

    rewritten = api.patch(f"/api/v1/runs/{run.id}/", {"failure_reason": "something nicer"}, format="json")
    assert rewritten.status_code == 409
    run.refresh_from_db()
    assert run.failure_reason == "exit status 3"


def test_a_run_sent_once_at_its_end_carries_its_failure_reason(api):
    created = api.post(
        "/api/v1/runs/", run_payload(ProjectFactory(), status="cancelled", failure_reason="KeyboardInterrupt"),
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.json()
    assert created.json()["failure_reason"] == "KeyboardInterrupt"


@pytest.mark.parametrize("status", ["running", "completed"])
def test_a_failure_reason_without_a_failed_or_cancelled_status_is_a_400(api, status):
    run = RunFactory()
    patched = api.patch(f"/api/v1/runs/{run.id}/", {"status": status, "failure_reason": "oops"}, format="json")
    assert patched.status_code == 400
    assert patched.json()["field"] == "failure_reason"
    created = api.post("/api/v1/runs/", run_payload(ProjectFactory(), status=status, failure_reason="x"), format="json")
    assert created.status_code == 400
    run.refresh_from_db()
    assert (run.status, run.failure_reason) == ("running", "")
