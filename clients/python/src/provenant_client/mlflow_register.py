"""Register a model version in Provenant straight from a finished MLflow run (`provenant register --mlflow-run`),
so the governed path (promotion request, gates, approvals) starts from what the data scientist already logged.

Which artifact version is "the model". A Provenant model version points to exactly one artifact version: one digest
that reviewers approve and deployments pull, and one producing run whose parameters, metrics, commit and datasets the
gates read. An MLflow model is a directory (MLmodel, weights, environment files), so:

- `--path` naming one file (`model/model.pkl`, `weights.bin`) registers that file's artifact version;
- `--path` naming a directory (the default `model`: a model logged under that name, or a folder of the run's
  artifacts) registers a *model manifest*: a small JSON file listing every file of the directory with its path,
  digest and size, pushed as a version of its own `model` artifact. Its digest therefore pins every byte of the
  directory (change one weight and it is another manifest, another model version), while each file stays its own
  content-addressed version (no byte is stored twice). The manifest and the files are outputs of the same Provenant
  run (`external_id` `mlflow:<run_id>`), so the lineage of the model version leads to the run and its inputs;
  the manifest's metadata names the files' versions (`mlflow.files`). Registering the same directory again
  pushes the same bytes and answers the same model version.

Where the files come from. In MLflow 3 a model logged with `log_model(name="model")` lives under its logged model's
root (`models/<model_id>/artifacts`), not under the run's: a path's first segment naming a model logged by the run
is read there, else the path is read under the run's own artifacts. When that root is a `provenant://` location on
this server, its files are already versions (the plugin's index, metadata `mlflow.root`/`mlflow.path`); otherwise
(another artifact store) they are downloaded with MLflow's client and pushed first, named and described exactly as
the plugin would have published them under `provenant://server/<project>`.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from provenant_client import mlflow_plugin
from provenant_client.client import Client
from provenant_client.errors import Conflict

__all__ = ["MANIFEST_FORMAT", "MlflowSourceError", "Registration", "register_from_mlflow"]

MANIFEST_FORMAT = "provenant.mlflow-model-manifest/1"
DEFAULT_PATH = "model"


class MlflowSourceError(ValueError):
    """What the MLflow side cannot give: an unknown run, a path the run did not log, an unreadable server.
    A ValueError, so the command line prints it as an error (exit 1), not a traceback."""


@dataclass
class Registration:
    """What registering from an MLflow run did: the model version, the artifact version it points to, the run's
    files as versions (path under the registered path -> version record), and how many were pushed now."""

    model_version: dict[str, Any]
    artifact_version: dict[str, Any]
    run: dict[str, Any]
    source: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    pushed: int = 0
    manifest: bool = False

    def document(self) -> dict[str, Any]:
        """The model version's record with where it came from, as `provenant register --json` prints it."""
        return {
            **self.model_version,
            "mlflow": {
                "source": self.source,
                "manifest": self.manifest,
                "files": {file_path: int(record["id"]) for file_path, record in self.files.items()},
                "copied": self.pushed,
                "run": self.run["id"],
            },
        }


@dataclass(frozen=True)
class _Root:
    """An MLflow artifact root holding the path asked for: its URI, the path under it, and whose it is."""

    uri: str
    inside: str
    run_id: str
    model_id: str | None = None

    @property
    def plugin_root(self) -> str:
        """The root as the plugin names it under `provenant://server/<project>` (see mlflow_plugin)."""
        return f"models/{self.model_id}/artifacts" if self.model_id else f"{self.run_id}/artifacts"


def register_from_mlflow(
    client: Client,
    *,
    run_id: str,
    model: str,
    project: str | None = None,
    path: str = DEFAULT_PATH,
    tracking_uri: str | None = None,
) -> Registration:
    """Register what MLflow run `run_id` logged at `path` as the next version of the model `model` (registered if
    the project has none). `project` is required when the run's files are not already in Provenant; when they are,
    it must be theirs. Raises MlflowSourceError for an unknown run or path, ProvenantError for a server refusal."""
    tracking = tracking_uri or mlflow.get_tracking_uri()
    mlflow_client = MlflowClient(tracking_uri=tracking)
    run = _read_run(mlflow_client, run_id, tracking)
    root = _find_root(client, mlflow_client, run, _relative(path))
    described = f"{root.uri.rstrip('/')}/{root.inside}".rstrip("/")
    if urlsplit(root.uri).scheme in mlflow_plugin.SCHEMES:
        project, files = _published_files(client, root, project)
        pushed = 0
    else:
        if project is None:
            raise MlflowSourceError(
                f"MLflow run {run_id} keeps its artifacts outside Provenant ({root.uri}): name the Provenant project "
                "to copy them into with --project (project= in Python)."
            )
        files, pushed = _copy_files(client, root, project, tracking)
    provenant_run = _provenant_run(client, project, run_id, tracking)
    if root.inside in files:  # one file: that file is the model
        version, manifest = files[root.inside], False
        files = {posixpath.basename(root.inside): version}
    else:
        files = {posixpath.relpath(file_path, root.inside or "."): record for file_path, record in files.items()}
        version, manifest = _push_manifest(client, root, project, files, provenant_run, described), True
    registered = client.register(version, model=model, project=project)
    return Registration(registered, version, provenant_run, described, files, pushed, manifest)


