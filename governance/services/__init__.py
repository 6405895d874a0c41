"""Writes for governance. Each rule lives in one module; callers import them from here."""

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
    "api_token_issue",
    "api_token_record_use",
    "api_token_revoke",
    "hash_token",
    "role_grant",
    "role_revoke",
]
