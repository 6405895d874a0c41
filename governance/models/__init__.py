from governance.models.audit import AuditEntry, AuditLogHead, AuditTreeNode, SignedTreeHead
from governance.models.grants import (
    ArtifactGroupObjectPermission,
    ArtifactUserObjectPermission,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
    RoleGrant,
)
from governance.models.reviews import AccessReviewCampaign, AccessReviewItem
from governance.models.tokens import ApiToken

__all__ = [
    "AccessReviewCampaign",
    "AccessReviewItem",
    "ApiToken",
    "ArtifactGroupObjectPermission",
    "ArtifactUserObjectPermission",
    "AuditEntry",
    "AuditLogHead",
    "AuditTreeNode",
    "ProjectGroupObjectPermission",
    "ProjectUserObjectPermission",
    "RoleGrant",
    "SignedTreeHead",
]
