"""Provenant's Python client: push what a pipeline trains, pull what it serves, by digest and with resume.

from provenant_client import Client

with Client() as client:  # PROVENANT_URL / PROVENANT_TOKEN, or the default profile
    pushed = client.push("model.safetensors", project="fraud-detection", artifact="fraud-scorer")
    client.pull(pushed.version["id"], "serving/")
"""

from provenant_client.client import Client, PushResult, UploadResult
from provenant_client.config import save_profile
from provenant_client.errors import (
    AuthenticationFailed,
    Conflict,
    DigestMismatch,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ProvenantError,
    ServerError,
)
from provenant_client.runs import DirtyWorkTree, Run, RunStateError

__all__ = [
    "AuthenticationFailed",
    "Client",
    "Conflict",
    "DigestMismatch",
    "DirtyWorkTree",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "ProvenantError",
    "PushResult",
    "Run",
    "RunStateError",
    "ServerError",
    "UploadResult",
    "save_profile",
]
__version__ = "0.1.0"
