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
from governance.models.webhooks import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSecret

__all__ = [
    "AccessReviewCampaign",
    "AccessReviewItem",
    "ApiToken",
    "ArtifactGroupObjectPermission",
    "ArtifactUserObjectPermission",
    "AuditEntry",
    "AuditLogHead",
    "AuditTreeNode",
    "Event",
    "ProjectGroupObjectPermission",
    "ProjectUserObjectPermission",
    "RoleGrant",
    "SignedTreeHead",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookSecret",
]
