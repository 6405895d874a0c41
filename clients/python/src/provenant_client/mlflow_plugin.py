"""MLflow artifact repository for `provenant://` locations: training code keeps `mlflow.log_artifact(s)`,
`mlflow.<flavor>.log_model`, `list_artifacts` and `download_artifacts`, and every byte lands in Provenant.

Installed with the client's `[mlflow]` extra, the plugin is registered through MLflow's `mlflow.artifact_repository`
entry points for three schemes; set an experiment's artifact location to one of them:

- `provenant://host[:port]/project-slug[/prefix]`: the server over HTTPS, or over what `PROVENANT_URL` says when
  that URL names the same host and port (so a profile or environment can keep a server on plain HTTP or under a
  path prefix);
- `provenant+https://...` and `provenant+http://...`: the scheme said in the URI itself (`+http` for loopback).

Credentials are the client's: `PROVENANT_TOKEN`, else the profile whose URL is this server's (`provenant login`).

What maps to what. MLflow gives each run the root `<location>/<run_id>/artifacts` and each logged model (MLflow 3)
`<location>/models/<model_id>/artifacts`. Each file under a root is pushed with `Client.push` (content-addressed:
bytes the project already holds are not sent again) and published as a version of one Provenant artifact per MLflow
path, named deterministically (`mlflow-<owner>-<path>-<hash>`, see `artifact_name`), of kind `model` under a logged
model and `other` elsewhere. The version's metadata (`mlflow.root`, `mlflow.path`) is the listable index that
`list_artifacts` reads (the newest version of a path wins, as a file written again does in MLflow).

Runs. Each version names the Provenant run whose `external_id` is `mlflow:<run_id>` (a logged model's source run),
created on the run's first logged file from what the tracking server says (`MlflowClient.get_run`): parameters,
latest metrics, the git commit and repository tags, the entry point, and the tags and input datasets
(`mlflow.log_input`) under `environment["mlflow"]`. A Provenant run fixes its parameters when created and freezes
once finished, so: parameters logged after the run's first file are not in Provenant; metrics are sent again on each
later log call and when the process exits; the run is finished (completed, failed, cancelled) with the MLflow run's
end as soon as a log call or the process's exit sees MLflow's run ended. When the tracking server cannot be
reached, the run is created with only its id and `environment["mlflow"]["unreachable"]` saying why (best effort:
the files are published all the same).

Deleting through MLflow (`delete_artifacts`, `mlflow gc`) is refused: published bytes are immutable in Provenant,
and their removal is the lifecycle rules' decision, not a tracking client's.
"""

from __future__ import annotations

import atexit
import datetime
import hashlib
import json
import logging
import math
import mimetypes
import os
import posixpath
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mlflow.entities import FileInfo
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_STATE,
    PERMISSION_DENIED,
    RESOURCE_DOES_NOT_EXIST,
    UNAUTHENTICATED,
)
from mlflow.store.artifact.artifact_repo import ArtifactRepository

from provenant_client.client import Client, PushResult
from provenant_client.errors import Conflict, ProvenantError
from provenant_client.runs import strip_credentials

__all__ = [
    "SCHEMES",
    "Location",
    "ProvenantArtifactRepository",
    "artifact_name",
    "parse_uri",
    "register_schemes",
    "run_creation_body",
]

_logger = logging.getLogger(__name__)

# MLflow's tracking client and artifact-repository registry are imported inside the functions that use them: MLflow's
# registry loads this module through its entry points while it is itself being imported, so importing either here
# would read a half-initialised module.

#: URI scheme -> the HTTP scheme it means when PROVENANT_URL does not name the same server.
SCHEMES = {"provenant": "https", "provenant+https": "https", "provenant+http": "http"}
#: The server's limits: artifact names (name_validator), run text fields (RunCreateRequest).
NAME_MAX = 128
ENTRY_POINT_MAX = 500
REPOSITORY_MAX = 500
RUN_ID_SHAPE = re.compile(r"^[0-9a-f]{32}$")
COMMIT_SHAPE = re.compile(r"^[0-9a-f]{7,64}$")
MEDIA_TYPE_SHAPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
#: MLflow run statuses -> Provenant's (SCHEDULED and RUNNING are both "running").
FINISHED_STATUSES = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "cancelled"}


