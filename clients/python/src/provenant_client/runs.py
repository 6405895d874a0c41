"""Runs: a training script's `with client.start_run(...) as run:` block, recorded with its generative context.

What the server needs to answer "what made this model?" is captured without being told: the code's commit and
repository (credentials stripped from its URL), whether the work tree was clean, the entry point, the Python
version and executable, every installed distribution as `name==version`, and the hardware. `provenant run` asks the
interpreter it wraps for its own (`interpreter_environment`), since that is the Python the script runs in. A dirty
work tree is refused before anything is sent, since the commit would not describe the code that ran;
`allow_dirty=True` records the run anyway and marks it (`environment["git_dirty"]` and the changed paths).

The server fixes a run's code, parameters, environment and inputs when it is created, takes metrics while it runs
(merged in), and freezes it once finished (README, `/runs/`). So the run is sent when it is first needed: on the
first `log_artifact` (whose version must name it), on `flush()` (to show it as running while it trains), or on
leaving the block, where a run not yet sent goes in one request with its final status. Parameters logged until
then go with it; its start time is the block's entry, not the moment of sending. Metrics are kept and sent on
`flush()` or at the end.

On leaving the block the run is finished: `completed` (also on `sys.exit(0)`); `cancelled` on Ctrl-C; `failed` on
any other exception, with the exception's type name as the run's `failure_reason` (which the server takes only
with the status that ends the run, and freezes with it). The exception is always re-raised.

A process that did not open the run may still log to it: `provenant run -- python train.py` opens the run and
hands its id to the script in `PROVENANT_RUN_ID`, where `Client().current_run()` (or `Run.attach(client, id)`)
finds it. An attached run logs metrics and artifacts, but leaves finishing to whoever opened it: leaving its block
only sends the metrics kept.

Inputs are dataset or artifact version records (the dicts the API answers, or a `PushResult`), references such as
`"preprocessor@champion"` or `"fraud-scorer@production"` (resolved by the server, in the run's project, when the run
is opened: the run records the version they name at that moment), or explicit ids through
`input_dataset_versions=` / `input_artifact_versions=`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from provenant_client.errors import Conflict, ProvenantError, ServerError

if TYPE_CHECKING:
    from provenant_client.client import Client, PushResult

__all__ = ["DirtyWorkTree", "Run", "RunStateError", "capture_environment", "git_state", "interpreter_environment"]

#: The environment variable that hands a run's id to the process it wraps (`provenant run`).
RUN_ID_VARIABLE = "PROVENANT_RUN_ID"

#: How many changed paths of a dirty tree are named (in the refusal, and in a run allowed to be dirty).
CHANGED_PATHS_SHOWN = 50
#: The server's limits on a run's text fields (RunCreateRequest in the OpenAPI).
ENTRY_POINT_MAX = 500
REPOSITORY_MAX = 500
FAILURE_REASON_MAX = 1000


class DirtyWorkTree(RuntimeError):
    """The code's work tree has changes the commit does not hold: the run would name code that did not run."""

    def __init__(self, root: Path, changed: list[str]) -> None:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        super().__init__(
            f"The work tree {root} has uncommitted changes ({shown}): the run's commit would not be the code that "
            "ran. Commit them, add them to .gitignore, or pass allow_dirty=True to record the run marked as dirty."
        )
        self.root = root
        self.changed = changed


class RunStateError(RuntimeError):
    """What was asked of a run does not fit where it stands (parameters after it was sent, anything once over)."""


# Context ---------------------------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str | None:
    """A git command's output in `repo`, or None when git is missing or the folder is not in a repository."""
    try:
        # Our own fixed git arguments; "git" from PATH, as the user's shell would run it.
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def strip_credentials(url: str) -> str:
    """The remote's URL without a password, and for http(s) without a user either (tokens are put there too).

    `git@host:org/repo.git` (scp-like, no scheme) names no secret and is kept as it is.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    keep_user = parts.scheme not in {"http", "https"}
    netloc = f"{user.split(':', 1)[0]}@{host}" if keep_user and user else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def git_state(repo: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The commit, remote URL, root and changed paths of the git work tree holding `repo` (default: the current
    folder), or None when it is not in one.

    Untracked files count as changes (unless ignored): a helper module not yet added is code that ran but that no
    commit holds. Outputs a script writes belong in .gitignore.
    """
    where = Path(repo) if repo is not None else Path.cwd()
    root = _git(where, "rev-parse", "--show-toplevel")
    commit = _git(where, "rev-parse", "--verify", "HEAD")
    if root is None or commit is None:  # not a repository, or one without a commit yet
        return None
    remote = _git(where, "remote", "get-url", "origin")
    status = _git(where, "status", "--porcelain=v1", "--untracked-files=normal") or ""
    changed = sorted({line[3:] for line in status.splitlines() if len(line) > 3})
    return {
        "root": Path(root.strip()),
        "commit": commit.strip(),
        "repository": strip_credentials(remote.strip()) if remote else "",
        "changed": changed,
    }


