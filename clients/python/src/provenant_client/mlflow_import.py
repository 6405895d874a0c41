"""`provenant import mlflow`: bring an MLflow tracking server's history into one Provenant project.

What maps to what (the mapping is the artifact-repository plugin's, mlflow_plugin, so a run logged through the plugin
and the same run imported later are one Provenant run with the same artifacts):

- every experiment (all active ones, or those named by `--experiment`) -> the project named by `--project`. One
  project for all: creating projects takes the global `artifacts.add_project` permission, which contributors do not
  hold; the experiment's id and name stay on each run (`environment["mlflow"]`). For one project per experiment,
  run the import once per experiment with `--experiment NAME --project SLUG`.
- each run -> the Provenant run whose `external_id` is `mlflow:<run_id>`: name, parameters, latest metric values,
  status, start and end, git commit and repository, entry point, tags and the inputs `mlflow.log_input` recorded.
  The full series of every metric (step, timestamp, value) is published as the run's `metrics-history.json` once
  the run has ended; a run imported while it ran gets its end and final metrics from the first import after.
- each file under the run's artifacts, and under the models the run logged (MLflow 3 `log_model`) -> a version of
  the artifact `artifact_name` gives, pushed with `Client.push` (bytes the project holds are not sent again), with
  `metadata["mlflow"]` saying its root and path, as the plugin writes them.
- with `--registered-models`, each registered model -> a Provenant registered model (description; tags in its model
  card); each version -> a model version on a *manifest* (the JSON file `provenant register --mlflow-run` writes:
  every file of the version with its path, digest and size), whose files are the versions the run or logged-model
  import made (copied now when they were not: a version's files are never stored twice, nor archived into one
  blob); the manifest also keeps what MLflow's registry said of the version (number, description, tags, stage,
  aliases). Each alias -> the same alias, set as imported (the alias and its audit entry say from where). Each
  legacy stage (Staging, Production, Archived) -> the same stage, recorded in the stage history and the audit log
  as `imported` with where from, never as a promotion nobody approved: the server lets a maintainer of the project
  do it, and only until a promotion or rollback has moved the model in Provenant (from then on its stages are
  governed here). Run as a contributor, the stages are left and the summary says why.

Idempotent and resumable: runs are found by their external id, and a file whose path the project already holds
under the same root with the same size is skipped without being downloaded. Files are downloaded one at a time
with MLflow's own client into a temporary folder and removed once pushed, so memory and disk stay at one file.
An import stopped at any point (even SIGKILL) is completed by running it again: a half-sent upload resumes from
the client's upload state, a published file is skipped.

Progress goes to stderr, one line per run and per file; the summary (what was copied, what was skipped and why) is
returned for the command to print.
"""

from __future__ import annotations

import json
import math
import mimetypes
import posixpath
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from provenant_client import mlflow_plugin, mlflow_register
from provenant_client.client import Client
from provenant_client.errors import Conflict, NotFound, PermissionDenied, ProvenantError
from provenant_client.mlflow_plugin import (
    FINISHED_STATUSES,
    MEDIA_TYPE_SHAPE,
    SCHEMES,
    Location,
    artifact_name,
    run_creation_body,
)

__all__ = ["ImportSummary", "MlflowImporter"]

#: The file holding a run's full metric series, under its own root so no logged file can take its name.
HISTORY_FILE = "metrics-history.json"
#: A model version's source naming a logged model (MLflow 3's `log_model(..., registered_model_name=...)`).
LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]+)/?$")
#: Runs asked of the tracking server per page.
RUN_PAGE = 500