@dataclass(frozen=True)
class Location:
    """Where a `provenant://` URI points: the server, the project, and the root (the URI's path under the project,
    e.g. `<run_id>/artifacts`) with the MLflow run or logged model it belongs to, when its shape says so."""

    server: str
    project: str
    root: str
    run_id: str | None = None
    model_id: str | None = None


def parse_uri(uri: str) -> Location:
    """Read a `provenant[+http|+https]://host[:port]/project[/...]` URI; MlflowException when it is not one."""
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES or not parts.netloc:
        raise MlflowException(
            f"{uri!r} is not a Provenant location: use provenant://host[:port]/project-slug (provenant+http:// for a "
            "server on plain HTTP)."
        )
    segments = [segment for segment in parts.path.split("/") if segment]
    if not segments:
        raise MlflowException(f"{uri!r} names no project: use provenant://{parts.netloc}/project-slug.")
    project, rest = segments[0], segments[1:]
    configured = os.environ.get("PROVENANT_URL", "").rstrip("/")
    if configured and urlsplit(configured).netloc == parts.netloc:
        server = configured
    else:
        server = f"{SCHEMES[parts.scheme]}://{parts.netloc}"
    run_id = model_id = None
    if len(rest) >= 2 and rest[-1] == "artifacts" and RUN_ID_SHAPE.match(rest[-2]):
        run_id = rest[-2]
    elif len(rest) >= 3 and rest[-1] == "artifacts" and rest[-3] == "models":
        model_id = rest[-2]
    return Location(server=server, project=project, root="/".join(rest), run_id=run_id, model_id=model_id)


def artifact_name(location: Location, path: str) -> str:
    """The Provenant artifact that holds the MLflow file `path` under `location`: readable (the owner's id and the
    path's safe characters) and unique (a hash of root and path), within the server's 128 characters."""
    owner = location.run_id[:8] if location.run_id else (location.model_id or "root")[:14]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", path)
    readable = re.sub(r"\.{2,}", ".", readable).strip("-.") or "file"
    tag = hashlib.sha256(f"{location.root}\n{path}".encode()).hexdigest()[:12]
    prefix = f"mlflow-{owner}-"
    room = NAME_MAX - len(prefix) - len(tag) - 1
    return f"{prefix}{readable[-room:].lstrip('-.')}-{tag}"


def _relative(path: str | None) -> str:
    """An MLflow artifact path as the index keeps it: POSIX, no leading or trailing slash, never climbing out."""
    cleaned = posixpath.normpath((path or "").replace("\\", "/")).strip("/")
    if cleaned in ("", "."):
        return ""
    if cleaned == ".." or cleaned.startswith("../"):
        raise MlflowException(f"Artifact path {path!r} climbs out of the run's artifacts.")
    return cleaned


#: Provenant's refusals -> MLflow's error codes, so a tracking server serving its UI from Provenant answers the
#: browser the same 4xx (MlflowException.get_http_status_code) rather than a 500; anything else is INTERNAL_ERROR.
_ERROR_CODES = {401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: RESOURCE_DOES_NOT_EXIST}


@contextmanager
def _as_mlflow_errors(action: str, server: str) -> Iterator[None]:
    """A Provenant refusal as the MlflowException that MLflow's callers handle, with the server's own words; a
    refused token says whose it is: this process's, which for a tracking server is the server's, not its user's."""
    try:
        yield
    except ProvenantError as error:
        code = _ERROR_CODES.get(error.status or 0, INTERNAL_ERROR)
        message = f"Provenant refused to {action}: {error}"
        if error.status in (401, 403):
            message += (
                f" (the token is this process's: PROVENANT_TOKEN, else the `provenant login` profile for {server};"
                " it needs a role in the project that allows this)"
            )
        raise MlflowException(message, error_code=code) from error