def installed_packages() -> list[str]:
    """Every distribution importable here as `name==version`, sorted by name (case-insensitively), once each."""
    found: dict[str, str] = {}
    for distribution in importlib_metadata.distributions():
        name = distribution.metadata["Name"]
        if name and distribution.version:
            found.setdefault(name.lower(), f"{name}=={distribution.version}")
    return [found[key] for key in sorted(found)]


def _memory_bytes() -> int | None:
    """Physical memory, where the system says it for free (POSIX sysconf); None elsewhere."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


#: What `interpreter_environment` runs in another interpreter: the Python keys of `capture_environment`, as JSON on
#: the last line. Python 3.9 code, as the client's own (`installed_packages` in its words). What `-c` puts first on
#: the path, the current folder, is left out: a project's own metadata there (an editable install's egg-info) is
#: not a package the interpreter holds, and a script run as `python train.py` has its own folder first instead.
_DESCRIBE_INTERPRETER = """
import json, platform, sys
from importlib import metadata
sys.path[:] = [entry for entry in sys.path if entry not in ("", ".")]  # -c's current folder is not the script's
found = {}
for distribution in metadata.distributions():
    name = distribution.metadata["Name"]
    if name and distribution.version:
        found.setdefault(name.lower(), name + "==" + distribution.version)
print(json.dumps({
    "python_version": platform.python_version(),
    "python_implementation": platform.python_implementation(),
    "python_executable": sys.executable,
    "dependencies": [found[key] for key in sorted(found)],
}))
"""


class InterpreterUnreadable(RuntimeError):
    """Another Python interpreter could not say what it is and holds (not Python 3.8+, or not starting at all)."""


def interpreter_environment(
    python: str | os.PathLike[str], env: Mapping[str, str] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """The Python version, implementation, executable and installed distributions of the interpreter `python`,
    asked by running it once with `env`: what a command it runs imports, not what the caller's own Python holds."""
    try:
        # The user's own interpreter with our fixed script, as the command it is about to run would start it.
        done = subprocess.run(  # noqa: S603
            [os.fspath(python), "-c", _DESCRIBE_INTERPRETER],
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise InterpreterUnreadable(f"{python} did not start: {error}") from error
    lines = done.stdout.strip().splitlines()
    try:
        described = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except ValueError:
        described = None
    if not isinstance(described, dict):
        said = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise InterpreterUnreadable(f"{python} could not describe itself (exit status {done.returncode}: {said})")
    return described


def capture_environment() -> dict[str, Any]:
    """Where this process runs: the keys the server knows (python_version, dependencies, hardware) and a few more,
    among them `python_executable`, the interpreter they describe."""
    hardware: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
    }
    memory = _memory_bytes()
    if memory is not None:
        hardware["memory_bytes"] = memory
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "dependencies": installed_packages(),
        "hardware": hardware,
    }


def _entry_point(root: Path | None) -> str:
    """The script that started this process, relative to the repository when it lies in it."""
    script = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    path = Path(script).resolve()
    # Outside the repository (or not a path at all, as with `python -c`): kept as it was started.
    if root is not None and path.is_file() and root.resolve() in path.parents:
        script = path.relative_to(root.resolve()).as_posix()
    return script[-ENTRY_POINT_MAX:]


def _default_external_id(name: str) -> str:
    """A name for the run unique enough in its project: its name's safe characters, the UTC time, random hex."""
    stem = "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip("-._")[:60] or "run"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stem}-{stamp}-{secrets.token_hex(4)}"


