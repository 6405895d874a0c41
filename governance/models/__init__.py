from governance.models.grants import (
    ArtifactGroupObjectPermission,
    ArtifactUserObjectPermission,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
    RoleGrant,
)
from governance.models.tokens import ApiToken

__all__ = [
    "ApiToken",
    "ArtifactGroupObjectPermission",
    "ArtifactUserObjectPermission",
    "ProjectGroupObjectPermission",
    "ProjectUserObjectPermission",
    "RoleGrant",
]