# Connections and runs shared by every repository of the process ---------------------------------------------------

_lock = threading.RLock()
_clients: dict[str, Client] = {}
#: (server, project, MLflow run id) -> the Provenant run's record, for the runs this process logged to.
_runs: dict[tuple[str, str, str], dict[str, Any]] = {}


def client_for(server: str) -> Client:
    """One client per server for the process (its connections and cache are shared by every repository)."""
    with _lock:
        if server not in _clients:
            _clients[server] = Client(server)
        return _clients[server]


def _iso(milliseconds: int | None) -> str | None:
    if milliseconds is None:
        return None
    return datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.timezone.utc).isoformat()


def _finite_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """MLflow takes NaN and infinities; Provenant's metrics are numbers promotion gates can compare, so not those."""
    return {key: value for key, value in metrics.items() if math.isfinite(value)}


def _mlflow_run(tracking_uri: str | None, run_id: str) -> Any:
    """The run as the tracking server holds it now (MlflowClient.get_run)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri).get_run(run_id)


def _run_creation(location: Location, run_id: str, tracking_uri: str | None) -> dict[str, Any]:
    """The Provenant run for MLflow run `run_id`, from what the tracking server says (or only its id when it
    cannot be reached)."""
    try:
        run = _mlflow_run(tracking_uri, run_id)
    except Exception as error:
        _logger.warning("MLflow run %s could not be read (%s): its Provenant run carries only its id.", run_id, error)
        unreachable = f"{type(error).__name__}: {error}"[:1000]
        return {
            "project": location.project,
            "external_id": f"mlflow:{run_id}",
            "environment": {"mlflow": {"run_id": run_id, "unreachable": unreachable}},
        }
    return run_creation_body(location.project, run)


def run_creation_body(project: str, run: Any) -> dict[str, Any]:
    """What creates the Provenant run of an MLflow run (a `mlflow.entities.Run`) in `project`: its name, parameters,
    latest metrics, git commit and repository, entry point, start (and end, once finished), and its tags and input
    datasets under `environment["mlflow"]`. The importer (mlflow_import) sends the same."""
    run_id = run.info.run_id
    tags = dict(run.data.tags)
    commit = tags.get("mlflow.source.git.commit", "")
    described: dict[str, Any] = {
        "run_id": run_id,
        "experiment_id": run.info.experiment_id,
        "run_name": run.info.run_name,
        "user_id": run.info.user_id,
        "tags": tags,
        "inputs": [
            {
                "name": item.dataset.name,
                "digest": item.dataset.digest,
                "source_type": item.dataset.source_type,
                "source": item.dataset.source,
                "context": {tag.key: tag.value for tag in item.tags},
            }
            for item in (run.inputs.dataset_inputs if run.inputs else [])
        ],
    }
    body: dict[str, Any] = {
        "project": project,
        "external_id": f"mlflow:{run_id}",
        "name": (run.info.run_name or "")[:200],
        "code_commit": commit if COMMIT_SHAPE.match(commit) else "",
        "code_repository": strip_credentials(tags.get("mlflow.source.git.repoURL", ""))[:REPOSITORY_MAX],
        "entry_point": tags.get("mlflow.source.name", "")[-ENTRY_POINT_MAX:],
        "parameters": dict(run.data.params),
        "metrics": _finite_metrics(dict(run.data.metrics)),
        "environment": {"mlflow": described},
        "started_at": _iso(run.info.start_time),
    }
    status = FINISHED_STATUSES.get(run.info.status)
    if status is not None:
        body.update(status=status, ended_at=_iso(run.info.end_time) or body["started_at"])
    return body


def _refresh(client: Client, record: dict[str, Any], tracking_uri: str | None) -> dict[str, Any]:
    """Send a running Provenant run the MLflow run's latest metrics, and its end once MLflow says it ended."""
    if record["status"] != "running":
        return record  # frozen on the server
    run_id = record["external_id"].split(":", 1)[1]
    try:
        run = _mlflow_run(tracking_uri, run_id)
    except Exception as error:
        _logger.warning("MLflow run %s could not be read (%s): its Provenant run is not updated.", run_id, error)
        return record
    patch: dict[str, Any] = {"metrics": _finite_metrics(dict(run.data.metrics))}
    status = FINISHED_STATUSES.get(run.info.status)
    if status is not None:
        patch.update(status=status, ended_at=_iso(run.info.end_time) or record["started_at"])
    return client.request("PATCH", f"/runs/{record['id']}/", json=patch).json()


