"""`provenant import mlflow` (clients/python/src/provenant_client/mlflow_import.py) between two real servers: an
`mlflow server` process (SQLite store, artifacts served over HTTP) populated by MLflow's own client, and Provenant
on the demo. The command runs as its own process, as a person would run it; it is run twice (the second copies
nothing), and once killed with SIGKILL halfway and run again (it completes, with nothing duplicated).
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import CLIENT_SOURCE, PROJECT, DemoServer, free_port

# Under CI these tests never skip: mlflow is in the dev extras, so a venv without it is a broken build.
if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("mlflow", reason="the MLflow importer is tested against mlflow from the dev extras")

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from provenant_client import Client

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LOSSES = [0.9, 0.6, 0.45, 0.4, 0.38]


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input * 2


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def populated(mlflow_server: str, tmp_path_factory) -> dict:
    """Two experiments written through MLflow's client: a trained run (params, a loss series, a dataset input, files
    in folders, a logged model), a failed run, and a run of many small files for the interruption test."""
    folder = tmp_path_factory.mktemp("mlflow-files")
    stamp = time.time_ns()
    mlflow.set_tracking_uri(mlflow_server)
    names = {"training": f"import-training-{stamp}", "tuning": f"import-tuning-{stamp}", "many": f"import-many-{stamp}"}
    files = {
        "report.json": b'{"auc": 0.91}\n',
        "plots/roc.csv": b"fpr,tpr\n0,0\n1,1\n",
        "plots/deep/pr.csv": b"p,r\n1,0\n",
        "weights.bin": bytes(range(256)) * 2048,
    }
    for relative, content in files.items():
        (folder / "outputs" / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / "outputs" / relative).write_bytes(content)

    mlflow.set_experiment(names["training"])
    with mlflow.start_run(run_name="nightly") as trained:
        mlflow.log_params({"learning_rate": 0.02, "epochs": 5})
        for step, loss in enumerate(LOSSES):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.log_metric("auc", 0.91)
        mlflow.set_tags({"team": "fraud", "mlflow.source.git.commit": COMMIT})
        frame = pd.DataFrame({"amount": [1.0, 2.0], "label": [0, 1]})
        dataset = mlflow.data.from_pandas(frame, name="transactions", source="s3://bucket/tx.parquet")
        mlflow.log_input(dataset, context="training")
        mlflow.log_artifacts(str(folder / "outputs"))
        logged = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=["numpy"])
    with mlflow.start_run(run_name="diverged") as failed:
        mlflow.log_metric("loss", float("nan"), step=0)
        mlflow.log_metric("loss", 3.5, step=1)
        mlflow.end_run(status="FAILED")

    mlflow.set_experiment(names["tuning"])
    with mlflow.start_run(run_name="sweep-1") as tuned:
        mlflow.log_param("depth", 6)
        mlflow.log_artifact(str(folder / "outputs" / "report.json"))  # the same bytes as the trained run's report

    mlflow.set_experiment(names["many"])
    many = folder / "many"
    many.mkdir()
    for index in range(30):
        (many / f"shard-{index:02d}.txt").write_text(f"shard {index}\n" * 100)
    with mlflow.start_run(run_name="sharded") as sharded:
        mlflow.log_artifacts(str(many), artifact_path="shards")
    return {
        "names": names,
        "folder": folder,
        "files": files,
        "trained": trained.info.run_id,
        "failed": failed.info.run_id,
        "tuned": tuned.info.run_id,
        "sharded": sharded.info.run_id,
        "model_id": logged.model_id,
    }


def command_environment(demo_server: DemoServer, folder: Path) -> dict[str, str]:
    """The command's environment: this checkout's client, the contributor's token, a cache of its own."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("PROVENANT_", "MLFLOW_"))} | {
        "PYTHONPATH": str(CLIENT_SOURCE),
        "PROVENANT_URL": demo_server.url,
        "PROVENANT_TOKEN": demo_server.contributor_token,
        "XDG_CACHE_HOME": str(folder / "cache"),
        "XDG_CONFIG_HOME": str(folder / "config"),
    }