@dataclass
class ImportSummary:
    """What an import did, counted by outcome; `skipped` and `not_imported` say why."""

    experiments: list[str] = field(default_factory=list)
    runs_created: int = 0
    runs_found: int = 0
    runs_finished: int = 0
    files_copied: int = 0
    files_published_without_upload: int = 0
    bytes_sent: int = 0
    models_created: int = 0
    model_versions_created: int = 0
    aliases_set: int = 0
    stages_imported: int = 0
    skipped: Counter = field(default_factory=Counter)
    not_imported: list[str] = field(default_factory=list)

    @property
    def copied_anything(self) -> bool:
        return bool(
            self.runs_created
            or self.runs_finished
            or self.files_copied
            or self.files_published_without_upload
            or self.models_created
            or self.model_versions_created
            or self.aliases_set
            or self.stages_imported
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiments": self.experiments,
            "runs": {
                "created": self.runs_created,
                "already_imported": self.runs_found,
                "finished_since": self.runs_finished,
            },
            "files": {
                "copied": self.files_copied,
                "published_without_upload": self.files_published_without_upload,
                "bytes_sent": self.bytes_sent,
            },
            "registry": {
                "models_created": self.models_created,
                "model_versions_created": self.model_versions_created,
                "aliases_set": self.aliases_set,
                "stages_imported": self.stages_imported,
            },
            "skipped": dict(sorted(self.skipped.items())),
            "not_imported": self.not_imported,
            "copied_anything": self.copied_anything,
        }

    def text(self) -> str:
        lines = [
            f"experiments: {', '.join(self.experiments) or '(none)'}",
            f"runs: {self.runs_created} created, {self.runs_found} already imported "
            f"({self.runs_finished} of them ended since and brought to their end)",
            f"files: {self.files_copied} copied ({self.bytes_sent} bytes sent), "
            f"{self.files_published_without_upload} published without upload (the project held their bytes)",
        ]
        if self.models_created or self.model_versions_created or self.aliases_set or self.stages_imported:
            lines.append(
                f"registry: {self.models_created} models, {self.model_versions_created} model versions, "
                f"{self.aliases_set} aliases, {self.stages_imported} stages (imported, not approved in Provenant)"
            )
        lines += [f"skipped {count}: {reason}" for reason, count in sorted(self.skipped.items())]
        lines += [f"not imported: {reason}" for reason in self.not_imported]
        if not self.copied_anything:
            lines.append("nothing copied: everything was already in Provenant")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Root:
    """A tree of MLflow files to copy: a run's artifacts or a logged model's, with how to list and fetch them."""

    location: Location
    kind: str
    list_folder: Callable[[str | None], list[Any]]
    download: Callable[[str, str], str]


def _finite(value: float) -> float | str:
    """JSON has no NaN or infinities; the history keeps them as MLflow's words for them."""
    return value if math.isfinite(value) else repr(value)


def _logged_model_id(source: str | None) -> str | None:
    """The logged model a version's source names (`models:/m-<id>`, MLflow 3), which the tracking server's answer
    does not always carry as `model_id`."""
    found = LOGGED_MODEL_SOURCE.match(source or "")
    return found.group(1) if found else None