def _find_run(client: Client, project: str, run_id: str) -> dict[str, Any] | None:
    found = client.get("/runs/", project=project, external_id=f"mlflow:{run_id}")["results"]
    return found[0] if found else None


def provenant_run(location: Location, run_id: str, tracking_uri: str | None) -> dict[str, Any]:
    """The Provenant run of MLflow run `run_id` (found by its external id, else created), brought up to date."""
    client = client_for(location.server)
    key = (location.server, location.project, run_id)
    with _lock:
        record = _runs.get(key)
        if record is None:
            record = _find_run(client, location.project, run_id)
            if record is None:
                try:
                    record = client.post("/runs/", _run_creation(location, run_id, tracking_uri))
                except Conflict:  # created meanwhile by another process logging to the same MLflow run
                    record = _find_run(client, location.project, run_id)
                    if record is None:
                        raise
                else:
                    _runs[key] = record
                    return record
        record = _refresh(client, record, tracking_uri)
        _runs[key] = record
        return record


def _finish_runs_at_exit(tracking_uri_of: dict[tuple[str, str, str], str | None]) -> None:
    """At the process's exit, end the MLflow run left active (as MLflow's own exit hook would, a moment later:
    Python runs exit hooks newest first, and MLflow's was registered before this one), then send each run this
    process logged to its final metrics and end."""
    with suppress(Exception):
        import mlflow  # loaded long before exit; see the note on imports above

        active = mlflow.active_run()
        if active is not None and any(key[2] == active.info.run_id for key in _runs):
            mlflow.end_run()
    for key, record in list(_runs.items()):
        with suppress(Exception):
            _runs[key] = _refresh(client_for(key[0]), record, tracking_uri_of.get(key))
    for client in list(_clients.values()):
        with suppress(Exception):
            client.close()


_tracking_uris: dict[tuple[str, str, str], str | None] = {}
atexit.register(_finish_runs_at_exit, _tracking_uris)


# The repository ---------------------------------------------------------------------------------------------------


