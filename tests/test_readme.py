"""The README's shell examples run as written against `make run`'s demo.

Every ```sh and ```bash block of README.md runs, in the README's order, in one bash process (`set -euo pipefail`,
so a failing command or an undefined variable stops it) against a real server process on a fresh var dir loaded
with the demo: migrate, load_demo and runserver with DJANGO_DEBUG=true, as `make run` does (tests/live_server.py).

The one change made to the README's text: its base URL, `http://127.0.0.1:8000/api/v1`, which it sets once as
`API=…`, becomes the test server's (a free port). Nothing else is rewritten. The blocks run in a temporary folder
that looks like the checkout (a symlink to each of its entries: manage.py, .venv, governance/…), so what the README
runs from the checkout's folder is there and the files it makes stay out of the checkout. Their environment names
the server's var dir (PROVENANT_VAR_DIR), which is how `make run` and the README's `manage.py` commands share
`var/`, and holds no other setting of Provenant's or Django's: a command that needs DJANGO_DEBUG=true must say so.

A block that cannot run against the demo is preceded by `<!-- not run: <why> -->`. Those few are pinned here, and
still checked by `bash -n`.
"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import live_server

README = live_server.ROOT / "README.md"
README_API = "http://127.0.0.1:8000/api/v1"
SHELLS = {"sh", "bash", "shell"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w+-]*)[ \t]*$")
NOT_RUN_MARK = re.compile(r"^\s*<!--\s*not run:\s*(?P<why>.*?)\s*-->\s*$")
#: The blocks kept from running, each found by a piece of its text, in README order. Keep this list short: every
#: other example must run against the demo.
NOT_RUN = ("make run", "/webhooks/endpoints/")
#: --fail-with-body came with curl 7.76.
CURL_MINIMUM = (7, 76)
RUN_SECONDS = 300
#: curl's progress meter (on stderr while stdout is not a terminal): its header lines and its --:--:-- lines.
PROGRESS_METER = re.compile(r"% Total|Dload +Upload|--:--:--")


@dataclass(frozen=True)
class Block:
    line: int  # of its opening fence, counted from 1
    text: str
    not_run: str | None  # the reason its `<!-- not run: … -->` gives, if it has one


def shell_blocks(markdown: str) -> list[Block]:
    """The shell blocks of `markdown` in order, their text without the indentation of their fence."""
    lines = markdown.splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if re.fullmatch(r"[ \t]*```[ \t]*", lines[i])), len(lines))
        if fence["lang"] in SHELLS:
            indent = fence["indent"]
            body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
            before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            mark = NOT_RUN_MARK.match(before)
            blocks.append(Block(index + 1, "\n".join(body) + "\n", mark["why"] if mark else None))
        index = end + 1
    return blocks


@dataclass(frozen=True)
class Outcome:
    failed: Block | None  # the block that stopped the run, if one did
    status: int  # 0 only when every block ran to its end
    output: str  # the failed block's own output, or everything


def run_in_order(blocks: list[Block], *, cwd: Path, env: dict[str, str], timeout: float) -> Outcome:
    """Run `blocks` one after another in one bash process, as a person pasting them into one shell would, and say
    which one stopped it. Before each block a mark is printed on the same stream as the commands' output, so the
    output after the last mark is the failing block's."""
    mark = f"@@readme-{secrets.token_hex(8)}@@"
    script = ["set -euo pipefail"]
    for number, block in enumerate(blocks):
        script += [f"printf '\\n%s %d\\n' '{mark}' {number}", block.text]
    script.append(f"printf '\\n%s done\\n' '{mark}'")
    path = cwd / "readme-examples.sh"
    path.write_text("\n".join(script))
    with subprocess.Popen(
        ["bash", str(path)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as shell:
        try:
            output, _ = shell.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            # The whole group: a curl still waiting would hold the pipe open.
            os.killpg(shell.pid, signal.SIGKILL)
            output, _ = shell.communicate()
            output += f"\n(stopped after {timeout:.0f} s)"
    parts = output.split(f"\n{mark} ")
    last = parts[-1]
    if shell.returncode == 0 and last.startswith("done\n"):
        return Outcome(None, 0, output)
    if len(parts) == 1:
        return Outcome(None, shell.returncode or 1, output)
    number, _, own_output = last.partition("\n")
    return Outcome(blocks[int(number)], shell.returncode or 1, own_output)


def report(outcome: Outcome, more: str = "") -> str:
    """What failed, for a person: the block, then its output without curl's progress meters."""
    block = outcome.failed
    where = f"The README's block at line {block.line}" if block else "The README's examples"
    text = f":\n{block.text}" if block else ""
    output = "\n".join(line for line in outcome.output.splitlines() if not PROGRESS_METER.search(line))
    return f"{where} failed (exit status {outcome.status}){text}\n--- its output ---\n{output}{more}"


def curl_commands(block: Block) -> Iterator[str]:
    """Each curl command of `block`, from `curl` to the end of its pipeline stage, comments left out."""
    logical = re.sub(r"\\\n", " ", block.text)
    for line in logical.splitlines():
        line = re.sub(r"(^|\s)#\s.*$", "", line)
        yield from (f"curl{rest.split('|')[0]}" for rest in re.split(r"\bcurl\b", line)[1:])


def curl_version() -> tuple[int, int]:
    if shutil.which("curl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("curl is missing: the README's examples need it (curl 7.76 or later).")
        pytest.skip("curl is missing; the README's examples are not run.")
    first = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    major, minor = first.split(".")[:2]
    return int(major), int(minor)


@pytest.fixture(scope="module")
def demo_api(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The API base URL of a server on a fresh demo, as `make run` starts it, and its var dir."""
    var_dir = tmp_path_factory.mktemp("readme-demo")
    env = live_server.environment(var_dir, DJANGO_DEBUG="true")
    live_server.load_demo(env)
    env["PYTHONUNBUFFERED"] = "1"  # its log's tail is shown when an example fails: every line, as it happened
    with live_server.serving(env, log_path=var_dir / "server.log") as url:
        yield f"{url}/api/v1", var_dir


def checkout_lookalike(folder: Path) -> Path:
    """`folder` with a symlink to each entry of the checkout but var/, and .venv to the virtualenv running the
    tests (the checkout's, under `make test`), so the README's `.venv/bin/python` is the server's Python."""
    for entry in live_server.ROOT.iterdir():
        if entry.name not in {"var", ".venv"}:
            (folder / entry.name).symlink_to(entry)
    in_virtualenv = sys.prefix != sys.base_prefix
    environment = Path(sys.prefix) if in_virtualenv else live_server.ROOT / ".venv"
    assert (environment / "bin" / "python").exists(), "The README runs .venv/bin/python: make a venv (make venv)."
    (folder / ".venv").symlink_to(environment)
    return folder


def test_every_shell_example_runs_as_written_against_the_demo(demo_api, tmp_path):
    assert curl_version() >= CURL_MINIMUM, "The README's curl commands use --fail-with-body (curl 7.76 or later)."
    api, var_dir = demo_api
    runnable = [block for block in shell_blocks(README.read_text()) if block.not_run is None]
    assert sum(block.text.count(README_API) for block in runnable) == 1, f"The README sets API={README_API} once."
    blocks = [Block(b.line, b.text.replace(README_API, api), None) for b in runnable]
    env = live_server.environment(var_dir)
    env.pop("BASH_ENV", None)

    outcome = run_in_order(blocks, cwd=checkout_lookalike(tmp_path), env=env, timeout=RUN_SECONDS)

    server_log = (var_dir / "server.log").read_text(errors="replace").splitlines()[-30:]
    assert outcome.status == 0, report(outcome, "\n--- the server's log, last lines ---\n" + "\n".join(server_log))


def test_only_the_set_up_and_the_webhook_example_are_kept_from_running():
    blocks = shell_blocks(README.read_text())
    kept_out = [block for block in blocks if block.not_run is not None]
    assert len(kept_out) == len(NOT_RUN), [f"line {b.line}: {b.not_run}" for b in kept_out]
    for block, piece in zip(kept_out, NOT_RUN, strict=True):
        assert piece in block.text, f"The block at line {block.line} is not run, but it is not the {piece!r} one."
        assert block.not_run, f"The block at line {block.line} does not say why it is not run."
        syntax = subprocess.run(["bash", "-n"], input=block.text, capture_output=True, text=True)
        assert syntax.returncode == 0, f"The block at line {block.line} is not valid bash:\n{syntax.stderr}"


def test_every_curl_example_fails_visibly_and_builds_its_url_on_api():
    blocks = shell_blocks(README.read_text())
    commands = [(block, command) for block in blocks for command in curl_commands(block)]
    assert len(commands) > 20
    for block, command in commands:
        assert "--fail-with-body" in command, f"Line {block.line}: {command} would hide an error answer."
        assert "/dev/null" not in command, f"Line {block.line}: {command} throws the answer away."
        assert "/api/v1" not in command, f"Line {block.line}: {command} names the API without $API."


def test_a_failing_example_is_reported_with_its_block_and_its_output(tmp_path):
    blocks = [
        Block(10, "echo one\n", None),
        Block(20, 'echo "two: $UNDEFINED_IN_THE_README"\n', None),
        Block(30, "echo three\n", None),
    ]

    outcome = run_in_order(blocks, cwd=tmp_path, env=dict(os.environ), timeout=30)

    assert outcome.failed == blocks[1]
    assert outcome.status != 0
    assert "UNDEFINED_IN_THE_README: unbound variable" in outcome.output
    assert "one" not in outcome.output
    assert "three" not in outcome.output
    assert "line 20" in report(outcome)


def test_a_failing_command_inside_a_captured_pipeline_stops_the_run(tmp_path):
    blocks = [Block(1, "VALUE=$(false | cat)\necho reached\n", None)]

    outcome = run_in_order(blocks, cwd=tmp_path, env=dict(os.environ), timeout=30)

    assert outcome.failed == blocks[0]
    assert "reached" not in outcome.output


def test_shell_blocks_are_read_with_their_marks_and_without_their_indentation():
    markdown = (
        "<!-- not run: production only -->\n```sh\nmake run\n```\n\n```\nnot shell\n```\n"
        "- item:\n\n  ```bash\n  echo indented\n    echo deeper\n  ```\n"
    )

    assert shell_blocks(markdown) == [
        Block(2, "make run\n", "production only"),
        Block(11, "echo indented\n  echo deeper\n", None),
    ]


def test_the_readme_holds_no_merge_conflict_markers():
    """A merge that kept both sides once left its markers in prose, where no shell block would notice them."""
    lines = README.read_text().splitlines()

    assert [n for n, line in enumerate(lines, 1) if line.startswith(("<<<<<<< ", ">>>>>>> ", "======="))] == []
