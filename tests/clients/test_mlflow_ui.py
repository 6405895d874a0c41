"""The MLflow UI's artifact browser for a run whose artifacts live in Provenant. Teams keep the MLflow UI; for a
`provenant+http://` artifact location (not proxied by MLflow), the tracking server itself lists and serves the files
the UI shows, through the plugin, with the Provenant token in its own environment (the shared `mlflow_server`
fixture's: a reader's). The run is the plugin's tests' training run (nested folders and an MLflow 3 logged model);
this module asks the tracking server's own UI endpoints for it, then opens the run's and the model's pages in
Debian's Chromium.
"""

# The fixtures imported from other test modules are named again as test parameters, as pytest wants them.
# ruff: noqa: F811

import hashlib
import importlib.metadata
import os
from collections.abc import Iterator

import pytest

from tests.clients.conftest import PROJECT, DemoServer

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("mlflow", reason="the MLflow UI is tested against mlflow from the dev extras")

import httpx
from mlflow.exceptions import MlflowException
from provenant_client import Client, mlflow_plugin

# The tracking server and the training run the plugin's tests use (the browser is tests/conftest.py's).
from tests.clients.test_mlflow_plugin import run_versions, trained  # noqa: F401 (trained: a fixture)

# The tracking server finds the plugin as any installed client's MLflow would: by the distribution's entry points
# (its PYTHONPATH only makes them load this checkout's code). Without them the server cannot read the run at all.
SCHEMES = {entry.name for entry in importlib.metadata.entry_points(group="mlflow.artifact_repository")}
if "provenant+http" not in SCHEMES and os.environ.get("CI", "").lower() != "true":
    pytest.skip("the client is not installed (make venv): no entry points for the server", allow_module_level=True)


@pytest.fixture
def provenant(demo_server: DemoServer, tmp_path) -> Iterator[Client]:
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "check-cache") as client:
        yield client


@pytest.fixture
def ui(mlflow_server: str) -> Iterator[httpx.Client]:
    """The tracking server as its UI's scripts call it: the same paths, no credentials of any kind."""
    with httpx.Client(base_url=mlflow_server, timeout=60) as client:
        yield client


def listed(response: httpx.Response) -> list[tuple[str, bool, int | None]]:
    """(path, is_dir, size) of each entry of a list answer (protobuf JSON leaves out false and absent fields)."""
    assert response.status_code == 200, response.text
    files = response.json().get("files", [])
    return [
        (item["path"], item.get("is_dir", False), int(item["file_size"]) if "file_size" in item else None)
        for item in files
    ]


def sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def test_the_run_artifacts_list_shows_folders_and_files_with_sizes(trained, ui):
    repo = trained["repo"]

    top = ui.get("/ajax-api/2.0/mlflow/artifacts/list", params={"run_uuid": trained["run_id"]})
    evaluation = ui.get(
        "/ajax-api/2.0/mlflow/artifacts/list", params={"run_uuid": trained["run_id"], "path": "evaluation"}
    )
    plots = ui.get(
        "/ajax-api/2.0/mlflow/artifacts/list", params={"run_uuid": trained["run_id"], "path": "evaluation/plots"}
    )

    notes = (repo / "outputs" / "notes.txt").stat().st_size
    assert listed(top) == [("evaluation", True, None), ("exported-model", True, None), ("notes.txt", False, notes)]
    assert top.json()["root_uri"] == f"{trained['location']}/{trained['run_id']}/artifacts"
    assert listed(evaluation) == [
        ("evaluation/notes.txt", False, notes),
        ("evaluation/plots", True, None),
        ("evaluation/report.json", False, (repo / "outputs" / "report.json").stat().st_size),
    ]
    assert listed(plots) == [
        ("evaluation/plots/roc.csv", False, (repo / "outputs" / "plots" / "roc.csv").stat().st_size)
    ]


def test_get_artifact_serves_the_logged_bytes(trained, ui):
    repo = trained["repo"]
    expected = {
        "evaluation/plots/roc.csv": repo / "outputs" / "plots" / "roc.csv",
        "exported-model/weights.bin": repo / "exported-model" / "weights.bin",  # 1 MiB, binary
    }

    for path, local in expected.items():
        served = ui.get("/get-artifact", params={"path": path, "run_uuid": trained["run_id"]})

        assert served.status_code == 200, served.text
        assert served.content == local.read_bytes(), path