def _relative(path: str) -> str:
    try:
        return mlflow_plugin._relative(path)
    except MlflowException as error:
        raise MlflowSourceError(error.message) from None


def _read_run(mlflow_client: MlflowClient, run_id: str, tracking: str) -> Run:
    try:
        return mlflow_client.get_run(run_id)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise MlflowSourceError(
                f"No MLflow run {run_id!r} on the tracking server {tracking}: check the run id (the MLflow UI or "
                "`mlflow runs list --experiment-id ...` shows it) and --tracking-uri / MLFLOW_TRACKING_URI."
            ) from None
        raise MlflowSourceError(f"The MLflow tracking server {tracking} could not be read: {error.message}") from None


def _find_root(client: Client, mlflow_client: MlflowClient, run: Run, path: str) -> _Root:
    """The root holding `path`: the run's logged model named by its first segment (MLflow 3), else the run's own
    artifacts; MlflowSourceError naming what the run has when neither holds it."""
    run_id = run.info.run_id
    models = mlflow_client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    head, _, rest = path.partition("/")
    named = [candidate for candidate in models if candidate.name == head]
    if named:
        newest = max(named, key=lambda candidate: candidate.creation_timestamp or 0)
        root = _Root(newest.artifact_location, rest, run_id, newest.model_id)
    else:
        root = _Root(run.info.artifact_uri, path, run_id)
    if not _holds(client, root):
        top = sorted({file_path.split("/")[0] for file_path in _listing(client, run.info.artifact_uri)})
        raise MlflowSourceError(
            f"MLflow run {run_id} logged nothing at {path!r}: its logged models are "
            f"{sorted({item.name for item in models}) or 'none'}, its artifacts {top or 'none'}. Name one with "
            "--path (a logged model's name, a folder or one file)."
        )
    return root


def _listing(client: Client, uri: str) -> list[str]:
    """The paths at the top of an artifact root (every file's path for a `provenant://` root, read with this
    command's own credentials rather than the plugin's)."""
    if urlsplit(uri).scheme in mlflow_plugin.SCHEMES:
        return sorted(_plugin_index(client, _provenant_location(client, uri)))
    return sorted(item.path for item in get_artifact_repository(uri).list_artifacts())


def _provenant_location(client: Client, uri: str) -> mlflow_plugin.Location:
    """A `provenant://` root, which must be on the server this client talks to."""
    location = mlflow_plugin.parse_uri(uri)
    if urlsplit(location.server).netloc != urlsplit(client.server).netloc:
        raise MlflowSourceError(
            f"The MLflow run keeps its artifacts on another Provenant server ({location.server}) than this command "
            f"talks to ({client.server}): register it there (--url)."
        )
    return location


def _holds(client: Client, root: _Root) -> bool:
    if urlsplit(root.uri).scheme in mlflow_plugin.SCHEMES:
        return any(_under(file_path, root.inside) for file_path in _listing(client, root.uri))
    repository = get_artifact_repository(root.uri)
    if not root.inside:
        return bool(repository.list_artifacts())
    parent = posixpath.dirname(root.inside) or None
    return any(item.path.rstrip("/") == root.inside for item in repository.list_artifacts(parent))


def _plugin_index(client: Client, location: mlflow_plugin.Location) -> dict[str, dict[str, Any]]:
    """The newest version of each MLflow path the plugin published under a root (its metadata index)."""
    newest: dict[str, dict[str, Any]] = {}
    for version in client.iterate(
        "/artifact-versions/", project=location.project, metadata=f"mlflow.root:{json.dumps(location.root)}"
    ):
        file_path = version["metadata"].get("mlflow", {}).get("path")
        if file_path and (file_path not in newest or version["id"] > newest[file_path]["id"]):
            newest[file_path] = version
    return newest


def _under(file_path: str, inside: str) -> bool:
    return not inside or file_path == inside or file_path.startswith(f"{inside}/")


def _published_files(client: Client, root: _Root, project: str | None) -> tuple[str, dict[str, dict[str, Any]]]:
    """The project and the versions (path -> newest version) the plugin published under a `provenant://` root."""
    location = _provenant_location(client, root.uri)
    if project is not None and project != location.project:
        raise MlflowSourceError(
            f"MLflow run {root.run_id} keeps its artifacts in Provenant project {location.project!r}, not "
            f"{project!r}: a model version is registered in its artifact's project; leave out --project."
        )
    newest = {
        file_path: version
        for file_path, version in _plugin_index(client, location).items()
        if _under(file_path, root.inside)
    }
    return location.project, newest


