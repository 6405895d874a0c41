"""Writes for the artifact store. Every create or change of a project, blob, dataset, run or artifact
version goes through a function here; views, admin and commands only translate to and from it."""

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Max
from django.utils import timezone

from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    Dataset,
    DatasetVersion,
    Project,
    ProjectBlob,
    Run,
    RunArtifactInput,
    RunDatasetInput,
    storage_key_for,
)
from artifacts.storage import ReceivedBytes, blob_storage, hash_stored_blob, write_blob
from artifacts.validators import parse_digest
from governance.errors import Conflict, InvalidInput

logger = logging.getLogger(__name__)


def _validated(instance: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Run the model's field validators and constraints; turn the first problem into an InvalidInput."""
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise InvalidInput(" ".join(messages), field=None if field == "__all__" else field) from None


def _digest(value: str, field: str) -> str:
    try:
        return parse_digest(value)
    except ValidationError as error:
        raise InvalidInput(error.messages[0], field=field) from None


# Projects ---------------------------------------------------------------------------------------------


@transaction.atomic
def project_create(*, slug: str, name: str, description: str = "") -> Project:
    project = Project(slug=slug, name=name, description=description)
    _validated(project)
    if Project.objects.filter(slug=slug).exists():
        raise Conflict(f"A project with slug '{slug}' already exists.", field="slug")
    project.save()
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
    _validated(project)
    if fields:
        project.save(update_fields=fields)
    return project


# Blobs ------------------------------------------------------------------------------------------------


def blob_store(
    *,
    project: Project,
    stream: BinaryIO,
    expected_digest: str,
    uploaded_by: AbstractBaseUser,
    declared_length: int | None = None,
) -> tuple[Blob, bool]:
    """Receive bytes for `project`, check them against the digest the client stated, store them once.

    Returns the blob and whether the bytes were new to the store. Nothing is kept when the digest does
    not match or the body is empty or shorter than announced. A blob found corrupt is repaired by a good
    upload of the same bytes and queued for verification again.
    """
    expected = _digest(expected_digest, "digest")
    with ReceivedBytes(stream, declared_length=declared_length) as received:
        if received.truncated:
            raise InvalidInput(
                f"The body ended after {received.size} of the {declared_length} bytes announced; send it again.",
                code="truncated",
            )
        if received.size == 0:
            raise InvalidInput("The body is empty: send the file's bytes.", code="empty")
        if received.digest != expected:
            raise InvalidInput(
                f"The bytes received hash to sha256:{received.digest}, not the sha256:{expected} stated; "
                "nothing was stored. Check that the file did not change while uploading.",
                field="digest",
                code="digest_mismatch",
            )
        key = storage_key_for(expected)
        existing = Blob.objects.filter(digest=expected).first()
        needs_bytes = existing is None or existing.state == Blob.State.CORRUPT or not blob_storage().exists(key)
        if needs_bytes:
            write_blob(key, received)
    try:
        with transaction.atomic():
            blob, created = _blob_record(digest=expected, size=received.size, repaired=needs_bytes)
            ProjectBlob.objects.get_or_create(project=project, blob=blob, defaults={"uploaded_by": uploaded_by})
    except BaseException:
        # Bytes written for a digest that no row describes would be an orphan: remove them, unless a
        # concurrent upload of the same bytes committed its row meanwhile.
        if needs_bytes and not Blob.objects.filter(digest=expected).exists():
            blob_storage().delete(key)
        raise
    return blob, created


def _blob_record(*, digest: str, size: int, repaired: bool) -> tuple[Blob, bool]:
    from artifacts.tasks import verify_blob

    blob, created = Blob.objects.select_for_update().get_or_create(digest=digest, defaults={"size": size})
    if not created and blob.size != size:
        raise Conflict(f"sha256:{digest} is recorded with {blob.size} bytes, not {size}.")
    if not created and repaired and blob.state == Blob.State.CORRUPT:
        blob.state = Blob.State.PENDING
        blob.verified_at = None
        blob.save(update_fields=["state", "verified_at"])
    if created or blob.state == Blob.State.PENDING:
        # robust: the upload has committed, so a broker that is down must not turn it into an error. The blob
        # stays pending, which downloads tolerate, and the next upload of the same bytes queues it again.
        transaction.on_commit(lambda: verify_blob.delay(blob.pk), robust=True)
    return blob, created


@transaction.atomic
def blob_verify(*, blob: Blob) -> Blob:
    """Re-hash the stored bytes and record whether they still match the digest.

    Hashing happens before the row lock is taken so a long verification never holds a lock; the result
    is written under the lock.
    """
    try:
        actual, size = hash_stored_blob(blob.storage_key)
    except FileNotFoundError:
        # The bytes are gone: that is corruption. Any other read error is transient and propagates, so the
        # task retries instead of condemning good bytes over a network blip.
        actual, size = None, 0
    blob = Blob.objects.select_for_update().get(pk=blob.pk)
    blob.state = Blob.State.VERIFIED if actual == blob.digest and size == blob.size else Blob.State.CORRUPT
    blob.verified_at = timezone.now()
    blob.save(update_fields=["state", "verified_at"])
    if blob.state == Blob.State.CORRUPT:
        logger.error("Blob %s is corrupt: stored bytes hash to %s (%d bytes).", blob.prefixed_digest, actual, size)
    return blob


def _project_blob(project: Project, digest: str, field: str) -> Blob:
    blob = Blob.objects.filter(digest=digest, project_links__project=project).first()
    if blob is None:
        raise InvalidInput(
            f"No blob sha256:{digest} has been uploaded to project '{project.slug}'. "
            f"Upload it first with PUT /api/v1/projects/{project.slug}/blobs/sha256:{digest}.",
            field=field,
            code="unknown_blob",
        )
    return blob


# Datasets ---------------------------------------------------------------------------------------------


@transaction.atomic
def dataset_create(*, project: Project, name: str, description: str = "") -> Dataset:
    dataset = Dataset(project=project, name=name, description=description)
    _validated(dataset)
    if Dataset.objects.filter(project=project, name=name).exists():
        raise Conflict(f"Project '{project.slug}' already has a dataset named '{name}'.", field="name")
    dataset.save()
    return dataset


@transaction.atomic
def dataset_update(*, dataset: Dataset, description: str) -> Dataset:
    dataset.description = description
    dataset.save(update_fields=["description"])
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
        blob = _project_blob(dataset.project, _digest(digest, "digest"), "digest")
        existing = DatasetVersion.objects.filter(dataset=dataset, blob=blob).first()
        pinned = {"blob": blob}
    else:
        manifest = _digest(manifest_digest or "", "manifest_digest")
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
    _validated(version)
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
    """Record a run with everything that defines it. Its inputs are fixed from here on."""
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
    _validated(run)
    if Run.objects.filter(project=project, external_id=external_id).exists():
        raise Conflict(f"Project '{project.slug}' already has a run '{external_id}'.", field="external_id")
    run.save()
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
        run.ended_at = ended_at
        fields.append("ended_at")
    if run.is_finished and run.ended_at is None:
        run.ended_at = timezone.now()
        fields.append("ended_at")
    _check_run_times(run)
    _validated(run)
    if fields:
        run.save(update_fields=sorted(set(fields)))
    return run


# Artifacts --------------------------------------------------------------------------------------------


@transaction.atomic
def artifact_create(*, project: Project, name: str, kind: str, description: str = "") -> Artifact:
    artifact = Artifact(project=project, name=name, kind=kind, description=description)
    _validated(artifact)
    if Artifact.objects.filter(project=project, name=name).exists():
        raise Conflict(f"Project '{project.slug}' already has an artifact named '{name}'.", field="name")
    artifact.save()
    return artifact


@transaction.atomic
def artifact_update(*, artifact: Artifact, description: str) -> Artifact:
    artifact.description = description
    artifact.save(update_fields=["description"])
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
    blob = _project_blob(artifact.project, _digest(digest, "digest"), "digest")
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
    _validated(version)
    version.save()
    return version, True
