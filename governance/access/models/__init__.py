from governance.access.models.reviews import AccessReviewCampaign, AccessReviewItem
from governance.access.models.tokens import ApiToken

__all__ = ["AccessReviewCampaign", "AccessReviewItem", "ApiToken"]
