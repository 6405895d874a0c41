from governance.access.models.reviews import AccessReviewCampaign, AccessReviewItem
from governance.access.models.tokens import ApiToken, ApiTokenUse, ServiceAccount

__all__ = ["AccessReviewCampaign", "AccessReviewItem", "ApiToken", "ApiTokenUse", "ServiceAccount"]
