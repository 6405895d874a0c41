"""The client's MLflow artifact repository (clients/python/src/provenant_client/mlflow_plugin.py) between two real
servers: Provenant on the demo, and an `mlflow server` process with a SQLite backend store. A training script, run
as its own process, logs through MLflow's own API to an experiment whose artifact location is `provenant+http://`;
then the Provenant API shows the run, its parameters, metrics and commit, and the files by digest, and MLflow reads
them back through the plugin.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.clients.conftest import CLIENT_SOURCE, PROJECT, DemoServer, free_port

# Under CI the plugin's tests never skip: mlflow is in the dev extras, so a venv without it is a broken build.
if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("mlflow", reason="the MLflow plugin is tested against mlflow from the dev extras")

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from provenant_client import Client, mlflow_plugin

TRAINING_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path

    import mlflow
    import pandas as pd
    from provenant_client import mlflow_plugin

    # An installed client registers its schemes through its `mlflow.artifact_repository` entry points; this one is
    # imported from the source folder (PYTHONPATH), so the script registers them itself.
    mlflow_plugin.register_schemes()

    experiment = mlflow.create_experiment(sys.argv[1], artifact_location=os.environ["ARTIFACT_LOCATION"])
    mlflow.set_experiment(experiment_id=experiment)


    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input * 2


    outputs = Path("outputs")
    (outputs / "plots").mkdir(parents=True)
    (outputs / "plots" / "roc.csv").write_text("fpr,tpr\\n0,0\\n1,1\\n")
    (outputs / "report.json").write_text(json.dumps({"auc": 0.91}))
    (outputs / "notes.txt").write_text("trained on the demo\\n")
    model_dir = Path("exported-model")
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors:\\n  python_function:\\n    loader_module: doubler\\n")
    (model_dir / "weights.bin").write_bytes(bytes(range(256)) * 4096)
    (model_dir / "requirements.txt").write_text("numpy\\n")

    with mlflow.start_run(run_name="nightly") as run:
        mlflow.log_params({"learning_rate": 0.02, "epochs": 3})
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow.log_metric("loss", loss, step=step)
        mlflow.set_tag("team", "fraud")
        frame = pd.DataFrame({"amount": [1.0, 2.0], "label": [0, 1]})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="transactions", source="s3://bucket/tx.parquet"),
                         context="training")
        mlflow.log_artifact("outputs/notes.txt")
        mlflow.log_artifacts("outputs", artifact_path="evaluation")
        mlflow.log_artifacts("exported-model", artifact_path="exported-model")
        logged = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=["numpy"])
        mlflow.log_metric("auc", 0.91)
    print(json.dumps({"run_id": run.info.run_id, "model_id": logged.model_id, "experiment_id": experiment}))
    """
)


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run([*command, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def trained(demo_server: DemoServer, mlflow_server: str, tmp_path_factory) -> dict:
    """The training script run once, in a committed git repository, against both servers."""
    repo = tmp_path_factory.mktemp("training")
    (repo / "train.py").write_text(TRAINING_SCRIPT)
    (repo / ".gitignore").write_text("outputs/\nexported-model/\nmlruns/\n")
    git(repo, "init", "-q")
    git(repo, "add", "train.py", ".gitignore")
    git(repo, "commit", "-q", "-m", "training")
    environment = script_environment(demo_server, mlflow_server, repo)
    done = subprocess.run(
        [sys.executable, "train.py", f"plugin-{time.time_ns()}"],
        cwd=repo,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    return {**ids, "repo": repo, "commit": git(repo, "rev-parse", "HEAD"), "location": environment["ARTIFACT_LOCATION"]}


def script_environment(demo_server: DemoServer, mlflow_server: str, folder: Path) -> dict[str, str]:
    """A training process's environment: this checkout's client, the contributor's token, both servers."""
    netloc = urlsplit(demo_server.url).netloc
    return {key: value for key, value in os.environ.items() if not key.startswith(("PROVENANT_", "MLFLOW_"))} | {
        "PYTHONPATH": str(CLIENT_SOURCE),
        "PROVENANT_TOKEN": demo_server.contributor_token,
        "XDG_CACHE_HOME": str(folder / "cache"),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "MLFLOW_TRACKING_URI": mlflow_server,
        "ARTIFACT_LOCATION": f"provenant+http://{netloc}/{PROJECT}/mlflow",
    }


@pytest.fixture
def provenant(demo_server: DemoServer, tmp_path) -> Iterator[Client]:
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "check-cache") as client:
        yield client


@pytest.fixture
def plugin_here(demo_server: DemoServer, mlflow_server: str, monkeypatch) -> Iterator[None]:
    """This process logs and reads through the plugin as the contributor, with the tracking server above."""
    monkeypatch.setenv("PROVENANT_TOKEN", demo_server.contributor_token)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    # As in the training script: an installed client would be registered by its entry points.
    mlflow_plugin.register_schemes()
    mlflow_plugin._clients.clear()  # a client per test, reading this test's environment
    yield
    # The plugin brings the runs it logged to up to date when the process exits; the servers are gone by then.
    mlflow_plugin._runs.clear()


def digest_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def run_versions(client: Client, run_id: int) -> dict[str, dict]:
    versions = client.iterate("/artifact-versions/", project=PROJECT, run=run_id)
    return {version["metadata"]["mlflow"]["path"]: version for version in versions}


def test_the_mlflow_run_becomes_a_provenant_run_with_its_params_metrics_commit_and_inputs(trained, provenant):
    [run] = provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{trained['run_id']}")["results"]

    assert run["status"] == "completed"  # the script's `with mlflow.start_run()` ended it
    assert run["ended_at"] is not None
    assert run["name"] == "nightly"
    assert run["code_commit"] == trained["commit"]
    assert run["entry_point"].endswith("train.py")
    assert run["parameters"] == {"learning_rate": "0.02", "epochs": "3"}  # MLflow keeps parameters as text
    assert run["metrics"] == {"loss": 0.3, "auc": 0.91}  # the last of loss's series; auc logged after the files
    described = run["environment"]["mlflow"]
    assert described["run_id"] == trained["run_id"]
    assert described["experiment_id"] == trained["experiment_id"]
    assert described["tags"]["team"] == "fraud"
    [dataset] = described["inputs"]
    assert (dataset["name"], dataset["context"]) == ("transactions", {"mlflow.data.context": "training"})


def test_each_logged_file_is_a_version_of_the_run_with_its_digest(trained, provenant):
    [run] = provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{trained['run_id']}")["results"]
    repo = trained["repo"]

    versions = run_versions(provenant, run["id"])

    expected = {
        "notes.txt": repo / "outputs" / "notes.txt",
        "evaluation/notes.txt": repo / "outputs" / "notes.txt",
        "evaluation/report.json": repo / "outputs" / "report.json",
        "evaluation/plots/roc.csv": repo / "outputs" / "plots" / "roc.csv",
        "exported-model/MLmodel": repo / "exported-model" / "MLmodel",
        "exported-model/weights.bin": repo / "exported-model" / "weights.bin",
        "exported-model/requirements.txt": repo / "exported-model" / "requirements.txt",
    }
    for path, local in expected.items():
        assert versions[path]["digest"] == digest_of(local), path
        assert versions[path]["size"] == local.stat().st_size
    # The logged model (MLflow 3 gives it a root of its own) names the run too, as artifacts of kind model.
    model_files = {path for path, version in versions.items() if version["metadata"]["mlflow"].get("model_id")}
    assert {"MLmodel", "python_model.pkl", "requirements.txt"} <= model_files
    assert {versions[path]["kind"] for path in model_files} == {"model"}
    # Deterministic names: the same root and path always map to the same artifact.
    location = mlflow_plugin.parse_uri(f"{trained['location']}/{trained['run_id']}/artifacts")
    assert versions["notes.txt"]["artifact_name"] == mlflow_plugin.artifact_name(location, "notes.txt")


def test_list_artifacts_answers_folders_and_files_with_sizes(trained, plugin_here):
    client = mlflow.MlflowClient()

    top = client.list_artifacts(trained["run_id"])
    inside = client.list_artifacts(trained["run_id"], "evaluation")

    assert [(item.path, item.is_dir) for item in top] == [
        ("evaluation", True),
        ("exported-model", True),
        ("notes.txt", False),
    ]
    notes = trained["repo"] / "outputs" / "notes.txt"
    assert top[2].file_size == notes.stat().st_size
    assert [(item.path, item.is_dir) for item in inside] == [
        ("evaluation/notes.txt", False),
        ("evaluation/plots", True),
        ("evaluation/report.json", False),
    ]
    assert client.list_artifacts(trained["run_id"], "notes.txt") == []  # a file lists nothing, as MLflow says


def test_download_artifacts_reads_back_identical_bytes(trained, plugin_here, tmp_path):
    run_folder = Path(mlflow.artifacts.download_artifacts(run_id=trained["run_id"], dst_path=str(tmp_path / "run")))
    model_folder = Path(mlflow.artifacts.download_artifacts(f"models:/{trained['model_id']}", dst_path=str(tmp_path)))

    repo = trained["repo"]
    for local in (repo / "exported-model").iterdir():
        assert (run_folder / "exported-model" / local.name).read_bytes() == local.read_bytes()
    assert (run_folder / "evaluation" / "plots" / "roc.csv").read_bytes() == (
        repo / "outputs" / "plots" / "roc.csv"
    ).read_bytes()
    assert (model_folder / "MLmodel").is_file()
    loaded = mlflow.pyfunc.load_model(f"models:/{trained['model_id']}")
    assert list(loaded.predict([1, 2])) == [1, 2, 1, 2]  # the pickled model, read back, behaves as trained


def test_logging_bytes_the_project_holds_sends_no_body(trained, plugin_here):
    client = mlflow.MlflowClient()
    rerun = client.create_run(client.get_run(trained["run_id"]).info.experiment_id)
    repository = get_artifact_repository(rerun.info.artifact_uri)
    sent: list[tuple[str, str, int]] = []
    repository.client.http.event_hooks["request"].append(
        lambda request: sent.append((request.method, request.url.path, int(request.headers.get("content-length", 0))))
    )

    repository.log_artifacts(str(trained["repo"] / "exported-model"), "exported-model")

    assert [result.already_held for result in repository.pushed] == [True, True, True]
    assert sum(result.bytes_sent for result in repository.pushed) == 0
    assert not [request for request in sent if request[0] in ("PUT", "PATCH") and "/blobs/" in request[1]]
    assert not [request for request in sent if "/uploads/" in request[1]]
    client.set_terminated(rerun.info.run_id)


def test_deleting_through_mlflow_is_refused_and_deletes_nothing(trained, plugin_here, provenant):
    repository = get_artifact_repository(f"{trained['location']}/{trained['run_id']}/artifacts")

    with pytest.raises(MlflowException, match="immutable") as refused:
        repository.delete_artifacts("exported-model")

    assert refused.value.error_code == "INVALID_STATE"
    assert "Nothing was deleted" in refused.value.message
    assert [item.path for item in repository.list_artifacts("exported-model")] == [
        "exported-model/MLmodel",
        "exported-model/requirements.txt",
        "exported-model/weights.bin",
    ]


def test_a_location_that_is_not_a_provenant_one_is_refused():
    with pytest.raises(MlflowException, match="names no project"):
        mlflow_plugin.parse_uri("provenant://provenant.example.com")
    with pytest.raises(MlflowException, match="not a Provenant location"):
        mlflow_plugin.parse_uri("s3://bucket/path")


def test_the_server_comes_from_the_scheme_or_from_provenant_url_for_the_same_host(monkeypatch):
    assert mlflow_plugin.parse_uri("provenant://reg.example.com/fraud").server == "https://reg.example.com"
    assert mlflow_plugin.parse_uri("provenant+http://127.0.0.1:8000/fraud").server == "http://127.0.0.1:8000"
    monkeypatch.setenv("PROVENANT_URL", "http://reg.example.com/registry")
    assert mlflow_plugin.parse_uri("provenant://reg.example.com/fraud").server == "http://reg.example.com/registry"
    assert mlflow_plugin.parse_uri("provenant://other.example.com/fraud").server == "https://other.example.com"


def test_artifact_names_are_valid_distinct_and_bounded():
    location = mlflow_plugin.parse_uri("provenant://h/p/mlflow/0123456789abcdef0123456789abcdef/artifacts")
    names = {mlflow_plugin.artifact_name(location, path) for path in ("a/b.txt", "a.b.txt", "a-b.txt", "..x/y")}
    long_name = mlflow_plugin.artifact_name(location, "deep/" * 60 + "weights.bin")

    assert len(names) == 4
    assert len(long_name) <= 128
    assert long_name.startswith("mlflow-01234567-")
    for name in {*names, long_name}:
        assert name[0].isalnum()
        assert ".." not in name
        assert "/" not in name


FAILING_SCRIPT = textwrap.dedent(
    """
    import os, sys

    import mlflow
    from provenant_client import mlflow_plugin

    mlflow_plugin.register_schemes()  # as in the training script: the client is imported from its source folder
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(sys.argv[1], os.environ["ARTIFACT_LOCATION"]))
    with open("checkpoint.bin", "wb") as checkpoint:
        checkpoint.write(b"half-trained")
    with mlflow.start_run() as run:
        print(run.info.run_id, flush=True)
        mlflow.log_artifact("checkpoint.bin")
        mlflow.log_metric("loss", 2.5)
        raise RuntimeError("diverged")
    """
)


def test_a_run_that_fails_in_mlflow_is_failed_in_provenant_with_what_it_logged(
    demo_server, mlflow_server, provenant, tmp_path
):
    (tmp_path / "train.py").write_text(FAILING_SCRIPT)

    done = subprocess.run(
        [sys.executable, "train.py", f"failing-{time.time_ns()}"],
        cwd=tmp_path,
        env=script_environment(demo_server, mlflow_server, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 1, done.stderr[-3000:]
    assert "diverged" in done.stderr
    run_id = done.stdout.strip().splitlines()[0]
    [run] = provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{run_id}")["results"]
    assert run["status"] == "failed"  # seen at the process's exit, after MLflow ended its run as FAILED
    assert run["metrics"] == {"loss": 2.5}
    [checkpoint] = run_versions(provenant, run["id"]).values()
    assert checkpoint["digest"] == "sha256:" + hashlib.sha256(b"half-trained").hexdigest()


def test_files_are_published_when_the_tracking_server_cannot_be_read(demo_server, provenant, tmp_path, monkeypatch):
    monkeypatch.setenv("PROVENANT_TOKEN", demo_server.contributor_token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow would otherwise retry for minutes
    mlflow_plugin._clients.clear()
    run_id = uuid.uuid4().hex
    netloc = urlsplit(demo_server.url).netloc
    repository = mlflow_plugin.ProvenantArtifactRepository(
        f"provenant+http://{netloc}/{PROJECT}/offline/{run_id}/artifacts",
        tracking_uri=f"http://127.0.0.1:{free_port()}",
    )
    (tmp_path / "weights.bin").write_bytes(b"weights logged offline")

    try:
        repository.log_artifact(str(tmp_path / "weights.bin"), "model")
    finally:
        mlflow_plugin._runs.clear()  # nothing to bring up to date at exit: the tracking server never existed

    [run] = provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{run_id}")["results"]
    assert run["status"] == "running"
    assert run["parameters"] == {}
    unreachable = run["environment"]["mlflow"]["unreachable"]
    assert unreachable.startswith(f"MlflowException: API request to {repository.tracking_uri}"), unreachable
    assert [item.path for item in repository.list_artifacts("model")] == ["model/weights.bin"]
    assert run_versions(provenant, run["id"])["model/weights.bin"]["size"] == len(b"weights logged offline")


def test_an_artifact_path_may_not_climb_out_of_the_root():
    with pytest.raises(MlflowException, match="climbs out"):
        mlflow_plugin._relative("../other-run/artifacts/model.bin")
    assert mlflow_plugin._relative("/evaluation//plots/") == "evaluation/plots"


def test_a_run_created_meanwhile_by_another_process_is_logged_to_not_duplicated(
    demo_server, provenant, tmp_path, monkeypatch
):
    monkeypatch.setenv("PROVENANT_TOKEN", demo_server.contributor_token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow_plugin._clients.clear()
    run_id = uuid.uuid4().hex
    other = provenant.post("/runs/", {"project": PROJECT, "external_id": f"mlflow:{run_id}"})
    looked_up = mlflow_plugin._find_run
    lookups: list[str] = []

    def created_just_after_the_lookup(client, project, mlflow_run_id):
        """The other process's run is there from the start; the first lookup reads as if it were not yet."""
        lookups.append(mlflow_run_id)
        return None if len(lookups) == 1 else looked_up(client, project, mlflow_run_id)

    monkeypatch.setattr(mlflow_plugin, "_find_run", created_just_after_the_lookup)
    netloc = urlsplit(demo_server.url).netloc
    repository = mlflow_plugin.ProvenantArtifactRepository(
        f"provenant+http://{netloc}/{PROJECT}/shared/{run_id}/artifacts", tracking_uri=f"http://127.0.0.1:{free_port()}"
    )
    (tmp_path / "shard-0.bin").write_bytes(b"shard zero")

    try:
        repository.log_artifact(str(tmp_path / "shard-0.bin"))
    finally:
        mlflow_plugin._runs.clear()

    assert lookups == [run_id, run_id]  # the server's Conflict sent the plugin to read the run again
    assert len(provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{run_id}")["results"]) == 1
    assert repository.pushed[0].version["run"] == other["id"]