def test_a_path_the_run_does_not_have_is_a_404_not_a_500(trained, ui):
    missing = ui.get("/get-artifact", params={"path": "evaluation/nothing.csv", "run_uuid": trained["run_id"]})

    assert missing.status_code == 404, missing.text
    assert "evaluation/nothing.csv" in missing.json()["message"]


def test_a_token_provenant_refuses_is_a_401_that_names_the_token_not_a_500(trained, demo_server, monkeypatch):
    """What the tracking server answers its UI when its own token is wrong: the plugin's refusal carries MLflow's
    UNAUTHENTICATED, which MLflow's handlers turn into the HTTP status (as the 404 above shows end to end)."""
    monkeypatch.setenv("PROVENANT_TOKEN", "not-a-token")
    monkeypatch.setattr(mlflow_plugin, "_clients", {})  # a client reading this test's environment
    repository = mlflow_plugin.ProvenantArtifactRepository(f"{trained['location']}/{trained['run_id']}/artifacts")

    with pytest.raises(MlflowException) as refused:
        repository.list_artifacts()

    assert refused.value.get_http_status_code() == 401
    assert "PROVENANT_TOKEN" in refused.value.message
    assert f"`provenant login` profile for {demo_server.url}" in refused.value.message


def test_the_logged_model_artifacts_are_listed_and_served_as_provenant_holds_them(trained, ui, provenant):
    model = f"/ajax-api/2.0/mlflow/logged-models/{trained['model_id']}/artifacts"
    [run] = provenant.get("/runs/", project=PROJECT, external_id=f"mlflow:{trained['run_id']}")["results"]
    held = {
        path: version
        for path, version in run_versions(provenant, run["id"]).items()
        if version["metadata"]["mlflow"].get("model_id") == trained["model_id"]
    }

    files = listed(ui.get(f"{model}/directories"))
    served = ui.get(f"{model}/files", params={"artifact_file_path": "python_model.pkl"})

    assert {"MLmodel", "python_model.pkl", "requirements.txt"} <= {path for path, _, _ in files}
    assert [(path, size) for path, is_dir, size in files if not is_dir] == [
        (path, held[path]["size"]) for path in sorted(held) if "/" not in path
    ]
    assert served.status_code == 200, served.text
    assert sha256(served.content) == held["python_model.pkl"]["digest"]


def tree_node(page, name: str):
    """An entry of the UI's artifact tree, by its file or folder name (the tree has no roles to find it by)."""
    return page.locator(f'[data-testid="artifact-tree-node"][artifact-name="{name}"]')


@pytest.mark.browser
def _presigned_probe(response) -> bool:
    """MLflow's UI (3.18 on) first asks its server for a presigned download URL and, answered 501 (the artifact
    repository offers none: Provenant's downloads take the caller's token, there is no anonymous URL to presign), reads
    the file through get-artifact as before. That 501 is MLflow's own "not supported", not a refusal of the file."""
    return response.status == 501 and response.url.endswith("/mlflow/artifacts/presigned-download-url")


def test_the_mlflow_ui_shows_the_run_and_model_artifacts_in_a_browser(trained, mlflow_server, browser):
    context = browser.new_context(base_url=mlflow_server, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    refused: list[str] = []
    page.on(
        "response",
        lambda response: (
            refused.append(f"{response.status} {response.url}")
            if "artifact" in response.url and response.status >= 400 and not _presigned_probe(response)
            else None
        ),
    )
    experiment = f"/#/experiments/{trained['experiment_id']}"
    try:
        page.goto(f"{experiment}/runs/{trained['run_id']}/artifacts")
        for name in ("evaluation", "exported-model", "notes.txt"):
            tree_node(page, name).first.wait_for()
        tree_node(page, "evaluation").click()
        tree_node(page, "plots").wait_for()  # a nested folder, listed by the server when its parent opens
        tree_node(page, "report.json").click()
        page.get_by_text('"auc": 0.91').wait_for()  # the file's own text, served by get-artifact, previewed

        page.goto(f"{experiment}/models/{trained['model_id']}/artifacts")
        for name in ("MLmodel", "python_model.pkl", "requirements.txt"):
            tree_node(page, name).wait_for()
    finally:
        context.close()
    assert not refused, refused