class ProvenantArtifactRepository(ArtifactRepository):
    """MLflow's artifact repository for one `provenant://` root (a run's, a logged model's, or any path)."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        super().__init__(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
        self.location = parse_uri(artifact_uri)
        self.client = client_for(self.location.server)
        #: What this repository pushed, in order (digest, bytes sent, whether the project held the bytes already).
        self.pushed: list[PushResult] = []
        self._index: dict[str, dict[str, Any]] = {}

    # Logging ------------------------------------------------------------------------------------------------------

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
        path = _relative(posixpath.join(_relative(artifact_path), os.path.basename(local_file)))
        run = self._run_id()
        self._publish(local_file, path, run)

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> None:
        base = _relative(artifact_path)
        run = self._run_id()
        for folder, subfolders, files in os.walk(local_dir):
            subfolders.sort()
            for file_name in sorted(files):
                local_file = os.path.join(folder, file_name)
                relative = os.path.relpath(local_file, local_dir).replace(os.sep, "/")
                self._publish(local_file, _relative(posixpath.join(base, relative)), run)

    def _run_id(self) -> int | None:
        """The Provenant run the files of this root are outputs of: the MLflow run's, or a logged model's source
        run's; None for a root that belongs to neither."""
        run_id = self.location.run_id
        if run_id is None and self.location.model_id is not None:
            with suppress(Exception):  # best effort: a model whose run cannot be read is published without one
                from mlflow.tracking import MlflowClient

                run_id = MlflowClient(tracking_uri=self.tracking_uri).get_logged_model(self.location.model_id)
                run_id = run_id.source_run_id
        if not run_id:
            return None
        key = (self.location.server, self.location.project, run_id)
        _tracking_uris[key] = self.tracking_uri
        with _as_mlflow_errors(f"record MLflow run {run_id}", self.location.server):
            return int(provenant_run(self.location, run_id, self.tracking_uri)["id"])

    def _publish(self, local_file: str, path: str, run: int | None) -> None:
        if not path:
            raise MlflowException(f"{local_file!r} would be logged at the artifact root itself; name a file.")
        guessed = mimetypes.guess_type(path)[0]
        metadata = {
            "mlflow": {
                "root": self.location.root,
                "path": path,
                "artifact_uri": self.artifact_uri,
                **({"run_id": self.location.run_id} if self.location.run_id else {}),
                **({"model_id": self.location.model_id} if self.location.model_id else {}),
            }
        }
        with _as_mlflow_errors(f"store {path!r}", self.location.server):
            result = self.client.push(
                local_file,
                project=self.location.project,
                artifact=artifact_name(self.location, path),
                run=run,
                metadata=metadata,
                media_type=guessed if guessed and MEDIA_TYPE_SHAPE.match(guessed) else None,
                kind="model" if self.location.model_id else "other",
            )
        self.pushed.append(result)
        self._index[path] = result.version

    # Reading ------------------------------------------------------------------------------------------------------

    def _versions(self) -> dict[str, dict[str, Any]]:
        """The newest version of each MLflow path under this root, read from the versions' metadata."""
        newest: dict[str, dict[str, Any]] = {}
        with _as_mlflow_errors(f"list {self.artifact_uri}", self.location.server):
            for version in self.client.iterate(
                "/artifact-versions/",
                project=self.location.project,
                metadata=f"mlflow.root:{json.dumps(self.location.root)}",
                page_size=500,
            ):
                path = version["metadata"].get("mlflow", {}).get("path")
                if path and (path not in newest or version["id"] > newest[path]["id"]):
                    newest[path] = version
        self._index = newest
        return newest

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        folder = _relative(path)
        versions = self._versions()
        if folder in versions:
            return []  # a file, as MLflow's contract says
        prefix = f"{folder}/" if folder else ""
        listed: dict[str, FileInfo] = {}
        for file_path, version in versions.items():
            if not file_path.startswith(prefix):
                continue
            child, _, deeper = file_path[len(prefix) :].partition("/")
            if deeper:
                listed[prefix + child] = FileInfo(prefix + child, True, None)
            else:
                listed[file_path] = FileInfo(file_path, False, int(version["size"]))
        return [listed[key] for key in sorted(listed)]

    def _download_file(self, remote_file_path: str, local_path: str) -> None:
        path = _relative(remote_file_path)
        version = self._index.get(path) or self._versions().get(path)
        if version is None:
            raise MlflowException(
                f"No artifact {path!r} under {self.artifact_uri}.", error_code=RESOURCE_DOES_NOT_EXIST
            )
        with _as_mlflow_errors(f"download {path!r}", self.location.server):
            self.client.pull(int(version["id"]), local_path)

    # Deleting -----------------------------------------------------------------------------------------------------

    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        where = posixpath.join(self.artifact_uri, _relative(artifact_path))
        raise MlflowException(
            f"Provenant does not delete {where}: published bytes are immutable, and other runs, models and audit "
            "records may name them. Nothing was deleted. Retire versions through Provenant's lifecycle rules "
            "instead; deleting the MLflow run itself (mlflow.delete_run) only hides it in MLflow.",
            error_code=INVALID_STATE,
        )


def register_schemes() -> None:
    """Register the repository for its schemes in this process's MLflow.

    An installed client does this through its `mlflow.artifact_repository` entry points, which MLflow loads on
    import; this is for a process that imports the client from a source folder rather than an installation.
    """
    from mlflow.store.artifact.artifact_repository_registry import (
        _artifact_repository_registry,
    )

    for scheme in SCHEMES:
        _artifact_repository_registry.register(scheme, ProvenantArtifactRepository)
