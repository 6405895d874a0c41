"""HTTP responses that carry blob bytes, streamed from storage in bounded chunks."""

import base64
import re

from django.http import HttpResponse, StreamingHttpResponse

from artifacts.models import Blob
from artifacts.storage.reads import iter_blob
from governance.errors import Conflict

UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    cleaned = UNSAFE_FILENAME.sub("_", name).strip("._") or "blob"
    return cleaned[:200]


def digest_headers(blob: Blob) -> dict[str, str]:
    """ETag and RFC 9530 Content-Digest, so a client can check what it received without trusting us."""
    b64 = base64.b64encode(bytes.fromhex(blob.digest)).decode()
    return {
        "ETag": f'"{blob.prefixed_digest}"',
        "Content-Digest": f"sha-256=:{b64}:",
        "Content-Length": str(blob.size),
        "Content-Type": "application/octet-stream",
        "X-Content-Type-Options": "nosniff",
    }


def blob_response(blob: Blob, *, filename: str, head: bool = False) -> HttpResponse:
    if blob.state == Blob.State.CORRUPT:
        raise Conflict(
            f"Blob {blob.prefixed_digest} failed integrity verification and is quarantined: it is not served. "
            "Upload the original file again to repair it.",
            code="blob_corrupt",
        )
    response = HttpResponse() if head else StreamingHttpResponse(iter_blob(blob.storage_key))
    for name, value in digest_headers(blob).items():
        response[name] = value
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(filename)}"'
    return response