def import_command(mlflow_server: str, *experiments: str, extra: tuple[str, ...] = ()) -> list[str]:
    command = [sys.executable, "-m", "provenant_client.cli", "import", "mlflow", "--tracking-uri", mlflow_server]
    command += ["--project", PROJECT, "--json", *extra]
    for name in experiments:
        command += ["--experiment", name]
    return command


def run_import(environment: dict[str, str], command: list[str]) -> tuple[dict, str]:
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(done.stdout), done.stderr


@pytest.fixture(scope="module")
def imports(demo_server: DemoServer, mlflow_server: str, populated: dict, tmp_path_factory) -> dict:
    """The training and tuning experiments imported twice in a row."""
    environment = command_environment(demo_server, tmp_path_factory.mktemp("import-command"))
    command = import_command(mlflow_server, populated["names"]["training"], populated["names"]["tuning"])
    first, first_progress = run_import(environment, command)
    second, second_progress = run_import(environment, command)
    return {"first": first, "first_progress": first_progress, "second": second, "second_progress": second_progress}


@pytest.fixture
def provenant(demo_server: DemoServer, tmp_path) -> Iterator[Client]:
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "check-cache") as client:
        yield client


def provenant_run(client: Client, mlflow_run_id: str) -> dict:
    [run] = client.get("/runs/", project=PROJECT, external_id=f"mlflow:{mlflow_run_id}")["results"]
    return run