def _copy_files(client: Client, root: _Root, project: str, tracking: str) -> tuple[dict[str, dict[str, Any]], int]:
    """Download the files under the root's path with MLflow's client and push each, as the plugin would have
    published it under `provenant://server/<project>`; (path -> version, how many were not held before)."""
    location = mlflow_plugin.Location(
        server=client.server, project=project, root=root.plugin_root, run_id=None if root.model_id else root.run_id,
        model_id=root.model_id,
    )  # fmt: skip
    provenant_run = _provenant_run(client, project, root.run_id, tracking)
    versions: dict[str, dict[str, Any]] = {}
    pushed = 0
    with tempfile.TemporaryDirectory(prefix="provenant-mlflow-") as scratch:
        source = f"{root.uri.rstrip('/')}/{root.inside}" if root.inside else root.uri
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=scratch, tracking_uri=tracking))
        if local.is_file():
            local_files = [(root.inside, local)]
        else:
            local_files = [
                (posixpath.join(root.inside, file.relative_to(local).as_posix()) if root.inside else
                 file.relative_to(local).as_posix(), file)
                for file in sorted(local.rglob("*")) if file.is_file()
            ]  # fmt: skip
        for file_path, local_file in local_files:
            metadata = {
                "mlflow": {
                    "root": location.root,
                    "path": file_path,
                    "artifact_uri": f"{root.uri.rstrip('/')}/{file_path}",
                    "copied_by": "provenant register --mlflow-run",
                    "run_id": root.run_id,
                    **({"model_id": root.model_id} if root.model_id else {}),
                }
            }
            result = client.push(
                local_file,
                project=project,
                artifact=mlflow_plugin.artifact_name(location, file_path),
                run=int(provenant_run["id"]),
                metadata=metadata,
                kind="model" if root.model_id else "other",
            )
            pushed += 0 if result.already_held else 1
            versions[file_path] = result.version
    return versions, pushed


def _provenant_run(client: Client, project: str, run_id: str, tracking: str) -> dict[str, Any]:
    """The Provenant run of MLflow run `run_id` (external id `mlflow:<run_id>`), created as the plugin creates it
    when no file of the run was published before."""
    found = client.get("/runs/", project=project, external_id=f"mlflow:{run_id}")["results"]
    if found:
        return found[0]
    location = mlflow_plugin.Location(server=client.server, project=project, root="")
    try:
        return client.post("/runs/", mlflow_plugin._run_creation(location, run_id, tracking))
    except Conflict:  # created meanwhile by a training process logging to the same run
        return client.get("/runs/", project=project, external_id=f"mlflow:{run_id}")["results"][0]


def _push_manifest(
    client: Client,
    root: _Root,
    project: str,
    files: dict[str, dict[str, Any]],
    provenant_run: dict[str, Any],
    described: str,
    registered: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Push the directory's manifest (deterministic bytes: the same files give the same digest) as a `model`
    artifact version of the run, and return it.

    `registered` (the importer's) is what MLflow's registry said of the version (model, number, description, tags,
    stage, aliases): written into the manifest and its metadata, so each imported version is a manifest of its own
    that keeps those facts, while the files stay shared."""
    document = {
        "format": MANIFEST_FORMAT,
        "mlflow": {"run_id": root.run_id, **({"model_id": root.model_id} if root.model_id else {})},
        "path": root.inside,
        "files": [
            {"path": file_path, "digest": record["digest"], "size": int(record["size"])}
            for file_path, record in sorted(files.items())
        ],
        **({"registered": registered} if registered is not None else {}),
    }
    location = mlflow_plugin.Location(
        server=client.server, project=project, root=root.plugin_root, run_id=None if root.model_id else root.run_id,
        model_id=root.model_id,
    )  # fmt: skip
    metadata = {
        "mlflow": {
            "manifest": True,
            "artifact_uri": described,
            "run_id": root.run_id,
            **({"model_id": root.model_id} if root.model_id else {}),
            "files": {file_path: int(record["id"]) for file_path, record in sorted(files.items())},
            **(registered or {}),
        }
    }
    with tempfile.TemporaryDirectory(prefix="provenant-mlflow-") as scratch:
        manifest = Path(scratch) / "mlflow-model-manifest.json"
        manifest.write_bytes(json.dumps(document, sort_keys=True, indent=1).encode() + b"\n")
        result = client.push(
            manifest,
            project=project,
            artifact=mlflow_plugin.artifact_name(location, f"{root.inside or 'model'}.manifest"),
            run=int(provenant_run["id"]),
            metadata=metadata,
            media_type="application/json",
            kind="model",
        )
    return result.version


def describe(registration: Registration) -> str:
    """One line for a person: which model version, from what, and what was copied."""
    version = registration.model_version
    what = f"a manifest of {len(registration.files)} file(s)" if registration.manifest else "one file"
    copied = f", {registration.pushed} file(s) copied into Provenant" if registration.pushed else ""
    return (
        f"model version {version['id']}: {version['model_name']} v{version['number']} ({version['stage']}), "
        f"artifact version {registration.artifact_version['id']} ({what} from {registration.source}{copied})"
    )
