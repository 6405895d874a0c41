"""Writes for the catalogue: projects, datasets and their versions, runs, artifacts and their versions."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.access.services import role_grant
from artifacts.events import artifact_version_published_event
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Dataset,
    DatasetVersion,
    Project,
    Run,
    RunArtifactInput,
    RunDatasetInput,
)
from artifacts.services.blobs import blob_locked_stored, require_project_blob
from core.audit.actions import AuditAction
from core.changes import ChangeSet, given
from core.errors import Conflict, InvalidInput
from core.licenses import license_expression_clean
from core.services import digest_hex, insert_unique, validated

NamedInProject = TypeVar("NamedInProject", Dataset, Artifact)


class AlreadyPublished(Conflict):
    """The same content is already a version, recorded with other details than this request gives (HTTP 409).
    `existing` is that version, for the answer to show."""

    code = "already_published"

    def __init__(self, message: str, *, existing: ArtifactVersion | DatasetVersion) -> None:
        super().__init__(message)
        self.existing = existing


class VersionDeleted(AlreadyPublished):
    """The same content was a version that has since been deleted (HTTP 409): versions are found by content, so
    publishing it again would hand back a deleted version. `existing` is that version, with its tombstone."""

    code = "version_deleted"

    def __init__(self, existing: ArtifactVersion | DatasetVersion, owner: str) -> None:
        super().__init__(
            f"This content was version {existing.number} (id {existing.pk}) of {owner}, "
            f"{existing.tombstone.summary} Nothing was published: a "
            "deleted version stays deleted, and the same content cannot become another version of the same "
            f"{'artifact' if isinstance(existing, ArtifactVersion) else 'dataset'}.",
            existing=existing,
        )


def _refuse_deleted(existing: ArtifactVersion | DatasetVersion, owner: str) -> None:
    if getattr(existing, "tombstone", None) is not None:
        raise VersionDeleted(existing, owner)


def _run_label(run: Run | None) -> str:
    return f"run {run.pk} ('{run.external_id}')" if run is not None else "no run"


def _same_retry_or_refuse(
    existing: ArtifactVersion | DatasetVersion, owner: str, compared: Mapping[str, tuple[Any, Any]]
) -> None:
    """Let a retry that says what the existing version says return it; refuse one that says something else,
    which would otherwise be dropped in silence (a second run that made the same bytes, other metadata).

    `compared` maps each field to (the existing version's value, this request's value).
    """
    differing = [name for name, (recorded, requested) in compared.items() if recorded != requested]
    if not differing:
        return
    recorded_run, requested_run = compared["run"]
    shown = {"run": f"run: {_run_label(recorded_run)} there, {_run_label(requested_run)} here"}
    details = "; ".join(shown.get(name, name) for name in differing)
    raise AlreadyPublished(
        f"This content is already version {existing.number} (id {existing.pk}) of {owner}, published with "
        f"{_run_label(existing.run)}. This request differs ({details}), so nothing was published: versions "
        "are immutable. Use the existing version (in `existing`), or publish other content.",
        existing=existing,
    )


# Projects ---------------------------------------------------------------------------------------------


@transaction.atomic
def project_create(*, slug: str, name: str, created_by: AbstractBaseUser | None, description: str = "") -> Project:
    """A new project; whoever creates it becomes its first maintainer, so it is never without one."""
    project = Project(slug=slug, name=name, description=description)
    validated(project)
    insert_unique(
        project,
        taken=Project.objects.filter(slug=slug),
        conflict=Conflict(f"A project with slug '{slug}' already exists.", field="slug"),
    )
    with ChangeSet() as changes:
        if created_by is not None:
            role_grant(obj=project, role=Role.MAINTAINER, user=created_by, granted_by=created_by)
        changes.audit(
            AuditAction.PROJECT_CREATED,
            obj=project,
            actor=created_by,
            changes={"slug": slug, "name": name, "description": description},
        )
    return project


Stored = TypeVar("Stored", Project, Dataset, Artifact)


def _locked_stored(instance: Stored) -> Stored:
    """The row as stored, locked, with its project: what a change is measured against. The instance a caller
    passes may already carry the new values (an admin form sets them before the service runs)."""
    rows = type(instance).objects.select_for_update(of=("self",), no_key=True)
    if not isinstance(instance, Project):
        rows = rows.select_related("project")
    return rows.get(pk=instance.pk)


@transaction.atomic
def project_update(*, project: Project, name: str | None = None, description: str | None = None) -> Project:
    """Rename or describe a project; values equal to the stored ones change nothing and record nothing."""
    project = _locked_stored(project)
    with ChangeSet() as changes:
        if changed := changes.update(project, validate=validated, **given(name=name, description=description)):
            changes.audit(AuditAction.PROJECT_UPDATED, obj=project, changes=changed)
    return project


# Datasets ---------------------------------------------------------------------------------------------


def _named_in_project_create(
    model: type[NamedInProject], *, project: Project, name: str, **fields: Any
) -> NamedInProject:
    """Datasets and artifacts follow one rule: a safe name, unique within the project, fixed once created."""
    instance = model(project=project, name=name, **fields)
    validated(instance)
    noun = model._meta.verbose_name
    insert_unique(
        instance,
        taken=model.objects.filter(project=project, name=name),
        conflict=Conflict(
            f"Project '{project.slug}' already has {'an' if noun[0] in 'aeiou' else 'a'} {noun} named '{name}'.",
            field="name",
        ),
    )
    return instance


@transaction.atomic
def dataset_create(*, project: Project, name: str, description: str = "") -> Dataset:
    dataset = _named_in_project_create(Dataset, project=project, name=name, description=description)
    with ChangeSet() as changes:
        changes.audit(AuditAction.DATASET_CREATED, obj=dataset, changes={"name": name, "description": description})
    return dataset


@transaction.atomic
def dataset_update(*, dataset: Dataset, description: str | None = None) -> Dataset:
    """The one thing about a dataset that may change: its description (None, as in a PATCH without it: unchanged)."""
    dataset = _locked_stored(dataset)
    with ChangeSet() as changes:
        if changed := changes.update(dataset, **given(description=description)):
            changes.audit(AuditAction.DATASET_UPDATED, obj=dataset, changes=changed)
    return dataset


@transaction.atomic
def dataset_version_create(
    *,
    dataset: Dataset,
    created_by: AbstractBaseUser,
    digest: str | None = None,
    uri: str = "",
    manifest_digest: str | None = None,
    run: Run | None = None,
    row_count: int | None = None,
    schema: Mapping[str, Any] | None = None,
    description: str = "",
) -> tuple[DatasetVersion, bool]:
    """Record a snapshot: a blob uploaded to the dataset's project, or an external URI with its manifest digest.

    The same content recorded again with the same details returns the existing version (and False) instead of
    a duplicate; with other details it is refused (AlreadyPublished), not dropped in silence.
    """
    if digest and (uri or manifest_digest):
        raise InvalidInput("Give either a digest (a file stored here) or a uri with its manifest_digest, not both.")
    if not digest and not (uri and manifest_digest):
        raise InvalidInput(
            "Give a digest of a blob uploaded to the project, or a uri together with the manifest_digest that pins it."
        )
    if run is not None and run.project_id != dataset.project_id:
        raise InvalidInput(f"Run {run.external_id} belongs to another project.", field="run")
    # The project comes along for the log's label of the new version; only the dataset's row is locked.
    dataset = Dataset.objects.select_for_update(of=("self",), no_key=True).select_related("project").get(pk=dataset.pk)
    if digest:
        blob = require_project_blob(dataset.project, digest_hex(digest, "digest"), "digest", created_by)
        existing = (
            DatasetVersion.objects.filter(dataset=dataset, blob=blob)
            .select_related("run", "tombstone__deleted_by")
            .first()
        )
        pinned = {"blob": blob}
    else:
        manifest = digest_hex(manifest_digest or "", "manifest_digest")
        existing = (
            DatasetVersion.objects.filter(dataset=dataset, manifest_digest=manifest)
            .select_related("run", "tombstone__deleted_by")
            .first()
        )
        pinned = {"uri": uri, "manifest_digest": manifest}
    if existing is not None:
        _refuse_deleted(existing, f"dataset '{dataset.name}'")
        _same_retry_or_refuse(
            existing,
            f"dataset '{dataset.name}'",
            {
                "run": (existing.run, run),
                "uri": (existing.uri, pinned.get("uri", "")),
                "row_count": (existing.row_count, row_count),
                "schema": (existing.schema, dict(schema or {})),
                "description": (existing.description, description),
            },
        )
        return existing, False
    if digest:
        blob = blob_locked_stored(blob, project=dataset.project)
    number = (dataset.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = DatasetVersion(
        dataset=dataset,
        number=number,
        run=run,
        row_count=row_count,
        schema=dict(schema or {}),
        description=description,
        created_by=created_by,
        **pinned,
    )
    validated(version)
    version.save()
    pinned_changes = {"digest": blob.prefixed_digest} if digest else {"uri": uri, "manifest_digest": manifest}
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.DATASET_VERSION_CREATED,
            obj=version,
            actor=created_by,
            changes={
                "dataset": dataset.pk,
                "number": number,
                **pinned_changes,
                "run": run.pk if run is not None else None,
                "row_count": row_count,
            },
        )
    return version, True


# Runs -------------------------------------------------------------------------------------------------


@transaction.atomic
def run_create(
    *,
    project: Project,
    external_id: str,
    created_by: AbstractBaseUser,
    name: str = "",
    status: str = Run.Status.RUNNING,
    code_repository: str = "",
    code_commit: str = "",
    entry_point: str = "",
    parameters: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    environment: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    failure_reason: str = "",
    input_dataset_versions: Iterable[DatasetVersion] = (),
    input_artifact_versions: Iterable[ArtifactVersion] = (),
) -> Run:
    """Record a run with everything that defines it. Its inputs, from the same project, are fixed from here on.

    A run recorded already failed or cancelled (sent once, at its end) may say why in `failure_reason`.
    """
    input_dataset_versions = list(input_dataset_versions)
    input_artifact_versions = list(input_artifact_versions)
    foreign = [v.pk for v in input_dataset_versions if v.dataset.project_id != project.pk]
    if foreign:
        raise InvalidInput(
            f"Dataset versions {', '.join(map(str, foreign))} belong to another project; a run's inputs come "
            f"from its own project '{project.slug}'.",
            field="input_dataset_versions",
        )
    foreign = [v.pk for v in input_artifact_versions if v.artifact.project_id != project.pk]
    if foreign:
        raise InvalidInput(
            f"Artifact versions {', '.join(map(str, foreign))} belong to another project; a run's inputs come "
            f"from its own project '{project.slug}'.",
            field="input_artifact_versions",
        )
    if ended_at is not None and status not in Run.FINISHED:
        raise InvalidInput("A running run has no end yet: send ended_at together with a finished status.")
    _check_failure_reason(status, failure_reason)
    run = Run(
        project=project,
        external_id=external_id,
        name=name,
        status=status,
        code_repository=code_repository,
        code_commit=code_commit.lower(),
        entry_point=entry_point,
        parameters=dict(parameters or {}),
        metrics=dict(metrics or {}),
        environment=dict(environment or {}),
        started_at=started_at,
        ended_at=ended_at,
        failure_reason=failure_reason,
        created_by=created_by,
    )
    if run.is_finished and run.ended_at is None:
        run.ended_at = timezone.now()
    _check_run_times(run)
    validated(run)
    insert_unique(
        run,
        taken=Run.objects.filter(project=project, external_id=external_id),
        conflict=Conflict(f"Project '{project.slug}' already has a run '{external_id}'.", field="external_id"),
    )
    RunDatasetInput.objects.bulk_create(
        RunDatasetInput(run=run, dataset_version=version)
        for version in {v.pk: v for v in input_dataset_versions}.values()
    )
    RunArtifactInput.objects.bulk_create(
        RunArtifactInput(run=run, artifact_version=version)
        for version in {v.pk: v for v in input_artifact_versions}.values()
    )
    # Free-form values (parameters, environment) stay on the run, and the log names only the parameters: the
    # log is exported to auditors outside the project and never edited, so it takes no text a user may have
    # pasted a credential into. Metrics are kept, as promotion gates read them.
    with ChangeSet() as changes:
        changes.audit(
            AuditAction.RUN_CREATED,
            obj=run,
            actor=created_by,
            changes={
                "external_id": external_id,
                "name": name,
                "status": run.status,
                "code_repository": code_repository,
                "code_commit": run.code_commit,
                "entry_point": entry_point,
                "parameter_names": sorted(run.parameters),
                "metrics": run.metrics,
                "started_at": started_at,
                "ended_at": run.ended_at,
                "failure_reason": failure_reason,
                "input_dataset_versions": sorted({v.pk for v in input_dataset_versions}),
                "input_artifact_versions": sorted({v.pk for v in input_artifact_versions}),
            },
        )
    return run


def _check_failure_reason(status: str, failure_reason: str) -> None:
    """A reason goes only with the status it explains: a running or completed run failed at nothing."""
    if failure_reason and status not in Run.UNSUCCESSFUL:
        raise InvalidInput(
            f"failure_reason goes with a failed or cancelled status, not {status}: send it together with the status "
            "that ends the run.",
            field="failure_reason",
        )


def _check_run_times(run: Run) -> None:
    if run.started_at and run.ended_at and run.ended_at < run.started_at:
        raise InvalidInput("ended_at is before started_at.", field="ended_at")


def _checked_run(run: Run) -> None:
    _check_run_times(run)
    validated(run)


@transaction.atomic
def run_update(
    *,
    run: Run,
    status: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    ended_at: datetime | None = None,
    failure_reason: str = "",
) -> Run:
    """Record a running run's progress: new metrics are merged in, and a finishing status ends it, a failed or
    cancelled one with its `failure_reason` if given.

    A finished run is frozen, so the metrics that promotion gates read cannot be improved after the fact, nor the
    reason it failed rewritten.
    """
    run = Run.objects.select_for_update(of=("self",), no_key=True).select_related("project").get(pk=run.pk)
    if run.is_finished:
        raise Conflict(
            f"Run '{run.external_id}' is {run.status} and can no longer change; record a new run instead.",
            code="run_finished",
        )
    new = {
        "status": run.status if status is None else status,
        "metrics": {**run.metrics, **metrics} if metrics else run.metrics,
        "ended_at": run.ended_at,
    }
    finished = new["status"] in Run.FINISHED
    _check_failure_reason(new["status"], failure_reason)
    if failure_reason:
        new["failure_reason"] = failure_reason
    if ended_at is not None:
        if not finished:
            raise InvalidInput(
                "A running run has no end yet: send ended_at together with a finished status.", field="ended_at"
            )
        new["ended_at"] = ended_at
    if finished and new["ended_at"] is None:
        new["ended_at"] = timezone.now()
    with ChangeSet() as changes:
        if changed := changes.update(run, validate=_checked_run, **new):
            changes.audit(AuditAction.RUN_UPDATED, obj=run, changes=changed)
    return run


# Artifacts --------------------------------------------------------------------------------------------


def _keep_access_to_restricted(artifact: Artifact, actor: AbstractBaseUser | None) -> None:
    """Project roles stop reaching a restricted artifact, so whoever restricts it keeps it through a grant on it."""
    if actor is not None and not actor.is_superuser:
        role_grant(obj=artifact, role=Role.MAINTAINER, user=actor, granted_by=actor)


@transaction.atomic
def artifact_create(
    *,
    project: Project,
    name: str,
    kind: str,
    created_by: AbstractBaseUser | None,
    description: str = "",
    restricted: bool = False,
) -> Artifact:
    artifact = _named_in_project_create(
        Artifact, project=project, name=name, kind=kind, description=description, restricted=restricted
    )
    with ChangeSet() as changes:
        if restricted:
            _keep_access_to_restricted(artifact, created_by)
        changes.audit(
            AuditAction.ARTIFACT_CREATED,
            obj=artifact,
            actor=created_by,
            changes={"name": name, "kind": kind, "description": description, "restricted": restricted},
        )
    return artifact


@transaction.atomic
def artifact_update(
    *,
    artifact: Artifact,
    changed_by: AbstractBaseUser | None,
    description: str | None = None,
    restricted: bool | None = None,
) -> Artifact:
    """Describe an artifact, or restrict it (or open it again) to its project's roles; values equal to the
    stored ones change nothing and record nothing."""
    artifact = _locked_stored(artifact)
    with ChangeSet() as changes:
        changed = changes.update(artifact, **given(restricted=restricted, description=description))
        if changed.get("restricted", [None, False])[1]:
            _keep_access_to_restricted(artifact, changed_by)
        if changed:
            changes.audit(AuditAction.ARTIFACT_UPDATED, obj=artifact, actor=changed_by, changes=changed)
    return artifact


@transaction.atomic
def artifact_version_publish(
    *,
    artifact: Artifact,
    digest: str,
    created_by: AbstractBaseUser,
    run: Run | None = None,
    media_type: str = "application/octet-stream",
    metadata: Mapping[str, Any] | None = None,
    license: str = "",
) -> tuple[ArtifactVersion, bool]:
    """Publish bytes already uploaded to the artifact's project as its next version.

    Idempotent: the same bytes published again under the same artifact with the same run, media type and
    metadata return the existing version (and False); saying anything else is refused (AlreadyPublished),
    not dropped in silence. Bytes that were a version since deleted are refused (VersionDeleted), and so are bytes
    the garbage collector removed (BlobCollected: upload them again). Numbers are taken under a lock on the artifact row
    (SQLite's IMMEDIATE transactions serialise writers the same way), so concurrent publishers get
    1, 2, 3… with no gap or duplicate.
    """
    if run is not None and run.project_id != artifact.project_id:
        raise InvalidInput(
            f"Run '{run.external_id}' belongs to another project than artifact '{artifact.name}'.",
            field="run",
        )
    license = license_expression_clean(license)
    artifact = (
        Artifact.objects.select_for_update(of=("self",), no_key=True).select_related("project").get(pk=artifact.pk)
    )
    blob = require_project_blob(artifact.project, digest_hex(digest, "digest"), "digest", created_by)
    existing = (
        ArtifactVersion.objects.filter(artifact=artifact, blob=blob)
        .select_related("run", "tombstone__deleted_by")
        .first()
    )
    if existing is not None:
        _refuse_deleted(existing, f"artifact '{artifact.name}'")
        _same_retry_or_refuse(
            existing,
            f"artifact '{artifact.name}'",
            {
                "run": (existing.run, run),
                "media_type": (existing.media_type, media_type),
                "metadata": (existing.metadata, dict(metadata or {})),
                "license": (existing.license, license),
            },
        )
        return existing, False
    blob = blob_locked_stored(blob, project=artifact.project)
    number = (artifact.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = ArtifactVersion(
        artifact=artifact,
        number=number,
        blob=blob,
        run=run,
        media_type=media_type,
        metadata=dict(metadata or {}),
        license=license,
        created_by=created_by,
    )
    validated(version)
    version.save()
    with ChangeSet() as changes:
        artifact_version_published_event(changes, version, actor=created_by)
        changes.audit(
            AuditAction.ARTIFACT_VERSION_PUBLISHED,
            obj=version,
            actor=created_by,
            changes={
                "artifact": artifact.pk,
                "number": number,
                "digest": blob.prefixed_digest,
                "size": blob.size,
                "run": run.pk if run is not None else None,
                "media_type": media_type,
                "metadata_keys": sorted(version.metadata),  # the values are free-form: see run_create
                "license": license,
            },
        )
    return version, True
