from governance.access.models.reviews import AccessReviewCampaign, AccessReviewItem
from governance.access.models.tokens import ApiToken, ServiceAccount

__all__ = ["AccessReviewCampaign", "AccessReviewItem", "ApiToken", "ServiceAccount"]
