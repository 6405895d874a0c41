"""`provenant`, the command line (clients/python/src/provenant_client/cli.py), run in-process through `main` and
once as a process, against a real server on the demo; `--json` output is parsed, as a script would."""

import io
import json
import os
import stat
import subprocess
import sys

import pytest
from provenant_client import Client, cli, config, registry
from provenant_client.errors import ProvenantError

from tests import live_server
from tests.clients.conftest import CLIENT_SOURCE, PROJECT
from tests.clients.test_runs import bare_venv


@pytest.fixture
def as_dana(demo_server, monkeypatch):
    """The server and a contributor's token in the environment, as a pipeline would set them."""
    monkeypatch.setenv("PROVENANT_URL", demo_server.url)
    monkeypatch.setenv("PROVENANT_TOKEN", demo_server.contributor_token)
    return demo_server


@pytest.fixture(scope="session")
def sam_token(demo_server) -> str:
    """A token of sam, the demo's second reviewer, for whom the demo leaves a promotion half-approved."""
    env = live_server.environment(demo_server.var_dir, DJANGO_DEBUG="true")
    return live_server.manage("issue_token", "sam", "--name", "cli tests", "--quiet", env=env).strip()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys, *argv: str):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_login_checks_the_token_and_saves_a_private_profile_that_later_commands_use(demo_server, capsys):
    saved = run_json(capsys, "login", demo_server.url, "--token", demo_server.contributor_token, "--profile", "ci")

    path = config.config_path()
    assert saved == {"profile": "ci", "url": demo_server.url, "config": str(path), "default": True}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.read_config()["profiles"]["ci"]["token"] == demo_server.contributor_token
    whoami = run_json(capsys, "whoami", "--profile", "ci")
    assert whoami["profile"] == "ci"
    assert whoami["authenticated"] is True
    assert whoami["me"]["username"] == "dana"
    assert PROJECT in [project["project"] for project in whoami["me"]["projects"]]


def test_login_with_a_token_the_server_refuses_saves_nothing(demo_server, capsys):
    code, _out, err = run(capsys, "login", demo_server.url, "--token", "not-a-token")

    assert code == 1
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert not config.config_path().exists()


def test_push_then_pull_gives_back_the_same_bytes(as_dana, capsys, tmp_path):
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(200_000))

    pushed = run_json(
        capsys,
        "push",
        str(source),
        "--project",
        PROJECT,
        "--artifact",
        "cli-round-trip",
        "--metadata",
        "epochs=3",
        "--metadata",
        "note=first try",
    )
    assert pushed["already_held"] is False
    assert pushed["bytes_sent"] == pushed["size"] == 200_000
    assert pushed["version"]["metadata"] == {"epochs": 3, "note": "first try"}

    dest = tmp_path / "out"
    dest.mkdir()
    pulled = run_json(capsys, "pull", str(pushed["version"]["id"]), str(dest))
    assert pulled["path"] == str(dest / f"cli-round-trip-v{pushed['version']['number']}")
    assert (dest / pulled["path"]).read_bytes() == source.read_bytes()

    code, _out, _ = run(capsys, "pull", pushed["digest"], str(tmp_path / "by-digest.bin"), "--project", PROJECT)
    assert code == 0
    assert (tmp_path / "by-digest.bin").read_bytes() == source.read_bytes()


def test_interrupted_push_says_how_to_resume_and_exits_130(as_dana, capsys, monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Client, "push", interrupted)
    source = tmp_path / "weights.bin"
    source.write_bytes(b"bytes")

    code, _, err = run(capsys, "push", str(source), "--project", PROJECT, "--artifact", "cli-interrupted")

    assert code == cli.EXIT_INTERRUPTED == 130
    assert "run the same `provenant push` again to resume" in err


def test_ls_lists_the_demo_project_and_its_artifacts(as_dana, capsys):
    projects = run_json(capsys, "ls", "projects")
    assert PROJECT in [project["slug"] for project in projects]

    code, out, _ = run(capsys, "ls", "artifacts", "--project", PROJECT)
    assert code == 0
    assert out.splitlines()[0].split() == ["ID", "PROJECT", "NAME", "KIND", "VERSION_COUNT"]
    assert any(line.split()[2] == "model" for line in out.splitlines()[1:])