def _split_inputs(inputs: Iterable[Any], resolve: Callable[[str], Mapping[str, Any]]) -> tuple[list[int], list[int]]:
    """Dataset and artifact version ids of `inputs`: API records, push results or references (`resolve` asks the
    server what a reference names), never bare numbers (an id alone does not say which kind of version it is)."""
    datasets: list[int] = []
    artifacts: list[int] = []
    for item in inputs:
        record = getattr(item, "version", item)  # a PushResult carries the artifact version it published
        if isinstance(record, Mapping) and "id" in record and "artifact" in record:
            artifacts.append(int(record["id"]))
        elif isinstance(record, Mapping) and "id" in record and "dataset" in record:
            datasets.append(int(record["id"]))
        elif isinstance(item, str):
            artifacts.append(int(resolve(item)["artifact_version"]["id"]))
        else:
            raise TypeError(
                f"Input {item!r} is neither a dataset version nor an artifact version record; pass bare ids through "
                "input_dataset_versions= or input_artifact_versions=."
            )
    return datasets, artifacts


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def _instant(text: Any) -> datetime.datetime | None:
    """An ISO 8601 time as the server or `_now` wrote it (`Z` or `+00:00`), to compare instants, not spellings."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


# The run ---------------------------------------------------------------------------------------------------------


class Run:
    """One run of a pipeline in a project; see the module's docstring for when it is sent and how it finishes.

    Made by `Client.start_run`, which captures the context (and refuses a dirty tree) before returning it.
    """

    def __init__(
        self,
        client: Client,
        *,
        project: str,
        name: str = "",
        external_id: str | None = None,
        inputs: Iterable[Any] = (),
        input_dataset_versions: Iterable[int] = (),
        input_artifact_versions: Iterable[int] = (),
        params: Mapping[str, Any] | None = None,
        repo: str | os.PathLike[str] | None = None,
        allow_dirty: bool = False,
        environment: Mapping[str, Any] | None = None,
        entry_point: str | None = None,
    ) -> None:
        git = git_state(repo)
        if git is not None and git["changed"] and not allow_dirty:
            raise DirtyWorkTree(git["root"], git["changed"])
        datasets, artifacts = _split_inputs(inputs, lambda ref: client.resolve(ref, project=project))
        captured = capture_environment()
        if git is not None:
            captured["git_dirty"] = bool(git["changed"])
            if git["changed"]:
                captured["git_changes"] = git["changed"][:CHANGED_PATHS_SHOWN]
        captured.update(environment or {})
        self.client = client
        self.project = project
        self.name = name
        self.external_id = external_id or _default_external_id(name)
        self.code_commit: str = git["commit"] if git else ""
        self.code_repository: str = git["repository"][:REPOSITORY_MAX] if git else ""
        self.entry_point = entry_point if entry_point is not None else _entry_point(git["root"] if git else None)
        self.environment = captured
        self.input_dataset_versions = sorted({*datasets, *map(int, input_dataset_versions)})
        self.input_artifact_versions = sorted({*artifacts, *map(int, input_artifact_versions)})
        self.params: dict[str, Any] = dict(params or {})
        self.started_at = _now()
        #: The server's record of the run once sent (None before).
        self.record: dict[str, Any] | None = None
        #: Metrics logged and not yet sent.
        self.pending_metrics: dict[str, float] = {}
        #: The final status once the run is over, and why it failed or was cancelled.
        self.status: str | None = None
        self.failure: str | None = None
        #: Whether this process opened the run (and so finishes it), or attached to a run another one opened.
        self.owned = True

    @classmethod
    def attach(cls, client: Client, run_id: int) -> Run:
        """The running run `run_id`, opened by another process (`provenant run`), to log metrics and artifacts to.

        Nothing is captured (the opener did that) and parameters are fixed already; leaving its block sends the
        metrics kept and does not finish it. Raises RunStateError when the run has finished.
        """
        record = client.get(f"/runs/{int(run_id)}/")
        if record["status"] != "running":
            raise RunStateError(f"Run {record['external_id']!r} is {record['status']}: nothing more can be logged.")
        run = cls.__new__(cls)
        run.client = client
        run.project = record["project"]
        run.name = record["name"]
        run.external_id = record["external_id"]
        run.code_commit = record["code_commit"] or ""
        run.code_repository = record["code_repository"]
        run.entry_point = record["entry_point"]
        run.environment = record["environment"]
        run.input_dataset_versions = record["input_dataset_versions"]
        run.input_artifact_versions = record["input_artifact_versions"]
        run.params = record["parameters"]
        run.started_at = record["started_at"]
        run.record = record
        run.pending_metrics = {}
        run.status = None
        run.failure = None
        run.owned = False
        return run

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        if self.status is not None:  # finished inside the block by `finish()`
            return False
        if not self.owned:
            if self.pending_metrics:
                self.flush()
            return False
        if error is None or (isinstance(error, SystemExit) and error.code in (None, 0)):
            self.finish("completed")
            return False
        status = "cancelled" if isinstance(error, KeyboardInterrupt) else "failed"
        try:
            self.finish(status, failure=type(error).__name__)
        except ProvenantError as finishing:
            # The block's own exception is what the caller must see; not recording its end is secondary.
            warnings.warn(f"Run {self.external_id!r} could not be finished as {status}: {finishing}", stacklevel=2)
        return False

    @property
    def id(self) -> int:
        """The run's id on the server, sending the run first if it was not yet."""
        return int(self._ensure_sent()["id"])

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Add parameters (JSON values). The server fixes them when the run is sent, so this must come before."""
        self._check_open()
        if self.record is not None:
            raise RunStateError(
                f"Run {self.external_id!r} was already sent (by log_artifact, flush or its id), and the server fixes "
                "a run's parameters when it is created: log parameters before, or pass params= to start_run."
            )
        self.params.update(params)

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Keep metrics (finite numbers; a name logged again keeps its last value) for `flush()` or the end."""
        self._check_open()
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"Metric {key!r} must be a finite number, not {value!r}.")
        self.pending_metrics.update(metrics)

    def flush(self) -> None:
        """Send the run if it was not yet (so it shows as running), and the metrics kept so far."""
        self._check_open()
        if self.record is None:
            self._ensure_sent()
        elif self.pending_metrics:
            self.record = self.client.request("PATCH", self._path(), json={"metrics": self.pending_metrics}).json()
            self.pending_metrics = {}

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        kind: str = "model",
        metadata: dict[str, Any] | None = None,
        media_type: str | None = None,
    ) -> PushResult:
        """Push the file as the next version of artifact `name` (default: the file's name without its suffix) in
        the run's project, produced by this run; the artifact is created as `kind` if the project has none."""
        self._check_open()
        artifact = name if name is not None else Path(path).stem
        return self.client.push(
            path,
            project=self.project,
            artifact=artifact,
            run=self.id,
            metadata=metadata,
            media_type=media_type,
            kind=kind,
        )

    def finish(self, status: str = "completed", *, failure: str | None = None) -> dict[str, Any]:
        """End the run with `status` (completed, failed, cancelled) and the metrics kept; it is frozen from then on.

        `failure` says why a failed or cancelled run ended (an exception's type, an exit status): the run's
        `failure_reason` on the server, cut to the server's 1000 characters.
        """
        self._check_open()
        if failure and status not in ("failed", "cancelled"):
            raise ValueError(f"A failure reason goes with a failed or cancelled status, not {status!r}.")
        reason = (failure or "")[:FAILURE_REASON_MAX]
        if self.record is None:
            body = self._creation(status=status, metrics=self.pending_metrics, ended_at=_now())
            if reason:
                body["failure_reason"] = reason
            self.record = self._create(body)
        else:
            body = {"status": status, "ended_at": _now()}
            if self.pending_metrics:
                body["metrics"] = self.pending_metrics
            if reason:
                body["failure_reason"] = reason
            self.record = self.client.request("PATCH", self._path(), json=body).json()
        self.pending_metrics = {}
        self.status = status
        self.failure = failure
        return self.record

    def _ensure_sent(self) -> dict[str, Any]:
        if self.record is None:
            self._check_open()
            self.record = self._create(self._creation(status="running", metrics=self.pending_metrics))
            self.pending_metrics = {}
        return self.record

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST the run. A POST is not repeated blindly (see `client`), so when its answer was lost the run is
        looked up by its external id: found, it is this run (created once); not found, it is sent again. A Conflict
        on the external id (a repeat that met the first) is also this run when the one found matches it."""
        try:
            return self.client.post("/runs/", body)
        except Conflict:
            existing = self._existing(body)
            if existing is None:
                raise
            return existing
        except ServerError as lost:
            if lost.code != "outcome_unknown":
                raise
            existing = self._existing(body)
            return existing if existing is not None else self.client.post("/runs/", body)

    def _existing(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """The project's run with this run's external id, when it is this one (same start, commit and entry point):
        an external id given twice by two scripts is not taken for the other's run."""
        found = self.client.get("/runs/", project=self.project, external_id=self.external_id)["results"]
        for record in found:
            same = (
                record.get("external_id") == self.external_id
                and _instant(record.get("started_at")) == _instant(body.get("started_at"))
                and (record.get("code_commit") or "") == (body.get("code_commit") or "")
                and (record.get("entry_point") or "") == (body.get("entry_point") or "")
            )
            if same:
                return record
        return None

    def _creation(self, *, status: str, metrics: Mapping[str, float], ended_at: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "project": self.project,
            "external_id": self.external_id,
            "name": self.name,
            "status": status,
            "code_repository": self.code_repository,
            "code_commit": self.code_commit,
            "entry_point": self.entry_point,
            "parameters": self.params,
            "metrics": dict(metrics),
            "environment": self.environment,
            "started_at": self.started_at,
            "input_dataset_versions": self.input_dataset_versions,
            "input_artifact_versions": self.input_artifact_versions,
        }
        if ended_at is not None:
            body["ended_at"] = ended_at
        return body

    def _path(self) -> str:
        return f"/runs/{self.id}/"

    def _check_open(self) -> None:
        if self.status is not None:
            raise RunStateError(f"Run {self.external_id!r} is {self.status}: a finished run is frozen on the server.")

    def __repr__(self) -> str:
        sent = f"id={self.record['id']}" if self.record else "not sent"
        return f"Run({self.project!r}, {self.external_id!r}, {sent}, status={self.status or 'open'!r})"