class MlflowImporter:
    """Copies experiments and runs from the tracking server at `tracking_uri` into `project` of `client`'s server."""

    def __init__(self, client: Client, *, tracking_uri: str, project: str, progress: TextIO | None = None) -> None:
        self.client = client
        self.tracking_uri = tracking_uri
        self.project = project
        self.mlflow = MlflowClient(tracking_uri=tracking_uri)
        self.progress = progress if progress is not None else sys.stderr
        self.summary = ImportSummary()

    def say(self, line: str) -> None:
        print(line, file=self.progress, flush=True)

    # Experiments and runs -----------------------------------------------------------------------------------------

    def experiments(self, names: list[str] | None) -> list[Any]:
        """The experiments named (each must exist), else every active one."""
        if not names:
            found, token = [], None
            while True:
                page = self.mlflow.search_experiments(max_results=RUN_PAGE, page_token=token)
                found += list(page)
                token = page.token
                if not token:
                    return found
        found = []
        for name in names:
            experiment = self.mlflow.get_experiment_by_name(name)
            if experiment is None:
                raise ValueError(f"The tracking server {self.tracking_uri} has no experiment named {name!r}.")
            found.append(experiment)
        return found

    def runs(self, experiment_id: str) -> Iterator[Any]:
        token = None
        while True:
            page = self.mlflow.search_runs(
                [experiment_id], max_results=RUN_PAGE, order_by=["attributes.start_time ASC"], page_token=token
            )
            yield from page
            token = page.token
            if not token:
                return

    def import_experiments(self, names: list[str] | None = None) -> ImportSummary:
        for experiment in self.experiments(names):
            self.summary.experiments.append(experiment.name)
            self.say(f"experiment {experiment.name!r} (id {experiment.experiment_id})")
            with tempfile.TemporaryDirectory(prefix="provenant-mlflow-") as scratch:
                for run in self.runs(experiment.experiment_id):
                    self.import_run(run, experiment, Path(scratch))
        return self.summary

    def import_run(self, run: Any, experiment: Any, scratch: Path) -> None:
        run_id = run.info.run_id
        record = self._provenant_run(run, experiment)
        self.say(f"run {run_id} ({run.info.run_name or 'unnamed'}): Provenant run {record['id']}")
        self._copy_history(run, int(record["id"]), scratch)
        if urlsplit(run.info.artifact_uri or "").scheme in SCHEMES:
            # Logged through the plugin: its files are in Provenant already, under the plugin's root.
            self.summary.skipped["runs whose files were logged to Provenant through the plugin"] += 1
            self.say(f"  files: skipped, logged to {run.info.artifact_uri} through the plugin")
            return
        root = f"{run_id}/artifacts"
        self._copy_root(
            _Root(
                location=Location(self.client.server, self.project, root, run_id=run_id),
                kind="other",
                list_folder=lambda path: self.mlflow.list_artifacts(run_id, path),
                download=lambda path, folder: self.mlflow.download_artifacts(run_id, path, folder),
            ),
            int(record["id"]),
            scratch,
        )
        for model in self._logged_models(run):
            self._copy_root(
                _Root(
                    location=Location(
                        self.client.server, self.project, f"models/{model.model_id}/artifacts", model_id=model.model_id
                    ),
                    kind="model",
                    list_folder=lambda path, model_id=model.model_id: self.mlflow.list_logged_model_artifacts(
                        model_id, path
                    ),
                    download=lambda path, folder, model=model: self._download_logged_model_file(model, path, folder),
                ),
                int(record["id"]),
                scratch,
            )

    def _logged_models(self, run: Any) -> list[Any]:
        """The models the run logged (MLflow 3 keeps them beside the run's artifacts, not under them)."""
        search = getattr(self.mlflow, "search_logged_models", None)
        if search is None:
            return []
        found, token = [], None
        while True:
            page = search(
                [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'", page_token=token
            )
            found += list(page)
            token = page.token
            if not token:
                return found

    def _download_logged_model_file(self, model: Any, path: str, folder: str) -> str:
        return download_artifacts(
            artifact_uri=f"{model.artifact_location.rstrip('/')}/{path}",
            dst_path=folder,
            tracking_uri=self.tracking_uri,
        )

    def _provenant_run(self, run: Any, experiment: Any) -> dict[str, Any]:
        """The run found by its external id, else created from the MLflow run (finished at once when it is)."""
        external_id = f"mlflow:{run.info.run_id}"
        found = self.client.get("/runs/", project=self.project, external_id=external_id)["results"]
        body = run_creation_body(self.project, run)
        if found:
            self.summary.runs_found += 1
            self.summary.skipped["runs already imported (found by external id)"] += 1
            if found[0]["status"] == "running" and body.get("status"):
                # Imported (or logged through the plugin) while it ran, ended since: its end and final metrics.
                # A finished Provenant run is frozen, so this happens once.
                patch = {key: body[key] for key in ("metrics", "status", "ended_at")}
                self.summary.runs_finished += 1
                return self.client.request("PATCH", f"/runs/{found[0]['id']}/", json=patch).json()
            return found[0]
        body["environment"]["mlflow"]["experiment_name"] = experiment.name
        body["environment"]["mlflow"]["imported_from"] = self.tracking_uri
        try:
            record = self.client.post("/runs/", body)
        except Conflict:  # created meanwhile (another import, or the plugin logging to the same run)
            record = self.client.get("/runs/", project=self.project, external_id=external_id)["results"][0]
            self.summary.runs_found += 1
            return record
        self.summary.runs_created += 1
        return record

    # Files --------------------------------------------------------------------------------------------------------

    def _held(self, root: str) -> dict[str, dict[str, Any]]:
        """The newest version of each MLflow path the project holds under `root` (the plugin's index)."""
        newest: dict[str, dict[str, Any]] = {}
        for version in self.client.iterate(
            "/artifact-versions/", project=self.project, metadata=f"mlflow.root:{json.dumps(root)}"
        ):
            path = version["metadata"].get("mlflow", {}).get("path")
            if path and (path not in newest or version["id"] > newest[path]["id"]):
                newest[path] = version
        return newest

    def _files(self, list_folder: Callable[[str | None], list[Any]], folder: str | None = None) -> Iterator[Any]:
        for info in list_folder(folder):
            if info.is_dir:
                yield from self._files(list_folder, info.path)
            else:
                yield info

    def _copy_root(self, root: _Root, run: int, scratch: Path, start: str = "", *, reuse: bool = False) -> None:
        """Copy the files under `start` in the root (all of them by default) that the project does not hold.
        `reuse`: a model version's files, held mostly because its run was just imported; not counted as skipped."""
        held = self._held(root.location.root)
        for info in self._files(root.list_folder, start or None):
            present = held.get(info.path)
            if present is not None and (info.file_size is None or int(present["size"]) == int(info.file_size)):
                if not reuse:
                    self.summary.skipped["files already in Provenant (same path and size)"] += 1
                    self.say(f"  {info.path}: skipped, already in Provenant as version {present['id']}")
                continue
            folder = Path(tempfile.mkdtemp(dir=scratch))
            try:
                local = root.download(info.path, str(folder))
                self._push(root.location, root.kind, local, info.path, run)
            finally:
                shutil.rmtree(folder, ignore_errors=True)

    def _push(self, location: Location, kind: str, local: str, path: str, run: int) -> None:
        guessed = mimetypes.guess_type(path)[0]
        metadata = {
            "mlflow": {
                "root": location.root,
                "path": path,
                "imported_from": self.tracking_uri,
                **({"run_id": location.run_id} if location.run_id else {}),
                **({"model_id": location.model_id} if location.model_id else {}),
            }
        }
        result = self.client.push(
            local,
            project=self.project,
            artifact=artifact_name(location, path),
            run=run,
            metadata=metadata,
            media_type=guessed if guessed and MEDIA_TYPE_SHAPE.match(guessed) else None,
            kind=kind,
        )
        self.summary.bytes_sent += result.bytes_sent
        if result.already_held:
            self.summary.files_published_without_upload += 1
            self.say(f"  {path}: published as version {result.version['id']}, bytes already held")
        else:
            self.summary.files_copied += 1
            self.say(f"  {path}: copied as version {result.version['id']} ({result.bytes_sent} bytes sent)")

    def _copy_history(self, run: Any, record: int, scratch: Path) -> None:
        """Every metric's full series as one JSON file of the run, once the run has ended (the series is final then),
        written deterministically (same series, same bytes)."""
        run_id = run.info.run_id
        location = Location(self.client.server, self.project, f"{run_id}/provenant-import", run_id=run_id)
        held = self._held(location.root)
        if HISTORY_FILE in held:
            self.summary.skipped["metric histories already in Provenant"] += 1
            return
        if not run.data.metrics:
            return
        if run.info.status not in FINISHED_STATUSES:
            # A series still growing: published once the run has ended, by the import run after that.
            self.summary.skipped["metric histories of runs still running (published once they end)"] += 1
            return
        history = {
            key: [
                {"step": point.step, "timestamp": point.timestamp, "value": _finite(point.value)}
                for point in sorted(self.mlflow.get_metric_history(run_id, key), key=lambda p: (p.step, p.timestamp))
            ]
            for key in sorted(run.data.metrics)
        }
        local = scratch / HISTORY_FILE
        local.write_text(json.dumps({"run_id": run_id, "metrics": history}, indent=1, sort_keys=True) + "\n")
        try:
            self._push(location, "other", str(local), HISTORY_FILE, record)
        finally:
            local.unlink()

    # Registered models --------------------------------------------------------------------------------------------

    def registered_models(self) -> Iterator[Any]:
        token = None
        while True:
            page = self.mlflow.search_registered_models(max_results=RUN_PAGE, page_token=token)
            yield from page
            token = page.token
            if not token:
                return

    def import_registered_models(self) -> ImportSummary:
        """Every registered model -> a Provenant registered model; each version -> a model version on a manifest of
        its files; each alias -> the same alias and each legacy stage -> the same stage, both marked imported."""
        with tempfile.TemporaryDirectory(prefix="provenant-mlflow-") as scratch:
            for registered in self.registered_models():
                try:
                    self._registered_model(registered, Path(scratch))
                except ProvenantError as error:
                    self.summary.not_imported.append(f"registered model {registered.name!r}: {error.detail}")
                    self.say(f"registered model {registered.name!r}: not imported ({error.detail})")
        return self.summary

    def _registered_model(self, registered: Any, scratch: Path) -> None:
        try:
            model = self.client.model(self.project, registered.name)
            self.summary.skipped["registered models already in Provenant"] += 1
        except NotFound:
            tags = "".join(f"\n- `{key}`: {value}" for key, value in sorted(dict(registered.tags).items()))
            card = f"Imported from MLflow ({self.tracking_uri}).\n\nMLflow tags:{tags or ' none'}\n"
            model = self.client.register_model(
                self.project, registered.name, description=registered.description or "", model_card=card
            )
            self.summary.models_created += 1
        self.say(f"registered model {registered.name!r}: Provenant model {model['id']}")
        held = {
            str(version["metadata"]["mlflow"]["version"]): version
            for version in self.client.iterate(
                "/artifact-versions/",
                project=self.project,
                metadata=f"mlflow.registered_model:{json.dumps(registered.name)}",
            )
        }
        registered_versions = {
            int(record["artifact_version"]): record
            for record in self.client.iterate("/model-versions/", model=model["id"])
        }
        numbers: dict[str, int] = {}  # MLflow version -> Provenant model version number
        records: dict[str, dict[str, Any]] = {}
        mlflow_versions = sorted(
            self.mlflow.search_model_versions(f"name = '{registered.name}'"), key=lambda found: int(found.version)
        )
        for version in mlflow_versions:
            record = self._model_version(registered.name, version, held, registered_versions, model, scratch)
            if record is not None:
                numbers[str(version.version)] = int(record["number"])
                records[str(version.version)] = record
        self._aliases(registered.name, model, numbers)
        self._stages(registered.name, [version for version in mlflow_versions if str(version.version) in records],
                     records)  # fmt: skip

    def _aliases(self, name: str, model: dict[str, Any], numbers: dict[str, int]) -> None:
        """Each MLflow alias -> the same alias on the same version, set as imported (said on the alias and in the
        audit log); an alias Provenant already points elsewhere is left as it is."""
        current = {alias["name"]: alias["version"] for alias in self.client.get(f"/models/{model['id']}/")["aliases"]}
        # Read whole: a search's answer may leave the aliases out.
        aliases = self.mlflow.get_registered_model(name).aliases
        for alias, mlflow_version in sorted(dict(aliases).items()):
            number = numbers.get(str(mlflow_version))
            if number is None:
                self.summary.not_imported.append(
                    f"{name} alias {alias!r}: its version {mlflow_version} was not imported (see above)"
                )
            elif current.get(alias) == number:
                self.summary.skipped["aliases already set"] += 1
            elif alias in current:
                self.summary.skipped["aliases pointing elsewhere in Provenant (left as they are)"] += 1
                self.say(
                    f"  alias {alias!r}: left at v{current[alias]} in Provenant (MLflow: version {mlflow_version})"
                )
            else:
                source = f"mlflow {self.tracking_uri} {name} alias {alias} (version {mlflow_version})"
                self.client.post(
                    f"/models/{model['id']}/aliases/", {"name": alias, "version": number, "imported_from": source}
                )
                self.summary.aliases_set += 1
                self.say(f"  alias {alias!r} -> v{number} (MLflow version {mlflow_version}), imported")

    def _stages(self, name: str, versions: list[Any], records: dict[str, dict[str, Any]]) -> None:
        """MLflow's legacy stages, recorded in the stage history as imported (with where from), never as promotions
        nobody approved. The server allows it to a maintainer of the project, and only while the model's stages
        have moved by imports alone; each refusal is said in the summary. MLflow lets several versions be in
        Production at once; Provenant keeps one, the newest."""
        in_production = [version for version in versions if version.current_stage == "Production"]
        newest = max(in_production, key=lambda version: int(version.version)) if in_production else None
        if len(in_production) > 1:
            others = ", ".join(str(version.version) for version in in_production if version is not newest)
            self.summary.not_imported.append(
                f"{name}: MLflow has versions {others} in Production too; Provenant keeps one production version, "
                f"version {newest.version} (the newest)"
            )
        moves = [version for version in versions if version.current_stage in {"Staging", "Archived"}]
        moves += [newest] if newest is not None else []  # last: production after the versions it may replace
        for version in moves:
            stage = version.current_stage.lower()
            record = records[str(version.version)]
            if record["stage"] == stage:
                self.summary.skipped["stages already imported"] += 1
                continue
            try:
                self.client.post(
                    f"/model-versions/{record['id']}/imported-stage/",
                    {"stage": stage, "imported_from": f"{self._source(name, version)} (stage {version.current_stage})"},
                )
            except (PermissionDenied, Conflict) as refusal:
                self.summary.not_imported.append(
                    f"{name} version {version.version}: MLflow stage {version.current_stage!r} not imported "
                    f"({refusal.detail})"
                )
                self.say(f"  version {version.version}: stage {version.current_stage} not imported ({refusal.detail})")
            else:
                self.summary.stages_imported += 1
                self.say(f"  version {version.version} -> {stage} (imported, not approved in Provenant)")

    def _model_version(
        self,
        name: str,
        version: Any,
        held: dict[str, dict[str, Any]],
        registered_versions: dict[int, dict[str, Any]],
        model: dict[str, Any],
        scratch: Path,
    ) -> dict[str, Any] | None:
        """The Provenant model version of an MLflow one, registered on its manifest (published once); None, with
        the reason in the summary, when its files cannot be brought."""
        artifact_version = held.get(str(version.version))
        if artifact_version is None:
            artifact_version = self._publish_model_manifest(name, version, scratch)
            if artifact_version is None:
                return None
        else:
            self.summary.skipped["model version files already in Provenant"] += 1
        record = registered_versions.get(int(artifact_version["id"]))
        if record is None:
            record = self.client.post(
                "/model-versions/", {"model": model["id"], "artifact_version": artifact_version["id"]}
            )
            self.summary.model_versions_created += 1
            self.say(f"  version {version.version} -> v{record['number']} (artifact version {artifact_version['id']})")
        else:
            self.summary.skipped["model versions already registered"] += 1
        return record

    def _run_of_version(self, run_id: str) -> dict[str, Any]:
        """The Provenant run of the MLflow run that made a model version: imported with its experiment, or now."""
        found = self.client.get("/runs/", project=self.project, external_id=f"mlflow:{run_id}")["results"]
        if found:
            return found[0]
        run = self.mlflow.get_run(run_id)
        return self._provenant_run(run, self.mlflow.get_experiment(run.info.experiment_id))

    def _source(self, name: str, version: Any) -> str:
        return f"mlflow {self.tracking_uri} {name} version {version.version}"

    def _publish_model_manifest(self, name: str, version: Any, scratch: Path) -> dict[str, Any] | None:
        """The version's files as versions of the project (copied under the same roots and names as the runs'
        and logged models' files, so files the import or the plugin brought already are neither downloaded nor
        stored again), and a manifest naming them with what MLflow's registry said of the version."""
        if not version.run_id:
            self.summary.not_imported.append(
                f"{name} version {version.version}: its files belong to no MLflow run ({version.source}); publish them "
                "with `provenant push` and register that version with `provenant register`"
            )
            return None
        provenant_run = self._run_of_version(version.run_id)
        model_id = getattr(version, "model_id", None) or _logged_model_id(version.source)
        if model_id:
            logged = self.mlflow.get_logged_model(model_id)
            root = mlflow_register._Root(logged.artifact_location, "", version.run_id, model_id)
            location = Location(self.client.server, self.project, root.plugin_root, model_id=model_id)
            listing: Callable[[str | None], list[Any]] = lambda path: self.mlflow.list_logged_model_artifacts(  # noqa: E731
                model_id, path
            )
            download = lambda path, folder: self._download_logged_model_file(logged, path, folder)  # noqa: E731
            kind = "model"
        else:
            base = self.mlflow.get_run(version.run_id).info.artifact_uri.rstrip("/")
            source = self.mlflow.get_model_version_download_uri(name, version.version).rstrip("/")
            if source != base and not source.startswith(f"{base}/"):
                self.summary.not_imported.append(
                    f"{name} version {version.version}: its files ({source}) are not under its run's artifacts "
                    f"({base}); publish them with `provenant push` and register that version with `provenant register`"
                )
                return None
            root = mlflow_register._Root(base, source[len(base) :].strip("/"), version.run_id)
            location = Location(self.client.server, self.project, root.plugin_root, run_id=version.run_id)
            run_id = version.run_id
            listing = lambda path: self.mlflow.list_artifacts(run_id, path)  # noqa: E731
            download = lambda path, folder: self.mlflow.download_artifacts(run_id, path, folder)  # noqa: E731
            kind = "other"
        if urlsplit(root.uri).scheme in SCHEMES:
            # Logged through the plugin: the files are versions already, in the project the location names.
            project = mlflow_plugin.parse_uri(root.uri).project
            if project != self.project:
                self.summary.not_imported.append(
                    f"{name} version {version.version}: its files are in Provenant project {project!r}; import its "
                    f"registered model with --project {project}"
                )
                return None
        else:
            self._copy_root(
                _Root(location, kind, listing, download), int(provenant_run["id"]), scratch, root.inside, reuse=True
            )
        inside = root.inside
        files = {
            path: record for path, record in self._held(location.root).items() if mlflow_register._under(path, inside)
        }
        if not files:
            self.summary.not_imported.append(f"{name} version {version.version}: MLflow lists no file for it")
            return None
        if inside in files:  # the version is one file: that file is the model
            return files[inside]
        relative = {posixpath.relpath(path, inside or "."): record for path, record in files.items()}
        registered = {
            "registered_model": name,
            "version": str(version.version),
            "description": version.description or "",
            "tags": dict(sorted(dict(version.tags).items())),
            "stage": version.current_stage or "None",
            "aliases": sorted(version.aliases),
            "imported_from": self.tracking_uri,
        }
        described = f"{root.uri.rstrip('/')}/{inside}".rstrip("/")
        manifest = mlflow_register._push_manifest(
            self.client, root, self.project, relative, provenant_run, described, registered
        )
        return manifest
