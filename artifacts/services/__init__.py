"""Writes for the artifact store. Every create or change of a project, blob, dataset, run or artifact
version goes through a function here; views, admin, commands and tasks only translate to and from it."""

from artifacts.services.blobs import blob_store, require_project_blob
from artifacts.services.catalog import (
    artifact_create,
    artifact_update,
    artifact_version_publish,
    dataset_create,
    dataset_update,
    dataset_version_create,
    project_create,
    project_update,
    run_create,
    run_update,
)
from artifacts.services.integrity import blob_verify

__all__ = [
    "artifact_create",
    "artifact_update",
    "artifact_version_publish",
    "blob_store",
    "blob_verify",
    "dataset_create",
    "dataset_update",
    "dataset_version_create",
    "project_create",
    "project_update",
    "require_project_blob",
    "run_create",
    "run_update",
]