def versions_by_path(client: Client, root: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for version in client.iterate("/artifact-versions/", project=PROJECT, metadata=f"mlflow.root:{json.dumps(root)}"):
        found.setdefault(version["metadata"]["mlflow"]["path"], []).append(version)
    return found


def test_the_first_import_copies_every_run_and_file_and_says_so(imports, populated):
    summary = imports["first"]

    assert summary["experiments"] == [populated["names"]["training"], populated["names"]["tuning"]]
    assert summary["runs"] == {"created": 3, "already_imported": 0, "finished_since": 0}
    # 4 files and 1 metric history of the trained run, 1 history of the failed one, 1 file of the tuning run, and the
    # logged model's files; the tuning run's report is the trained run's bytes, so its upload sends nothing.
    assert summary["files"]["published_without_upload"] >= 1
    assert summary["files"]["copied"] >= 6
    assert summary["copied_anything"] is True
    assert f"run {populated['trained']} (nightly)" in imports["first_progress"]
    assert "report.json: copied as version" in imports["first_progress"]


def test_an_imported_run_keeps_params_last_metrics_status_times_commit_tags_and_inputs(imports, populated, provenant):
    trained = MlflowClient().get_run(populated["trained"])
    run = provenant_run(provenant, populated["trained"])

    assert run["name"] == "nightly"
    assert run["status"] == "completed"
    assert run["parameters"] == {"learning_rate": "0.02", "epochs": "5"}
    assert run["metrics"] == {"loss": LOSSES[-1], "auc": 0.91}
    assert run["code_commit"] == COMMIT
    started = time.mktime(time.strptime(run["started_at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert int(started) == trained.info.start_time // 1000
    assert run["ended_at"] is not None
    described = run["environment"]["mlflow"]
    assert described["experiment_name"] == populated["names"]["training"]
    assert described["tags"]["team"] == "fraud"
    [dataset] = described["inputs"]
    assert dataset["name"] == "transactions"
    assert json.loads(dataset["source"]) == {"uri": "s3://bucket/tx.parquet"}  # MLflow's dataset source, as it keeps it
    assert dataset["context"] == {"mlflow.data.context": "training"}

    failed = provenant_run(provenant, populated["failed"])
    assert failed["status"] == "failed"
    assert failed["metrics"] == {"loss": 3.5}


def test_the_full_metric_series_is_an_artifact_of_the_run(imports, populated, provenant, tmp_path):
    [history] = versions_by_path(provenant, f"{populated['trained']}/provenant-import")["metrics-history.json"]

    assert history["run"] == provenant_run(provenant, populated["trained"])["id"]
    document = json.loads(Path(provenant.pull(history["id"], tmp_path / "history.json")).read_text())
    assert [point["value"] for point in document["metrics"]["loss"]] == LOSSES
    assert [point["step"] for point in document["metrics"]["loss"]] == list(range(len(LOSSES)))

    [failed_history] = versions_by_path(provenant, f"{populated['failed']}/provenant-import")["metrics-history.json"]
    failed_document = json.loads(Path(provenant.pull(failed_history["id"], tmp_path / "failed.json")).read_text())
    assert [point["value"] for point in failed_document["metrics"]["loss"]] == ["nan", 3.5]


def test_each_file_is_a_version_of_the_run_with_the_digest_of_the_bytes_mlflow_held(imports, populated, provenant):
    run = provenant_run(provenant, populated["trained"])
    versions = versions_by_path(provenant, f"{populated['trained']}/artifacts")

    assert sorted(versions) == sorted(populated["files"])
    for path, [version] in versions.items():
        assert version["digest"] == sha256(populated["folder"] / "outputs" / path)
        assert version["run"] == run["id"]
    model_files = versions_by_path(provenant, f"models/{populated['model_id']}/artifacts")
    assert "MLmodel" in model_files
    assert all(version["run"] == run["id"] for [version] in model_files.values())


def test_the_second_import_copies_nothing_and_says_why(imports):
    summary = imports["second"]

    assert summary["copied_anything"] is False
    assert summary["runs"] == {"created": 0, "already_imported": 3, "finished_since": 0}
    assert summary["files"] == {"copied": 0, "published_without_upload": 0, "bytes_sent": 0}
    assert summary["skipped"]["runs already imported (found by external id)"] == 3
    assert summary["skipped"]["files already in Provenant (same path and size)"] >= 5
    assert "copied as version" not in imports["second_progress"]


def test_an_import_killed_halfway_completes_when_run_again_without_duplicates(
    demo_server, mlflow_server, populated, provenant, tmp_path
):
    environment = command_environment(demo_server, tmp_path)
    command = import_command(mlflow_server, populated["names"]["many"])
    importer = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    copied = 0
    try:
        for line in importer.stderr:
            copied += "copied as version" in line
            if copied == 5:
                importer.send_signal(signal.SIGKILL)
                break
    finally:
        importer.wait(timeout=60)
    assert importer.returncode == -signal.SIGKILL
    root = f"{populated['sharded']}/artifacts"
    held_after_kill = versions_by_path(provenant, root)
    assert 5 <= len(held_after_kill) < 30

    summary, _ = run_import(environment, command)

    versions = versions_by_path(provenant, root)
    assert sorted(versions) == [f"shards/shard-{index:02d}.txt" for index in range(30)]
    assert all(len(found) == 1 for found in versions.values())
    assert summary["runs"] == {"created": 0, "already_imported": 1, "finished_since": 0}
    assert summary["skipped"]["files already in Provenant (same path and size)"] == len(held_after_kill)
    copied_now = summary["files"]["copied"] + summary["files"]["published_without_upload"]
    assert copied_now == 30 - len(held_after_kill)


def test_a_run_imported_while_it_ran_is_ended_by_the_next_import(demo_server, mlflow_server, provenant, tmp_path):
    tracking = MlflowClient(mlflow_server)
    experiment = f"import-running-{time.time_ns()}"
    running = tracking.create_run(tracking.create_experiment(experiment), run_name="still-training")
    tracking.log_metric(running.info.run_id, "loss", 0.7, step=0)
    environment = command_environment(demo_server, tmp_path)
    command = import_command(mlflow_server, experiment)
    run_import(environment, command)
    assert provenant_run(provenant, running.info.run_id)["status"] == "running"
    assert versions_by_path(provenant, f"{running.info.run_id}/provenant-import") == {}  # its series still grows

    tracking.log_metric(running.info.run_id, "loss", 0.2, step=1)
    tracking.set_terminated(running.info.run_id, status="FINISHED")
    summary, _ = run_import(environment, command)

    run = provenant_run(provenant, running.info.run_id)
    assert (run["status"], run["metrics"]) == ("completed", {"loss": 0.2})
    assert run["ended_at"] is not None
    assert summary["runs"] == {"created": 0, "already_imported": 1, "finished_since": 1}
    [history] = versions_by_path(provenant, f"{running.info.run_id}/provenant-import")["metrics-history.json"]
    document = json.loads(Path(provenant.pull(history["id"], tmp_path / "history.json")).read_text())
    assert [point["value"] for point in document["metrics"]["loss"]] == [0.7, 0.2]


def test_an_experiment_the_server_does_not_have_is_a_clear_error(demo_server, mlflow_server, tmp_path):
    environment = command_environment(demo_server, tmp_path)
    done = subprocess.run(
        import_command(mlflow_server, "no-such-experiment"), env=environment, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert "has no experiment named 'no-such-experiment'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def registered(demo_server: DemoServer, mlflow_server: str, tmp_path_factory) -> dict:
    """A registered model with three versions in MLflow's legacy stages (Archived, Production, Staging), two aliases,
    a description and tags, logged by MLflow's client; imported with --registered-models by a contributor (who may
    not import stages), then by a maintainer, then by the maintainer again."""
    stamp = time.time_ns()
    name, experiment = f"fraud-scorer-{stamp}", f"import-registry-{stamp}"
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(experiment)
    tracking = MlflowClient()
    tracking.create_registered_model(name, tags={"team": "fraud"}, description="Scores card transactions.")
    model_ids = []
    for factor in (1, 2, 3):
        with mlflow.start_run(run_name=f"scorer-{factor}"):
            mlflow.log_metric("auc", 0.8 + factor / 100)
            info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), registered_model_name=name)
            model_ids.append(info.model_id)
    tracking.update_model_version(name, "2", description="The one in production.")
    tracking.set_model_version_tag(name, "2", "validated", "yes")
    tracking.set_registered_model_alias(name, "champion", "2")
    tracking.set_registered_model_alias(name, "challenger", "3")
    for version, stage in (("1", "Archived"), ("2", "Production"), ("3", "Staging")):
        with pytest.warns(FutureWarning):  # MLflow's stages are deprecated, but servers hold them
            tracking.transition_model_version_stage(name, version, stage)

    environment = command_environment(demo_server, tmp_path_factory.mktemp("registry-command"))
    command = import_command(mlflow_server, experiment, extra=("--registered-models",))
    by_contributor, progress = run_import(environment, command)
    as_maintainer = environment | {"PROVENANT_TOKEN": demo_server.maintainer_token}
    by_maintainer, _ = run_import(as_maintainer, command)
    again, _ = run_import(as_maintainer, command)
    return {
        "name": name,
        "model_ids": model_ids,
        "first": by_contributor,
        "first_progress": progress,
        "maintainer": by_maintainer,
        "again": again,
    }


def model_versions(client: Client, name: str) -> list[dict]:
    model = client.model(PROJECT, name)
    return sorted(client.iterate("/model-versions/", model=model["id"]), key=lambda found: found["number"])


def test_a_registered_model_arrives_with_its_versions_and_aliases_marked_imported(registered, provenant):
    model = provenant.model(PROJECT, registered["name"])

    assert model["description"] == "Scores card transactions."
    assert "`team`: fraud" in model["model_card"]
    assert [version["number"] for version in model_versions(provenant, registered["name"])] == [1, 2, 3]
    assert {alias["name"]: alias["version"] for alias in model["aliases"]} == {"champion": 2, "challenger": 3}
    assert all(alias["imported_from"].startswith("mlflow http://127.0.0.1:") for alias in model["aliases"])
    assert registered["first"]["registry"] == {
        "models_created": 1,
        "model_versions_created": 3,
        "aliases_set": 2,
        "stages_imported": 0,
    }


def test_a_version_is_a_manifest_of_the_files_the_logged_model_import_brought_with_no_byte_stored_twice(
    registered, provenant, tmp_path
):
    second = model_versions(provenant, registered["name"])[1]
    manifest = provenant.version(second["artifact_version"])
    document = json.loads(Path(provenant.pull(manifest["id"], tmp_path / "manifest.json")).read_text())
    model_root = versions_by_path(provenant, f"models/{registered['model_ids'][1]}/artifacts")

    assert document["format"] == "provenant.mlflow-model-manifest/1"
    assert document["registered"]["version"] == "2"
    assert document["registered"]["description"] == "The one in production."
    assert document["registered"]["tags"] == {"validated": "yes"}
    assert document["registered"]["stage"] == "Production"
    assert "MLmodel" in {file["path"] for file in document["files"]}
    # Each file of the manifest is the one version of that path under the logged model's root: nothing copied twice.
    assert {path: [version_id] for path, version_id in manifest["metadata"]["mlflow"]["files"].items()} == {
        path: [version["id"] for version in versions] for path, versions in model_root.items()
    }
    assert {file["path"]: file["digest"] for file in document["files"]} == {
        path: versions[0]["digest"] for path, versions in model_root.items()
    }
    assert second["run"] == manifest["run"]
    assert manifest["run"] == provenant_run(provenant, manifest["metadata"]["mlflow"]["run_id"])["id"]


def test_a_contributor_imports_no_stage_and_is_told_a_maintainer_may(registered):
    refusals = [
        reason
        for reason in registered["first"]["not_imported"]
        if reason.startswith(registered["name"]) and "not imported" in reason
    ]

    assert len(refusals) == 3
    assert all("needs the maintainer role" in reason for reason in refusals)
    assert "version 2: MLflow stage 'Production' not imported" in "\n".join(refusals)


def test_a_maintainers_import_records_the_stages_as_imported_never_as_approved(registered, demo_server, provenant):
    model = provenant.model(PROJECT, registered["name"])
    history = provenant.get(f"/models/{model['id']}/stage-history/")["results"]
    auditor = Client(demo_server.url, demo_server.auditor_token, cache_dir=provenant.cache.root / "auditor")
    entries = list(auditor.iterate("/audit/entries/", action="model_version.stage_changed", project=PROJECT))

    assert registered["maintainer"]["registry"]["stages_imported"] == 3
    assert [version["stage"] for version in model_versions(provenant, registered["name"])] == [
        "archived",
        "production",
        "staging",
    ]
    assert model["production_version"] == 2
    assert {(move["version"], move["to_stage"], move["cause"]) for move in history} == {
        (1, "archived", "imported"),
        (2, "production", "imported"),
        (3, "staging", "imported"),
    }
    assert all(move["promotion_request"] is None and " (stage " in move["imported_from"] for move in history)
    assert list(provenant.iterate("/promotions/", model=model["id"])) == []
    ours = [entry for entry in entries if registered["name"] in entry["changes"].get("imported_from", "")]
    assert len(ours) == 3
    assert all(entry["changes"]["cause"] == "imported" and entry["changes"]["approved"] is False for entry in ours)


def test_importing_the_registry_again_copies_nothing(registered):
    again = registered["again"]

    assert again["copied_anything"] is False, again
    assert again["registry"] == {
        "models_created": 0,
        "model_versions_created": 0,
        "aliases_set": 0,
        "stages_imported": 0,
    }
    assert again["skipped"]["model versions already registered"] == 3
    assert again["skipped"]["aliases already set"] == 2
    assert again["skipped"]["stages already imported"] == 3


def test_a_tracking_server_that_cannot_be_reached_is_a_clear_error(demo_server, tmp_path):
    environment = command_environment(demo_server, tmp_path) | {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    done = subprocess.run(
        import_command(f"http://127.0.0.1:{free_port()}"), env=environment, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert "error: MLflow at http://127.0.0.1:" in done.stderr
    assert "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_reader_of_the_project_is_refused_and_nothing_is_imported(demo_server, mlflow_server, provenant, tmp_path):
    tracking = MlflowClient(mlflow_server)
    experiment = f"import-refused-{time.time_ns()}"
    run = tracking.create_run(tracking.create_experiment(experiment))
    tracking.log_param(run.info.run_id, "depth", "6")
    tracking.set_terminated(run.info.run_id)
    environment = command_environment(demo_server, tmp_path) | {"PROVENANT_TOKEN": demo_server.viewer_token}

    done = subprocess.run(import_command(mlflow_server, experiment), env=environment, capture_output=True, text=True)

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{run.info.run_id}")["results"] == []
