from governance.models.audit import AuditEntry, AuditLogHead, AuditTreeNode, SignedTreeHead
from governance.models.grants import (
    ArtifactGroupObjectPermission,
    ArtifactUserObjectPermission,
    ProjectGroupObjectPermission,
    ProjectUserObjectPermission,
    RoleGrant,
)
from governance.models.registry import (
    ModelAlias,
    ModelVersion,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Stage,
    StageTransition,
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
    "ModelAlias",
    "ModelVersion",
    "ProjectGroupObjectPermission",
    "ProjectUserObjectPermission",
    "PromotionDecision",
    "PromotionPolicy",
    "PromotionRequest",
    "RegisteredModel",
    "RoleGrant",
    "SignedTreeHead",
    "Stage",
    "StageTransition",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookSecret",
]
