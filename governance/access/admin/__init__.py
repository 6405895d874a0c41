"""The admin of tokens, role grants and access reviews: records, and what only administrators do (tokens revoked,
grants given and revoked, review campaigns opened). Decisions on review items are the portal's.

One module per family, each registering its admins when imported (Django's autodiscover imports this package).
"""

from governance.access.admin.grants import RoleGrantAdmin
from governance.access.admin.reviews import AccessReviewCampaignAdmin, AccessReviewItemAdmin
from governance.access.admin.tokens import ApiTokenAdmin, ServiceAccountAdmin

__all__ = [
    "AccessReviewCampaignAdmin",
    "AccessReviewItemAdmin",
    "ApiTokenAdmin",
    "RoleGrantAdmin",
    "ServiceAccountAdmin",
]