def test_ls_follows_the_cursor_to_the_last_page(as_dana, capsys, monkeypatch):
    in_one_page = run_json(capsys, "ls", "versions", "--project", PROJECT)
    monkeypatch.setattr(registry, "PAGE_SIZE", 1)

    assert len(in_one_page) > 1
    assert run_json(capsys, "ls", "versions", "--project", PROJECT) == in_one_page


def test_show_prints_a_version_with_what_made_it(as_dana, capsys):
    versions = run_json(capsys, "ls", "versions", "--project", PROJECT)
    trained = next(version for version in versions if version["artifact_name"] == "model" and version["run"])

    shown = run_json(capsys, "show", str(trained["id"]))
    assert shown["version"]["id"] == trained["id"]
    assert f"run:{trained['run']}" in {node["key"] for node in shown["lineage"]["nodes"]}

    code, out, _ = run(capsys, "show", str(trained["id"]))
    assert code == 0
    lines = out.splitlines()
    made_from = lines.index("  made from:")
    assert lines[made_from + 1].startswith(f"    run {trained['run']}: ")
    assert any(line.startswith("      dataset version ") for line in lines[made_from + 2 :])


def test_status_shows_the_demo_promotion_waiting_for_sam(demo_server, sam_token, capsys):
    waiting = run_json(capsys, "--url", demo_server.url, "--token", sam_token, "status")

    # The demo's own request; other tests on this shared server may have opened more (the MLflow ones do).
    demo = [
        request for request in waiting if (request["requested_by"], request["model_name"]) == ("dana", "fraud-scorer")
    ]
    assert [(r["model_name"], r["version"], r["target_stage"]) for r in demo] == [("fraud-scorer", 2, "production")]


def test_promote_then_reject_with_a_comment(demo_server, sam_token, capsys):
    with Client(demo_server.url, demo_server.contributor_token) as client:
        version_2 = next(
            version
            for version in client.get("/model-versions/")["results"]
            if version["model_name"] == "fraud-scorer" and version["number"] == 2
        )
    dana = ("--url", demo_server.url, "--token", demo_server.contributor_token)
    requested = run_json(
        capsys, *dana, "promote", str(version_2["id"]), "--stage", "staging", "--justification", "Shadow it first."
    )
    assert (requested["state"], requested["target_stage"], requested["requested_by"]) == ("open", "staging", "dana")

    sam = ("--url", demo_server.url, "--token", sam_token)
    assert run(capsys, *sam, "reject", str(requested["id"]))[0] == 2  # a rejection must say why
    rejected = run_json(capsys, *sam, "reject", str(requested["id"]), "--comment", "Not this week.")
    assert rejected["state"] == "rejected"


def test_a_404_is_one_line_on_stderr_and_exit_1(as_dana, capsys):
    code, out, err = run(capsys, "show", "999999")

    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert err.rstrip().endswith("(not_found)")
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["push"], ["ls", "everything"], ["show", "not-a-number"], []])
def test_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert "usage: provenant" in capsys.readouterr().err


def test_progress_line_is_drawn_only_on_a_terminal_after_a_second():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, log = Terminal(), io.StringIO()
    quick, slow, logged = (
        cli.ProgressLine("push", terminal),
        cli.ProgressLine("push", terminal),
        cli.ProgressLine("push", log),
    )
    for line in (quick, slow, logged):
        line(0, 1024 * 1024)  # the clock starts at the first block
    quick(10, 100)
    assert terminal.getvalue() == ""

    slow.started -= 2
    logged.started -= 2
    slow(512 * 1024, 1024 * 1024)
    logged(512 * 1024, 1024 * 1024)
    slow.finish()
    assert terminal.getvalue().startswith("\rpush: 512.0 KiB / 1.0 MiB (50%)")
    assert "left" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")
    assert log.getvalue() == ""


