"""Writes for governance. Each rule lives in one module; callers import them from here."""

from governance.services.access_reviews import (
    BulkDecision,
    Refusal,
    campaign_open,
    campaign_open_scheduled,
    item_decide,
    items_decide,
)
from governance.services.grants import role_grant, role_revoke
from governance.services.tokens import (
    LAST_USED_RESOLUTION,
    MAX_TOKEN_LIFETIME,
    TOKEN_PREFIX,
    api_token_issue,
    api_token_record_use,
    api_token_revoke,
    hash_token,
)

__all__ = [
    "LAST_USED_RESOLUTION",
    "MAX_TOKEN_LIFETIME",
    "TOKEN_PREFIX",
    "BulkDecision",
    "Refusal",
    "api_token_issue",
    "api_token_record_use",
    "api_token_revoke",
    "campaign_open",
    "campaign_open_scheduled",
    "hash_token",
    "item_decide",
    "items_decide",
    "role_grant",
    "role_revoke",
]
