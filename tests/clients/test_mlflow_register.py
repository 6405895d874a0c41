"""Registering a model version straight from an MLflow run (clients/python/src/provenant_client/mlflow_register.py),
between a real `mlflow server` process and Provenant on the demo: a model logged through the plugin is registered as
a manifest pinning every file of it, one named file as itself, and a run logged to another artifact store is copied
into Provenant first. The governed path (a promotion request) then starts from the model version.
"""

# The fixtures imported from the plugin's tests are named again as test parameters, as pytest wants them.
# ruff: noqa: F811

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import PROJECT, DemoServer

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("mlflow", reason="registering from MLflow is tested against mlflow from the dev extras")

import mlflow
from provenant_client import Client, cli
from provenant_client.mlflow_register import MANIFEST_FORMAT, MlflowSourceError, register_from_mlflow

# The tracking server and the training run the plugin's tests use, shared rather than written twice.
from tests.clients.test_mlflow_plugin import trained  # noqa: F401 (a fixture: the training run it registers)


@pytest.fixture
def provenant(demo_server: DemoServer, tmp_path) -> Iterator[Client]:
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "check-cache") as client:
        yield client


def manifest_of(client: Client, version: dict, tmp_path: Path) -> dict:
    return json.loads(client.pull(int(version["id"]), tmp_path / "manifest.json").read_text())


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def elsewhere(mlflow_server: str, tmp_path_factory) -> dict:
    """A run whose artifacts MLflow keeps in its own store (the tracking server's local artifact root), with a
    model directory logged under `model` and its files as the test wrote them."""
    folder = tmp_path_factory.mktemp("elsewhere")
    model_dir = folder / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: scorer\n")
    (model_dir / "weights.bin").write_bytes(os.urandom(300_000))
    (model_dir / "requirements.txt").write_text("numpy\n")
    mlflow.set_tracking_uri(mlflow_server)
    experiment = mlflow.create_experiment(f"elsewhere-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run(experiment_id=experiment, run_name="outside") as run:
        mlflow.log_params({"depth": 6})
        mlflow.log_metric("auc", 0.88)
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    return {"run_id": run.info.run_id, "model_dir": model_dir, "tracking_uri": mlflow_server}


def test_a_model_logged_through_the_plugin_is_registered_as_a_manifest_of_its_files(
    trained,
    mlflow_server,
    provenant,
    tmp_path,
):
    registration = register_from_mlflow(
        provenant, run_id=trained["run_id"], model="mlflow-scorer", tracking_uri=mlflow_server
    )

    [run] = provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{trained['run_id']}")["results"]
    version = registration.artifact_version
    assert registration.manifest
    assert registration.pushed == 0  # the files were in Provenant already
    assert registration.model_version["artifact_version"] == version["id"]
    assert registration.model_version["model_name"] == "mlflow-scorer"
    assert version["run"] == run["id"]  # the manifest is an output of the MLflow run, as its files are
    assert version["metadata"]["mlflow"]["model_id"] == trained["model_id"]
    manifest = manifest_of(provenant, version, tmp_path)
    assert manifest["format"] == MANIFEST_FORMAT
    listed = {item["path"]: item["digest"] for item in manifest["files"]}
    assert "MLmodel" in listed
    assert "python_model.pkl" in listed
    assert listed == {path: record["digest"] for path, record in registration.files.items()}
    assert {record["run"] for record in registration.files.values()} == {run["id"]}
    assert version["metadata"]["mlflow"]["files"] == {path: record["id"] for path, record in registration.files.items()}


def test_registering_the_same_run_again_answers_the_same_model_version(trained, mlflow_server, provenant):
    first = register_from_mlflow(provenant, run_id=trained["run_id"], model="mlflow-again", tracking_uri=mlflow_server)
    again = register_from_mlflow(provenant, run_id=trained["run_id"], model="mlflow-again", tracking_uri=mlflow_server)

    assert again.model_version["id"] == first.model_version["id"]
    assert again.artifact_version["id"] == first.artifact_version["id"]


def test_a_path_naming_one_file_registers_that_files_version(trained, mlflow_server, provenant):
    registration = register_from_mlflow(
        provenant,
        run_id=trained["run_id"],
        model="mlflow-weights",
        path="exported-model/weights.bin",
        tracking_uri=mlflow_server,
    )

    version = registration.artifact_version
    assert not registration.manifest
    assert version["metadata"]["mlflow"]["path"] == "exported-model/weights.bin"
    assert version["digest"] == digest_of(trained["repo"] / "exported-model" / "weights.bin")


def test_a_folder_of_the_runs_own_artifacts_is_registered_as_a_manifest(trained, mlflow_server, provenant, tmp_path):
    registration = register_from_mlflow(
        provenant, run_id=trained["run_id"], model="mlflow-folder", path="exported-model", tracking_uri=mlflow_server
    )

    repo = trained["repo"] / "exported-model"
    manifest = manifest_of(provenant, registration.artifact_version, tmp_path)
    assert manifest["path"] == "exported-model"
    assert {item["path"]: item["digest"] for item in manifest["files"]} == {
        name: digest_of(repo / name) for name in ("MLmodel", "requirements.txt", "weights.bin")
    }


def test_the_model_version_starts_the_governed_path(trained, mlflow_server, provenant):
    registration = register_from_mlflow(
        provenant, run_id=trained["run_id"], model="mlflow-governed", tracking_uri=mlflow_server
    )

    request = provenant.request_promotion(
        registration.model_version, stage="staging", justification="trained in MLflow, auc 0.91"
    )

    assert request["model_version"] == registration.model_version["id"]
    assert request["target_stage"] == "staging"


def test_a_run_logged_to_another_store_is_copied_into_provenant_first(elsewhere, provenant, tmp_path):
    registration = register_from_mlflow(
        provenant,
        run_id=elsewhere["run_id"],
        model="mlflow-copied",
        project=PROJECT,
        tracking_uri=elsewhere["tracking_uri"],
    )

    [run] = provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{elsewhere['run_id']}")["results"]
    assert run["parameters"] == {"depth": "6"}
    assert run["metrics"] == {"auc": 0.88}
    assert run["status"] == "completed"
    expected = {
        name: digest_of(elsewhere["model_dir"] / name) for name in ("MLmodel", "requirements.txt", "weights.bin")
    }
    assert {path: record["digest"] for path, record in registration.files.items()} == expected
    assert {record["run"] for record in registration.files.values()} == {run["id"]}
    assert registration.artifact_version["run"] == run["id"]
    manifest = manifest_of(provenant, registration.artifact_version, tmp_path)
    assert {item["path"]: item["digest"] for item in manifest["files"]} == expected

    again = register_from_mlflow(
        provenant,
        run_id=elsewhere["run_id"],
        model="mlflow-copied",
        project=PROJECT,
        tracking_uri=elsewhere["tracking_uri"],
    )
    assert again.pushed == 0  # every byte is held now
    assert again.model_version["id"] == registration.model_version["id"]


def test_a_run_outside_provenant_needs_the_project_to_copy_into(elsewhere, provenant):
    with pytest.raises(MlflowSourceError, match="--project"):
        register_from_mlflow(
            provenant, run_id=elsewhere["run_id"], model="mlflow-nowhere", tracking_uri=elsewhere["tracking_uri"]
        )


def test_an_unknown_run_id_is_refused_with_what_to_check(mlflow_server, provenant):
    unknown = uuid.uuid4().hex

    with pytest.raises(MlflowSourceError, match=f"No MLflow run '{unknown}' on the tracking server"):
        register_from_mlflow(provenant, run_id=unknown, model="mlflow-unknown", tracking_uri=mlflow_server)

    assert provenant.get("/models/", project=PROJECT, name="mlflow-unknown")["results"] == []


def test_a_path_the_run_did_not_log_is_refused_naming_what_it_did(trained, mlflow_server, provenant):
    with pytest.raises(MlflowSourceError, match="logged nothing at 'weights'") as refused:
        register_from_mlflow(
            provenant, run_id=trained["run_id"], model="mlflow-nopath", path="weights", tracking_uri=mlflow_server
        )

    assert "['model']" in str(refused.value)  # the logged model it could have named
    assert "exported-model" in str(refused.value)
    assert provenant.get("/models/", project=PROJECT, name="mlflow-nopath")["results"] == []


def test_the_command_line_registers_from_a_run_and_explains_a_refusal(trained, mlflow_server, demo_server, capsys):
    common = ["--url", demo_server.url, "--token", demo_server.contributor_token, "register", "--model", "mlflow-cli"]
    tracking = ["--tracking-uri", mlflow_server]

    assert cli.main([*common, "--mlflow-run", trained["run_id"], *tracking, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model_name"] == "mlflow-cli"
    assert printed["mlflow"]["manifest"] is True

    assert cli.main([*common, "--mlflow-run", "0" * 32, *tracking]) == 1
    assert "error: No MLflow run '00000000000000000000000000000000'" in capsys.readouterr().err

    assert cli.main([*common, "--mlflow-run", trained["run_id"], "--path", "nope", *tracking]) == 1
    assert "logged nothing at 'nope'" in capsys.readouterr().err

    assert cli.main(common) == 1
    assert "--mlflow-run" in capsys.readouterr().err
