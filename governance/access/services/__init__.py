"""Writes for tokens and access reviews. Each rule lives in one module; callers import them from here."""

from governance.access.services.reviews import (
    BulkDecision,
    Refusal,
    campaign_open,
    campaign_open_scheduled,
    item_decide,
    items_decide,
)
from governance.access.services.tokens import (
    LAST_USED_RESOLUTION,
    MAX_TOKEN_LIFETIME,
    TOKEN_PREFIX,
    api_token_issue,
    api_token_record_use,
    api_token_revoke,
    hash_token,
    may_manage_tokens_of,
    service_account_create,
    service_account_deactivate,
    service_account_open,
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
    "may_manage_tokens_of",
    "service_account_create",
    "service_account_deactivate",
    "service_account_open",
]
