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

from tests import live_server
from tests.clients.conftest import CLIENT_SOURCE, PROJECT


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

    demo = [request for request in waiting if request["requested_by"] == "dana"]
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
    assert any(package.startswith("httpx==") for package in recorded["environment"]["dependencies"])
    published = {item["path"]: item["version"] for item in wrapped["artifacts"]}
    assert sorted(published) == ["model.bin", "reports/eval.json"]
    assert published["model.bin"]["artifact_name"] == "model"
    assert published["reports/eval.json"]["artifact_name"] == "reports-eval"
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
