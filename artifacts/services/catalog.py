"""Writes for the catalogue: projects, datasets and their versions, runs, artifacts and their versions."""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

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
from artifacts.services._shared import digest_hex, insert_unique, validated
from artifacts.services.blobs import require_project_blob
from governance.errors import Conflict, InvalidInput
from governance.roles import Role
from governance.services import role_grant

NamedInProject = TypeVar("NamedInProject", Dataset, Artifact)

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
    if created_by is not None:
        role_grant(obj=project, role=Role.MAINTAINER, user=created_by, granted_by=created_by)
    return project


@transaction.atomic
def project_update(*, project: Project, name: str | None = None, description: str | None = None) -> Project:
    fields = []
    if name is not None:
        project.name = name
        fields.append("name")
    if description is not None:
        project.description = description
        fields.append("description")
    validated(project)
    if fields:
        project.save(update_fields=fields)
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


def _description_update(instance: NamedInProject, description: str) -> NamedInProject:
    """The one thing about a dataset or an artifact that may change."""
    instance.description = description
    instance.save(update_fields=["description"])
    return instance


@transaction.atomic
def dataset_create(*, project: Project, name: str, description: str = "") -> Dataset:
    return _named_in_project_create(Dataset, project=project, name=name, description=description)


@transaction.atomic
def dataset_update(*, dataset: Dataset, description: str) -> Dataset:
    return _description_update(dataset, description)


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

    The same content recorded again returns the existing version (and False) instead of a duplicate.
    """
    if digest and (uri or manifest_digest):
        raise InvalidInput("Give either a digest (a file stored here) or a uri with its manifest_digest, not both.")
    if not digest and not (uri and manifest_digest):
        raise InvalidInput(
            "Give a digest of a blob uploaded to the project, or a uri together with the manifest_digest that pins it."
        )
    if run is not None and run.project_id != dataset.project_id:
        raise InvalidInput(f"Run {run.external_id} belongs to another project.", field="run")
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if digest:
        blob = require_project_blob(dataset.project, digest_hex(digest, "digest"), "digest", created_by)
        existing = DatasetVersion.objects.filter(dataset=dataset, blob=blob).first()
        pinned = {"blob": blob}
    else:
        manifest = digest_hex(manifest_digest or "", "manifest_digest")
        existing = DatasetVersion.objects.filter(dataset=dataset, manifest_digest=manifest).first()
        pinned = {"uri": uri, "manifest_digest": manifest}
    if existing is not None:
        return existing, False
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
    input_dataset_versions: Iterable[DatasetVersion] = (),
    input_artifact_versions: Iterable[ArtifactVersion] = (),
) -> Run:
    """Record a run with everything that defines it. Its inputs, from the same project, are fixed from here on."""
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
    return run


def _check_run_times(run: Run) -> None:
    if run.started_at and run.ended_at and run.ended_at < run.started_at:
        raise InvalidInput("ended_at is before started_at.", field="ended_at")


@transaction.atomic
def run_update(
    *,
    run: Run,
    status: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    ended_at: datetime | None = None,
) -> Run:
    """Record a running run's progress: new metrics are merged in, and a finishing status ends it.

    A finished run is frozen, so the metrics that promotion gates read cannot be improved after the fact.
    """
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.is_finished:
        raise Conflict(
            f"Run '{run.external_id}' is {run.status} and can no longer change; record a new run instead.",
            code="run_finished",
        )
    fields = []
    if metrics:
        run.metrics = {**run.metrics, **metrics}
        fields.append("metrics")
    if status is not None and status != run.status:
        run.status = status
        fields.append("status")
    if ended_at is not None:
        if not run.is_finished:
            raise InvalidInput(
                "A running run has no end yet: send ended_at together with a finished status.", field="ended_at"
            )
        run.ended_at = ended_at
        fields.append("ended_at")
    if run.is_finished and run.ended_at is None:
        run.ended_at = timezone.now()
        fields.append("ended_at")
    _check_run_times(run)
    validated(run)
    if fields:
        run.save(update_fields=sorted(set(fields)))
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
    if restricted:
        _keep_access_to_restricted(artifact, created_by)
    return artifact


@transaction.atomic
def artifact_update(
    *,
    artifact: Artifact,
    changed_by: AbstractBaseUser | None,
    description: str | None = None,
    restricted: bool | None = None,
) -> Artifact:
    if restricted is not None and restricted != artifact.restricted:
        artifact.restricted = restricted
        artifact.save(update_fields=["restricted"])
        if restricted:
            _keep_access_to_restricted(artifact, changed_by)
    if description is not None:
        _description_update(artifact, description)
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
) -> tuple[ArtifactVersion, bool]:
    """Publish bytes already uploaded to the artifact's project as its next version.

    Idempotent: the same bytes published again under the same artifact return the existing version
    (and False), whatever else the second call says. Numbers are taken under a lock on the artifact row
    (SQLite's IMMEDIATE transactions serialise writers the same way), so concurrent publishers get
    1, 2, 3… with no gap or duplicate.
    """
    if run is not None and run.project_id != artifact.project_id:
        raise InvalidInput(
            f"Run '{run.external_id}' belongs to another project than artifact '{artifact.name}'.",
            field="run",
        )
    artifact = Artifact.objects.select_for_update().select_related("project").get(pk=artifact.pk)
    blob = require_project_blob(artifact.project, digest_hex(digest, "digest"), "digest", created_by)
    existing = ArtifactVersion.objects.filter(artifact=artifact, blob=blob).first()
    if existing is not None:
        return existing, False
    number = (artifact.versions.aggregate(top=Max("number"))["top"] or 0) + 1
    version = ArtifactVersion(
        artifact=artifact,
        number=number,
        blob=blob,
        run=run,
        media_type=media_type,
        metadata=dict(metadata or {}),
        created_by=created_by,
    )
    validated(version)
    version.save()
    return version, True
