"""Runs from the client (clients/python/src/provenant_client/runs.py) against a real server process on the demo:
the context is captured without being told, a dirty work tree is refused before anything is sent, parameters and
batched metrics arrive, artifacts name the run that made them, and the block's end finishes the run.

Each test works in a git repository of its own, made with the real `git`, and reads back what the server kept.
"""

import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from provenant_client import Client, NotFound
from provenant_client.runs import DirtyWorkTree, InterpreterUnreadable, Run, RunStateError, interpreter_environment

from tests.clients.conftest import PROJECT, DemoServer
from tests.clients.relay import Relay

REMOTE = "https://example.com/example-payments/fraud-detection.git"
#: What the repository's remote is set to: a token in the URL, as CI checkouts often have.
REMOTE_WITH_TOKEN = "https://ci-bot:s3cret-token@example.com/example-payments/fraud-detection.git"


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run([*command, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A clean git repository with one commit of `train.py`, the current folder and the script being run."""
    root = tmp_path / "pipeline"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("print('training')\n")
    (root / ".gitignore").write_text("outputs/\n")
    git(root, "add", "train.py", ".gitignore")
    git(root, "commit", "-q", "-m", "first")
    git(root, "remote", "add", "origin", REMOTE_WITH_TOKEN)
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", [str(root / "train.py")])
    return root


@pytest.fixture
def client(demo_server: DemoServer, tmp_path) -> Iterator[Client]:
    with Client(demo_server.url, demo_server.contributor_token, cache_dir=tmp_path / "cache", backoff=0) as client:
        yield client


def bare_venv(folder: Path) -> Path:
    """A virtual environment with no distribution installed (not even pip), and its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, capture_output=True)
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run_requests(client: Client) -> list[tuple[str, str]]:
    """Every request the client sends about runs from now on (method, path), as they cross the network."""
    sent: list[tuple[str, str]] = []

    def record(request: httpx.Request) -> None:
        if "/runs/" in request.url.path:
            sent.append((request.method, request.url.path))

    client.http.event_hooks["request"].append(record)
    return sent


def test_a_run_records_its_commit_repository_entry_point_python_and_packages(client, repo):
    with client.start_run(project=PROJECT, name="nightly training") as run:
        run.log_params({"learning_rate": 0.02})

    recorded = client.get(f"/runs/{run.id}/")
    assert recorded["status"] == "completed"
    assert recorded["ended_at"] is not None
    assert recorded["name"] == "nightly training"
    assert recorded["external_id"].startswith("nightly-training-")
    assert recorded["code_commit"] == git(repo, "rev-parse", "HEAD")
    assert recorded["code_repository"] == REMOTE  # the token in the remote's URL is never sent
    assert recorded["entry_point"] == "train.py"
    environment = recorded["environment"]
    assert environment["python_version"] == platform.python_version()
    assert environment["git_dirty"] is False
    assert f"httpx=={metadata.version('httpx')}" in environment["dependencies"]
    names = [requirement.split("==")[0].lower() for requirement in environment["dependencies"]]
    assert names == sorted(set(names))  # sorted by name, each distribution once
    assert environment["hardware"]["cpu_count"] == os.cpu_count()
    assert environment["python_executable"] == sys.executable


@pytest.mark.parametrize("change", ["modified", "untracked"])
def test_a_dirty_work_tree_is_refused_and_nothing_is_sent(client, repo, change):
    if change == "modified":
        (repo / "train.py").write_text("print('training, changed')\n")
        expected = "train.py"
    else:
        (repo / "helpers.py").write_text("SEED = 1\n")
        expected = "helpers.py"
    sent = run_requests(client)

    with pytest.raises(DirtyWorkTree, match="allow_dirty=True") as refused:
        client.start_run(project=PROJECT, name="dirty")  # refused here, before the block it would open

    assert refused.value.changed == [expected]
    assert sent == []


def test_ignored_outputs_do_not_make_the_tree_dirty(client, repo):
    (repo / "outputs").mkdir()
    (repo / "outputs" / "model.bin").write_bytes(b"weights")

    with client.start_run(project=PROJECT) as run:
        run.log_metrics({"auc": 0.9})

    assert client.get(f"/runs/{run.id}/")["environment"]["git_dirty"] is False


def test_a_dirty_work_tree_allowed_is_recorded_as_dirty(client, repo):
    (repo / "train.py").write_text("print('training, changed')\n")

    with client.start_run(project=PROJECT, allow_dirty=True) as run:
        run.log_metrics({"auc": 0.9})

    recorded = client.get(f"/runs/{run.id}/")
    assert recorded["code_commit"] == git(repo, "rev-parse", "HEAD")
    assert recorded["environment"]["git_dirty"] is True
    assert recorded["environment"]["git_changes"] == ["train.py"]


def test_a_folder_outside_git_records_no_commit(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with client.start_run(project=PROJECT) as run:
        run.log_metrics({"auc": 0.9})

    recorded = client.get(f"/runs/{run.id}/")
    assert (recorded["code_commit"], recorded["code_repository"]) == ("", "")
    assert "git_dirty" not in recorded["environment"]


def test_params_and_batched_metrics_are_recorded(client, repo):
    sent = run_requests(client)

    with client.start_run(project=PROJECT, params={"epochs": 3}) as run:
        run.log_params({"learning_rate": 0.02, "layers": [64, 32]})
        run.log_metrics({"loss": 0.9, "auc": 0.80})
        run.log_metrics({"loss": 0.4})
        assert sent == []  # kept until flush or the end
        run.flush()
        assert client.get(f"/runs/{run.id}/")["status"] == "running"
        run.log_metrics({"auc": 0.93})
        with pytest.raises(RunStateError, match="before"):
            run.log_params({"too_late": True})
        with pytest.raises(ValueError, match="finite number"):
            run.log_metrics({"auc": float("nan")})

    recorded = client.get(f"/runs/{run.id}/")
    assert recorded["parameters"] == {"epochs": 3, "learning_rate": 0.02, "layers": [64, 32]}
    assert recorded["metrics"] == {"loss": 0.4, "auc": 0.93}
    assert recorded["status"] == "completed"
    # Created on flush, then finished with the last metrics (the GETs are this test's own reads).
    assert [method for method, _ in sent if method != "GET"] == ["POST", "PATCH"]


def test_log_artifact_publishes_a_version_produced_by_the_run(client, repo):
    output = repo / "outputs"
    output.mkdir()
    (output / "model.bin").write_bytes(os.urandom(4096))
    data = client.get("/dataset-versions/", project=PROJECT, page_size=1)["results"][0]

    with client.start_run(project=PROJECT, name="train", inputs=[data]) as run:
        pushed = run.log_artifact(output / "model.bin", name="model", metadata={"framework": "pytorch"})

    version = client.get(f"/artifact-versions/{pushed.version['id']}/")
    assert version["run"] == run.id
    assert version["artifact_name"] == "model"
    assert version["metadata"] == {"framework": "pytorch"}
    recorded = client.get(f"/runs/{run.id}/")
    assert recorded["input_dataset_versions"] == [data["id"]]
    assert recorded["status"] == "completed"

    # A later run consuming that version records it as its input.
    with client.start_run(project=PROJECT, name="evaluate", inputs=[pushed]) as evaluation:
        evaluation.log_metrics({"auc": 0.91})
    assert client.get(f"/runs/{evaluation.id}/")["input_artifact_versions"] == [pushed.version["id"]]


def test_an_exception_finishes_the_run_as_failed_and_is_re_raised(client, repo):
    def train(run: Run) -> None:
        run.log_metrics({"loss": 0.5})
        raise ZeroDivisionError("diverged")

    with pytest.raises(ZeroDivisionError), client.start_run(project=PROJECT) as run:
        train(run)

    recorded = client.get(f"/runs/{run.id}/")
    assert recorded["status"] == "failed"
    assert recorded["ended_at"] is not None
    assert recorded["metrics"] == {"loss": 0.5}
    assert recorded["failure_reason"] == "ZeroDivisionError"
    assert "failure" not in recorded["environment"]
    assert run.failure == "ZeroDivisionError"
    with pytest.raises(RunStateError, match="failed"):
        run.log_metrics({"loss": 0.1})


def test_a_run_already_sent_is_also_finished_as_failed(client, repo):
    def train(run: Run) -> None:
        run.flush()
        raise KeyError("label")

    with pytest.raises(KeyError), client.start_run(project=PROJECT) as run:
        train(run)

    recorded = client.get(f"/runs/{run.id}/")
    assert (recorded["status"], recorded["failure_reason"]) == ("failed", "KeyError")
    assert run.failure == "KeyError"


def test_another_process_attaches_to_a_running_run_logs_to_it_and_leaves_finishing_to_its_opener(
    client, repo, monkeypatch
):
    with client.start_run(project=PROJECT, name="wrapped") as opened:
        opened.flush()
        monkeypatch.setenv("PROVENANT_RUN_ID", str(opened.id))
        with client.current_run() as attached:
            attached.log_metrics({"auc": 0.93})
        assert client.get(f"/runs/{opened.id}/")["status"] == "running"
        assert client.get(f"/runs/{opened.id}/")["metrics"] == {"auc": 0.93}

    assert client.get(f"/runs/{opened.id}/")["status"] == "completed"
    with pytest.raises(RunStateError, match="completed"):
        client.current_run()
    monkeypatch.delenv("PROVENANT_RUN_ID")
    assert client.current_run() is None


def test_a_reference_as_input_records_the_version_it_names_when_the_run_opens(client, repo):
    champion = client.resolve("fraud-scorer@champion", project=PROJECT)["artifact_version"]

    with client.start_run(project=PROJECT, name="score", inputs=["fraud-scorer@champion"]) as run:
        run.log_metrics({"auc": 0.91})

    assert client.get(f"/runs/{run.id}/")["input_artifact_versions"] == [champion["id"]]


def test_an_unknown_reference_or_a_bare_number_is_refused_before_anything_is_sent(client, repo):
    sent = run_requests(client)

    with pytest.raises(NotFound, match="ghost"):
        client.start_run(project=PROJECT, inputs=["fraud-scorer@ghost"])
    with pytest.raises(TypeError, match="input_dataset_versions="):
        client.start_run(project=PROJECT, inputs=[12])

    assert sent == []


def test_another_interpreter_is_described_by_what_it_holds_not_by_what_the_caller_holds(tmp_path):
    python = bare_venv(tmp_path / "venv")

    described = interpreter_environment(python)

    assert described["python_executable"] == str(python)
    assert described["dependencies"] == []  # the caller's own holds httpx at least
    assert described["python_version"].count(".") == 2


def test_a_program_that_is_not_a_python_interpreter_is_said_to_be_unreadable(tmp_path):
    with pytest.raises(InterpreterUnreadable, match="could not describe itself"):
        interpreter_environment("false")
    with pytest.raises(InterpreterUnreadable, match="did not start"):
        interpreter_environment(tmp_path / "no-such-python")


@pytest.mark.parametrize("sent_by", ["flush", "the block's end"])
def test_a_run_whose_creation_lost_its_answer_is_created_once_and_goes_on(demo_server, repo, tmp_path, sent_by):
    """The server created the run but the connection closed before its answer: the POST is not sent blindly again
    (a second would be refused, the external id being taken), the run is found by its external id and used."""
    relay = Relay(urlsplit(demo_server.url).port)
    relay.cut_after = lambda request: 0 if (request.method, request.path) == ("POST", "/api/v1/runs/") else None
    try:
        with Client(relay.url, demo_server.contributor_token, cache_dir=tmp_path / "cache", backoff=0) as client:
            with client.start_run(project=PROJECT, name="lost-answer") as run:
                run.log_metrics({"loss": 0.4})
                if sent_by == "flush":
                    run.flush()
                    run.log_metrics({"loss": 0.2})
            found = client.get("/runs/", project=PROJECT, external_id=run.external_id)["results"]
    finally:
        relay.close()

    posts = [request for request in relay.crossed if request.method == "POST"]
    assert [(request.path, request.status) for request in posts] == [("/api/v1/runs/", 201)]
    assert relay.cuts == 1
    assert [record["id"] for record in found] == [run.id]
    assert (found[0]["status"], found[0]["metrics"]) == ("completed", {"loss": 0.2 if sent_by == "flush" else 0.4})