def test_the_module_runs_as_a_command(as_dana):
    env = os.environ | {"PYTHONPATH": str(CLIENT_SOURCE)}
    result = subprocess.run(
        [sys.executable, "-m", "provenant_client.cli", "ls", "projects", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert PROJECT in [project["slug"] for project in json.loads(result.stdout)]


TRAIN_SCRIPT = """
import os, sys
from pathlib import Path
from provenant_client import Client

with Client() as client, client.current_run() as run:
    run.log_metrics({"auc": 0.97})
out = Path(os.environ["PROVENANT_OUTPUT_DIR"])
run_id = os.environ["PROVENANT_RUN_ID"]
(out / "model.bin").write_text("weights of run " + run_id)
(out / "reports").mkdir()
(out / "reports" / "eval.json").write_text('{"auc": 0.97, "run": ' + run_id + '}')
sys.exit(int(sys.argv[1]))
"""


def git(repo, *args):
    command = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run([*command, *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    """A clean repository holding train.py, the current folder; its outputs are ignored by git."""
    root = tmp_path / "pipeline"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text(TRAIN_SCRIPT)
    (root / ".gitignore").write_text("outputs/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "train")
    monkeypatch.chdir(root)
    monkeypatch.setenv("PYTHONPATH", str(CLIENT_SOURCE))
    return root


def test_run_wraps_a_script_that_logs_to_the_same_run_and_publishes_its_outputs(as_dana, pipeline, capsys):
    # --json before the command: everything after -- is the wrapped command's own.
    code, out, err = run(capsys, "--json", "run", "--project", PROJECT, "--", sys.executable, "train.py", "0")
    assert code == 0, err
    wrapped = json.loads(out)

    recorded = wrapped["run"]
    assert (wrapped["exit_status"], recorded["status"], recorded["failure_reason"]) == (0, "completed", "")
    assert recorded["metrics"] == {"auc": 0.97}
    assert recorded["code_commit"] == git(pipeline, "rev-parse", "HEAD")
    assert recorded["entry_point"] == f"{sys.executable} train.py 0"
    assert recorded["name"] == "train.py"  # the script, not the command's last word
    assert any(package.startswith("httpx==") for package in recorded["environment"]["dependencies"])
    assert recorded["environment"]["python_source"] == "command"
    published = {item["path"]: item["version"] for item in wrapped["artifacts"]}
    assert sorted(published) == ["model.bin", "reports/eval.json"]
    # Suffixes kept: model.bin does not land in the project's `model` artifact, nor collide with a model.json.
    assert published["model.bin"]["artifact_name"] == "model.bin"
    assert published["reports/eval.json"]["artifact_name"] == "reports-eval.json"
    assert {version["run"] for version in published.values()} == {recorded["id"]}


def test_run_publishes_only_what_the_command_wrote_not_what_the_output_folder_held_before(as_dana, pipeline, capsys):
    outputs = pipeline / "outputs"
    outputs.mkdir()
    (outputs / "stale.bin").write_text("left by an earlier run")
    (outputs / "model.bin").write_text("an earlier run's weights, overwritten by this one")

    code, out, err = run(capsys, "--json", "run", "--project", PROJECT, "--", sys.executable, "train.py", "0")

    assert code == 0, err
    wrapped = json.loads(out)
    assert sorted(item["path"] for item in wrapped["artifacts"]) == ["model.bin", "reports/eval.json"]
    assert wrapped["unchanged"] == ["stale.bin"]


def test_run_fails_the_run_with_the_exit_status_and_exits_with_it(as_dana, pipeline, capsys):
    code, out, err = run(capsys, "--json", "run", "--project", PROJECT, "--", sys.executable, "train.py", "3")
    assert out, err

    wrapped = json.loads(out)
    assert code == 3
    assert (wrapped["run"]["status"], wrapped["run"]["failure_reason"]) == ("failed", "exit status 3")


def test_run_refuses_a_dirty_work_tree_before_running_anything(as_dana, pipeline, capsys):
    (pipeline / "train.py").write_text("raise SystemExit('must not run')\n")

    code, _out, err = run(capsys, "run", "--project", PROJECT, "--", sys.executable, "train.py")

    assert code == 1
    assert "uncommitted changes" in err
    assert "--allow-dirty" in err  # the command line's option, not the Python API's allow_dirty=True
    assert "allow_dirty" not in err


def run_id_from(err: str) -> int:
    """The run's id from the wrapper's first line on stderr: `run <id> (<external id>) in <project>: <command>`."""
    first = next(line for line in err.splitlines() if line.startswith("run "))
    return int(first.split()[1])


def test_run_of_a_command_that_cannot_start_ends_the_run_failed_not_running(as_dana, pipeline, capsys):
    code, _out, err = run(capsys, "run", "--project", PROJECT, "--", "no-such-command-xyz", "--epochs", "3")

    assert code == 1
    assert "cannot run 'no-such-command-xyz'" in err
    with Client() as client:
        recorded = client.get(f"/runs/{run_id_from(err)}/")
    assert recorded["status"] == "failed"
    assert recorded["failure_reason"].startswith("cannot start: cannot run 'no-such-command-xyz'")
    assert recorded["name"] == "no-such-command-xyz"


WRITE_OUTPUTS = """
import os, sys
from pathlib import Path
out = Path(os.environ["PROVENANT_OUTPUT_DIR"])
for name in sys.argv[1:]:
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    (out / name).write_text("written by the run for " + name)
print("epoch 1: loss 0.5")
"""


@pytest.mark.parametrize(
    ("files", "refusal"),
    [
        (["model.bin", "my model.pt"], "my model.pt (artifact name 'my model.pt'"),
        (["model.bin", "a/b.pt", "a-b.pt"], "a/b.pt and a-b.pt would both be artifact 'a-b.pt'"),
    ],
)
def test_run_whose_outputs_cannot_be_published_fails_before_sending_any_of_them(
    as_dana, pipeline, capsys, files, refusal
):
    code, out, err = run(
        capsys, "--json", "run", "--project", PROJECT, "--", sys.executable, "-c", WRITE_OUTPUTS, *files
    )

    assert code == 1, err
    wrapped = json.loads(out)
    assert wrapped["exit_status"] == 0
    assert wrapped["artifacts"] == []  # model.bin, whose name is fine, was not sent either
    assert wrapped["run"]["status"] == "failed"
    assert wrapped["run"]["failure_reason"].startswith("outputs not published: ")
    assert refusal in wrapped["run"]["failure_reason"]
    assert f"error: outputs not published: {refusal}" in err


def test_run_interrupted_while_publishing_its_outputs_is_cancelled(as_dana, pipeline, capsys, monkeypatch):
    real_push = Client.push

    def interrupted_at_the_second_file(self, *args, **kwargs):
        if interrupted_at_the_second_file.pushed:
            raise KeyboardInterrupt  # Ctrl-C while the second output is being sent
        interrupted_at_the_second_file.pushed += 1
        return real_push(self, *args, **kwargs)

    interrupted_at_the_second_file.pushed = 0
    monkeypatch.setattr(Client, "push", interrupted_at_the_second_file)

    command = [sys.executable, "-c", WRITE_OUTPUTS, "a.bin", "b.bin"]
    code, out, err = run(capsys, "--json", "run", "--project", PROJECT, "--", *command)

    assert code == cli.EXIT_INTERRUPTED, err
    wrapped = json.loads(out)
    assert [item["path"] for item in wrapped["artifacts"]] == ["a.bin"]
    assert (wrapped["run"]["status"], wrapped["run"]["failure_reason"]) == (
        "cancelled",
        "interrupted while publishing outputs",
    )


def test_run_with_json_prints_one_document_and_sends_the_commands_output_to_stderr(as_dana, pipeline, capfd):
    code, out, err = run(capfd, "--json", "run", "--project", PROJECT, "--", sys.executable, "-c", WRITE_OUTPUTS)

    assert code == 0, err
    assert json.loads(out)["run"]["status"] == "completed"
    assert "epoch 1: loss 0.5" in err


def test_run_of_another_interpreter_records_that_interpreters_python_and_packages(as_dana, pipeline, capsys, tmp_path):
    python = bare_venv(tmp_path / "venv")

    code, out, err = run(capsys, "--json", "run", "--project", PROJECT, "--", str(python), "-c", WRITE_OUTPUTS)

    assert code == 0, err
    environment = json.loads(out)["run"]["environment"]
    assert environment["python_executable"] == str(python)
    # The bare venv holds nothing; PYTHONPATH (the client's source, for the scripts) may add the client's own metadata
    # where an editable install left it. The wrapper's venv, httpx and the rest, is not what the command imports.
    assert set(environment["dependencies"]) <= {"provenant-client==0.1.0"}
    assert environment["python_source"] == "command"
    assert environment["hardware"]["cpu_count"] == os.cpu_count()  # hardware is the wrapper's machine's


def test_run_of_a_program_that_is_not_python_says_whose_python_it_recorded(as_dana, pipeline, capsys):
    code, out, err = run(capsys, "--json", "run", "--project", PROJECT, "--", "sh", "-c", "exit 0")

    assert code == 0, err
    recorded = json.loads(out)["run"]
    assert recorded["name"] == "sh"
    assert recorded["environment"]["python_executable"] == sys.executable
    assert recorded["environment"]["python_source"] == "wrapper: the command is not a Python interpreter"


def test_run_name_defaults_to_the_script_then_to_the_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("")

    assert cli.default_run_name(["python3", "train.py", "--epochs", "3"]) == "train.py"
    assert cli.default_run_name(["python3", "-m", "trainer.main", "--epochs", "3"]) == "trainer.main"
    assert cli.default_run_name(["/usr/bin/make", "train"]) == "make"


def test_cli_errors_name_the_options_not_the_python_apis_arguments(as_dana, capsys, tmp_path):
    code, _out, err = run(capsys, "pull", "sha256:" + "0" * 64)
    assert code == 1
    assert "pass --project" in err
    assert "project=" not in err

    code, _out, err = run(capsys, "push", str(tmp_path), "--project", PROJECT, "--artifact", "a-folder")
    assert code == 1
    assert "is a folder" in err


def test_audit_export_then_verify_with_the_servers_key(demo_server, capsys, tmp_path):
    env = live_server.environment(demo_server.var_dir, DJANGO_DEBUG="true")
    admin = live_server.manage("issue_token", "admin", "--name", "cli audit", "--quiet", env=env).strip()
    server = ("--url", demo_server.url, "--token", admin)
    exported = run_json(
        capsys, *server, "audit", "export", str(tmp_path / "log.jsonl"), "--public-key-file", str(tmp_path / "k.pem")
    )
    verified = run_json(capsys, "audit", "verify", exported["path"], "--public-key", str(tmp_path / "k.pem"))
    assert verified["ok"] is True
    assert verified["entries"] > 0

    (tmp_path / "cut.jsonl").write_bytes(b"".join((tmp_path / "log.jsonl").read_bytes().splitlines(True)[:-3]))
    code, out, _err = run(
        capsys, "audit", "verify", str(tmp_path / "cut.jsonl"), "--public-key", str(tmp_path / "k.pem")
    )
    assert code == 1
    assert out.startswith("FAILED: seq ")


def test_lineage_of_a_reference_as_a_tree(as_dana, capsys):
    graph = run_json(capsys, "lineage", "fraud-scorer@production", "--project", PROJECT, "--direction", "upstream")
    code, out, _err = run(capsys, "lineage", str(graph["root"]["id"]))

    assert code == 0
    assert out.startswith(f"artifact version {graph['root']['id']}: ")
    assert "  made from:" in out


def test_token_issue_list_and_revoke(demo_server, capsys, monkeypatch):
    """mara, a maintainer, issues a read token restricted to her project with the command line, sees it listed,
    uses it, and revokes it: its next request answers 401."""
    monkeypatch.setenv("PROVENANT_URL", demo_server.url)
    monkeypatch.setenv("PROVENANT_TOKEN", demo_server.maintainer_token)

    issued = run_json(capsys, "token", "issue", "--name", "cli-dashboard", "--scope", "read", "--project", PROJECT)
    assert (issued["scope"], issued["project"], issued["status"]) == ("read", PROJECT, "active")
    assert issued["token"].startswith(issued["prefix"])

    listed = run_json(capsys, "token", "list")
    assert issued["id"] in [token["id"] for token in listed]
    assert "token" not in next(token for token in listed if token["id"] == issued["id"])  # never the secret again
    code, out, _ = run(capsys, "token", "list")
    assert code == 0
    assert "cli-dashboard" in out
    assert issued["token"] not in out

    with Client(demo_server.url, issued["token"]) as reader:
        assert reader.whoami()["token"]["scope"] == "read"
    revoked = run_json(capsys, "token", "revoke", str(issued["id"]))
    assert revoked["status"] == "revoked"
    with Client(demo_server.url, issued["token"]) as reader, pytest.raises(ProvenantError, match="revoked"):
        reader.whoami()


def test_token_issue_refuses_a_lifetime_beyond_366_days_before_asking(demo_server, capsys, monkeypatch):
    monkeypatch.setenv("PROVENANT_URL", demo_server.url)
    monkeypatch.setenv("PROVENANT_TOKEN", demo_server.maintainer_token)
    code, _, err = run(capsys, "token", "issue", "--name", "x", "--scope", "read", "--days", "400")
    assert code == 1
    assert "366" in err
