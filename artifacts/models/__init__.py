from artifacts.models.artifacts import Artifact, ArtifactScopedQuerySet, ArtifactVersion
from artifacts.models.blobs import Blob, ProjectBlob, storage_key_for
from artifacts.models.datasets import Dataset, DatasetVersion
from artifacts.models.grants import RoleGrant
from artifacts.models.permissions import (
    ArtifactGroupObjectPermission,
    ArtifactUserObjectPermission,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
)
from artifacts.models.projects import Project
from artifacts.models.runs import Run, RunArtifactInput, RunDatasetInput
from artifacts.models.tombstones import VersionTombstone
from artifacts.models.uploads import UploadSession

__all__ = [
    "Artifact",
    "ArtifactGroupObjectPermission",
    "ArtifactScopedQuerySet",
    "ArtifactUserObjectPermission",
    "ArtifactVersion",
    "Blob",
    "Dataset",
    "DatasetVersion",
    "Project",
    "ProjectBlob",
    "ProjectGroupObjectPermission",
    "ProjectUserObjectPermission",
    "RoleGrant",
    "Run",
    "RunArtifactInput",
    "RunDatasetInput",
    "UploadSession",
    "VersionTombstone",
    "storage_key_for",
]
