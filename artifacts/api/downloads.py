"""HTTP responses that carry blob bytes: the whole blob or one byte range (RFC 9110), streamed from storage in
bounded chunks, handed to nginx to send from the local folder (PROVENANT_ACCEL_REDIRECT), or a redirect to a
short-lived presigned URL when the bytes are in S3. Corrupt bytes are never served, on any of these paths; bytes
archived in a class S3 reads only after a restore answer 409 `restore_required`, naming the restore endpoint."""

import base64
import re
from dataclasses import dataclass

from django.conf import settings
from django.http import (
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.reverse import reverse

from artifacts.models import ArtifactVersion, Blob, Project
from artifacts.selectors import BlobReadability, blob_readability
from artifacts.services.blobs import blob_read_record
from artifacts.storage.reads import accel_redirect_uri, iter_blob, presigned_url
from artifacts.storage.tiers import NotReadableNow
from core.errors import Conflict, InvalidInput, NotFound
from core.metrics import DOWNLOADED_BYTES

UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
CONTENT_TYPE = "application/octet-stream"
# The bytes under a digest never change, so a cache may keep them as long as it likes; but every byte is behind
# authentication, so only the client's own cache may: a shared cache would hand them to whoever asks next.
CACHE_CONTENT_ADDRESSED = "private, max-age=31536000, immutable"
# A presigned URL expires and grants access to whoever holds it: nothing may keep the redirect.
CACHE_REDIRECT = "no-store"
RANGE_SPEC = re.compile(r"(\d*)-(\d*)")
# No blob comes near 10^18 bytes; longer digit strings are capped rather than converted, so a hostile header of
# thousands of digits costs nothing (and never trips Python's limit on int() of long strings).
MAX_POSITION_DIGITS = 18
TRUE_VALUES, FALSE_VALUES = {"true", "1", "yes"}, {"false", "0", "no", ""}
# Range headers that nginx's range filter reads as requested_range does: one range in the plain spelling (no spaces,
# no empty list items), with positions short enough that neither side caps or overflows them.
NGINX_SAME_RANGE = re.compile(r"bytes=(?:\d{1,18}-\d{0,18}|-\d{1,18})", re.IGNORECASE)
# Preconditions the app does not evaluate, which nginx's not-modified filter would: against the file's mtime and
# before the ETag is restored, so as 412 where the app answers 200.
NGINX_ONLY_PRECONDITIONS = ("If-Match", "If-Unmodified-Since")


def safe_filename(name: str) -> str:
    cleaned = UNSAFE_FILENAME.sub("_", name).strip("._") or "blob"
    return cleaned[:200]


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start` up to, not including, `end` of a blob of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


class RangeNotSatisfiable(Exception):
    """A single, well-formed range that lies wholly past the end of the blob."""


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a Range header asks of `size` bytes, or None when the whole blob is to be sent.

    None for a header that is not valid `bytes=` syntax (including `first-pos` after `last-pos`): RFC 9110
    §14.2 lets a server ignore a Range it cannot parse, and the full 200 is always correct. None also for
    several ranges: parallel download clients ask for one range per request, a multipart/byteranges body
    would be the only answer to several, and serving many small or overlapping ranges from one request is a
    known amplification (CVE-2011-3192); ignoring Range is again what the RFC allows.

    Raises RangeNotSatisfiable for a single range past the end (`first-pos` ≥ size, or a suffix of 0 bytes).
    """
    if not header:
        return None
    unit, equals, range_set = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in range_set.split(",") if spec.strip()]
    if len(specs) != 1 or not (match := RANGE_SPEC.fullmatch(specs[0])):
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = _position(last)
        if suffix == 0:
            raise RangeNotSatisfiable
        return ByteRange(max(size - suffix, 0), size, size)
    start = _position(first)
    if last and _position(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    end = min(_position(last) + 1, size) if last else size
    return ByteRange(start, end, size)


def _position(digits: str) -> int:
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= MAX_POSITION_DIGITS else 10**MAX_POSITION_DIGITS


def identity_headers(blob: Blob) -> dict[str, str]:
    """What every answer about a blob carries, whatever part of it (if any) the body holds: the strong ETag
    and the RFC 9530 Repr-Digest of the whole blob, so a client can check what it assembled without trusting us."""
    return {
        "ETag": f'"{blob.prefixed_digest}"',
        "Repr-Digest": f"sha-256=:{_base64_digest(blob)}:",
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
    }


def _base64_digest(blob: Blob) -> str:
    return base64.b64encode(bytes.fromhex(blob.digest)).decode()


def blob_response(
    request: Request, blob: Blob, *, filename: str, through: ArtifactVersion | Project
) -> HttpResponseBase:
    """Answer a GET or HEAD for `blob`'s bytes, honouring Range, If-Range, If-None-Match and `?redirect=`.

    Call only after the caller checked the user may read the blob, read `through` an artifact version (with
    its artifact and project loaded) or a project. HEAD answers exactly the headers GET would, without a body
    and without reading storage. Every GET that hands out bytes, or a presigned URL to them, is logged.
    """
    if blob.state == Blob.State.CORRUPT:
        raise Conflict(
            f"Blob {blob.prefixed_digest} failed integrity verification and is quarantined: it is not served. "
            "Upload the original file again to repair it.",
            code="blob_corrupt",
        )
    if blob.is_collected:
        # Only a deleted version's bytes are collected, and its download answered 410 before this: here the bytes
        # are asked for by digest, and the client that hears 404 uploads them again.
        raise NotFound(
            f"The bytes of {blob.prefixed_digest} were removed from storage once no version used them any more. "
            "Upload the file again to store them.",
            code="blob_collected",
        )
    identity = identity_headers(blob)
    disposition = f'attachment; filename="{safe_filename(filename)}"'
    # Read before any answer, a 304 included: a malformed `?redirect=` is refused whatever the client holds.
    redirect = _redirect_requested(request)
    if _none_match(request.headers.get("If-None-Match"), identity["ETag"]):
        return _with_headers(HttpResponseNotModified(), identity, {"Cache-Control": CACHE_CONTENT_ADDRESSED})
    # One HeadObject, only for bytes archived in GLACIER or DEEP_ARCHIVE; HEAD too, so it answers as GET would.
    if not (readability := blob_readability(blob)).readable:
        return _restore_required(request, blob, readability, through)

    head = request.method == "HEAD"
    if redirect:
        url = presigned_url(
            blob.storage_key,
            expires_in=settings.PROVENANT_S3_PRESIGN_SECONDS,
            content_disposition=disposition,
            content_type=CONTENT_TYPE,
            head=head,
        )
        if url is not None:
            if not head:
                blob_read_record(blob=blob, through=through, presigned=True)
                DOWNLOADED_BYTES.labels(via="presigned").inc(blob.size)
            # A client that follows it with a Range header gets the range from S3 itself.
            return _with_headers(HttpResponseRedirect(url), identity, {"Cache-Control": CACHE_REDIRECT})

    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    # If-Range compares strongly (RFC 9110 §13.1.5): a weak tag or a date (we send no Last-Modified) never
    # matches, and then the whole, current blob is the answer.
    if if_range is not None and if_range.strip() != identity["ETag"]:
        range_header = None
    try:
        byte_range = requested_range(range_header, blob.size)
    except RangeNotSatisfiable:
        return _range_not_satisfiable(blob, identity)

    content = {
        "Content-Type": CONTENT_TYPE,
        "Content-Disposition": disposition,
        "Cache-Control": CACHE_CONTENT_ADDRESSED,
    }
    if byte_range is None:
        # Content-Digest describes the body, so only a body that is the whole blob gets one.
        content |= {"Content-Length": str(blob.size), "Content-Digest": f"sha-256=:{_base64_digest(blob)}:"}
        status, start, end = 200, 0, None
    else:
        content |= {"Content-Length": str(byte_range.length), "Content-Range": byte_range.content_range}
        status, start, end = 206, byte_range.start, byte_range.end
    if head:
        return _with_headers(HttpResponse(status=status), identity, content)
    blob_read_record(blob=blob, through=through, byte_range=(start, end) if end is not None else None)
    length = int(content["Content-Length"])
    if (accel := _accel_redirect(request, blob)) is not None:
        DOWNLOADED_BYTES.labels(via="nginx").inc(length)
        return _accel_response(accel, identity, content, partial=byte_range is not None)
    try:
        chunks = iter_blob(blob.storage_key, start, end)
    except NotReadableNow:
        # Archived behind the record's back (a bucket lifecycle rule, say): the same answer, never S3's 403 as a 500.
        return _restore_required(request, blob, BlobReadability("", readable=False, restore_required=True), through)
    DOWNLOADED_BYTES.labels(via="server").inc(length)
    return _with_headers(StreamingHttpResponse(chunks, status=status), identity, content)


def _accel_redirect(request: Request, blob: Blob) -> str | None:
    """The X-Accel-Redirect with which nginx sends this GET's answer exactly as the app would stream it; None when
    the app must stream it (the setting is off, the bytes are in S3, or nginx would answer otherwise).

    Ranges go through nginx, as they must for the point of it: the Python client fetches every large blob as
    parallel ranges tied by If-Range. nginx cannot be told the range the app decided: on the internal redirect its
    range filter re-reads the client's own Range and If-Range. So the app redirects only requests that nginx
    provably answers as it does, and streams the rest itself (only hand-written requests: clients, the Python one
    and curl included, send the plain forms):

    - no Range, or one Range in the plain spelling (NGINX_SAME_RANGE) that the app finds satisfiable and not
      empty. nginx then picks the same bytes (same arithmetic for `first-last`, `first-` and `-suffix`, a last
      byte past the end meaning the end), and reads If-Range as the app does: the ETag, which the config restores
      before the range filter runs, compared exactly (header values arrive trimmed on both sides); a date never
      matches, as the config removes nginx's Last-Modified. So an If-Range mismatch is nginx's whole 200 too. A
      Range in another spelling, several ranges or `first` after `last` may be read differently (nginx answers
      416 to `bytes=5-2`, which the app ignores), so those stay with the app;
    - no If-Match nor If-Unmodified-Since (NGINX_ONLY_PRECONDITIONS). If-None-Match that matched was answered
      304 above; one that did not finds no ETag in nginx's not-modified filter, and If-Modified-Since is turned
      off in the config.
    """
    prefix = settings.PROVENANT_ACCEL_REDIRECT
    if not prefix or any(name in request.headers for name in NGINX_ONLY_PRECONDITIONS):
        return None
    range_header = request.headers.get("Range")
    if range_header is not None and not _nginx_reads_the_same_range(range_header, blob.size):
        return None
    return accel_redirect_uri(blob.storage_key, prefix=prefix)


def _nginx_reads_the_same_range(header: str, size: int) -> bool:
    if not NGINX_SAME_RANGE.fullmatch(header):
        return False
    try:
        byte_range = requested_range(header, size)
    except RangeNotSatisfiable:
        return False
    return byte_range is not None and byte_range.length > 0


def _accel_response(uri: str, identity: dict[str, str], content: dict[str, str], *, partial: bool) -> HttpResponse:
    """An empty answer telling nginx to send the file at `uri`, with every header of the streamed answer that
    nginx does not write itself (the config restores those it drops on the redirect).

    Left to nginx: Content-Length and Content-Range, which it writes from the file and the range it applies; on
    this empty body the first must be 0, which also lets nginx keep the connection to the app alive. And on a
    whole answer Accept-Ranges, which nginx's range filter adds itself (it adds none to a 206).
    """
    headers = {name: value for name, value in content.items() if name not in ("Content-Length", "Content-Range")}
    if not partial:
        identity = {name: value for name, value in identity.items() if name != "Accept-Ranges"}
    return _with_headers(HttpResponse(), identity, headers, {"X-Accel-Redirect": uri})


def _none_match(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/"x" matches "x"."""
    if not header:
        return False
    tags = parse_etags(header)
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


def _redirect_requested(request: Request) -> bool:
    """`?redirect=true` asks for a presigned URL; PROVENANT_S3_REDIRECT_DOWNLOADS gives one to every request.

    `?redirect=false` cannot opt out of the setting: an operator turns it on so that web workers stop carrying
    blob bytes.
    """
    raw = request.query_params.get("redirect")
    if raw is None or raw.strip().lower() in FALSE_VALUES:
        return settings.PROVENANT_S3_REDIRECT_DOWNLOADS
    if raw.strip().lower() in TRUE_VALUES:
        return True
    raise InvalidInput(f"redirect must be true or false, not '{raw[:20]}'.", field="redirect")


def _restore_required(
    request: Request, blob: Blob, readability: BlobReadability, through: ArtifactVersion | Project
) -> JsonResponse:
    """409 for bytes S3 reads only after a restore: what to do (POST the restore endpoint, which this names), and
    whether a restore is already on its way. A JSON body of its own, as the 416 has: the error shape plus fields a
    client can act on without parsing the message."""
    if isinstance(through, ArtifactVersion):
        url = reverse("api:artifactversion-restore", kwargs={"pk": through.pk}, request=request)
    else:
        url = reverse(
            "api:project-blob-restore", kwargs={"slug": through.slug, "digest": blob.prefixed_digest}, request=request
        )
    where = f"in {readability.storage_class}" if readability.storage_class else "in a storage class"
    archived = f"The bytes of {blob.prefixed_digest} are archived {where} that S3 reads only after a restore."
    if readability.restore_in_progress:
        then = "A restore is already in progress: download again once it is done (S3 takes hours)."
    else:
        then = f"Restore first: POST {url} asks S3 for a restored copy; download again once it is done (hours)."
    body = {
        "detail": f"{archived} {then}",
        "code": "restore_required",
        "storage_class": readability.storage_class,
        "restore_in_progress": readability.restore_in_progress,
        "restore_url": url,
    }
    return _with_headers(JsonResponse(body, status=409), identity_headers(blob))


def _range_not_satisfiable(blob: Blob, identity: dict[str, str]) -> HttpResponse:
    # Also the answer to HEAD, body included, so its Content-Length is GET's: the server drops the body of a
    # response to HEAD (gunicorn and runserver both do), as it does for the JSON error of any other refusal.
    body = {
        "detail": f"The requested range lies outside the {blob.size} bytes of {blob.prefixed_digest}.",
        "code": "range_not_satisfiable",
    }
    return _with_headers(JsonResponse(body, status=416), identity, {"Content-Range": f"bytes */{blob.size}"})


def _with_headers(response: HttpResponseBase, *groups: dict[str, str]) -> HttpResponseBase:
    for group in groups:
        for name, value in group.items():
            response[name] = value
    return response


_BLOB_HEADERS = [
    OpenApiParameter(
        "Range",
        str,
        OpenApiParameter.HEADER,
        description="One byte range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix`, answered with 206. "
        "Several ranges, or a header that is not valid, are ignored: the whole blob comes back with 200.",
    ),
    OpenApiParameter(
        "If-Range",
        str,
        OpenApiParameter.HEADER,
        description="The blob's ETag: the Range is honoured only if it matches, otherwise the whole blob is sent.",
    ),
    OpenApiParameter(
        "If-None-Match",
        str,
        OpenApiParameter.HEADER,
        description="The blob's ETag: answers 304 without a body when it matches.",
    ),
    OpenApiParameter(
        "redirect",
        bool,
        description="With S3 storage, answer 302 to a short-lived presigned URL for the bytes instead of streaming "
        "them (the default when the server sets PROVENANT_S3_REDIRECT_DOWNLOADS). Ignored with local storage.",
    ),
    OpenApiParameter(
        "ETag",
        str,
        OpenApiParameter.HEADER,
        response=[200, 206, 302, 304, 416],
        description='Strong validator: `"sha256:<hex>"`, the content digest.',
    ),
    OpenApiParameter(
        "Repr-Digest",
        str,
        OpenApiParameter.HEADER,
        response=[200, 206, 302, 304, 416],
        description="RFC 9530 SHA-256 of the whole blob, also on 206, 302 and 304: `sha-256=:<base64>:`.",
    ),
    OpenApiParameter(
        "Content-Digest",
        str,
        OpenApiParameter.HEADER,
        response=[200],
        description="RFC 9530 SHA-256 of the body, sent when the body is the whole blob.",
    ),
    OpenApiParameter(
        "Content-Length",
        int,
        OpenApiParameter.HEADER,
        response=[200, 206],
        description="The body's length: the whole blob's size on 200 (HEAD included), the range's on 206.",
    ),
    OpenApiParameter(
        "Location", str, OpenApiParameter.HEADER, response=[302], description="The presigned URL of the bytes."
    ),
    OpenApiParameter(
        "Content-Range",
        str,
        OpenApiParameter.HEADER,
        response=[206, 416],
        description="`bytes first-last/size` on 206; `bytes */size` on 416.",
    ),
]

_BLOB_RESPONSES = {
    (200, CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="The whole blob."),
    (206, CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="The one requested byte range."),
    302: OpenApiResponse(description="Redirect to a presigned S3 URL for the bytes (`?redirect=true`)."),
    304: OpenApiResponse(description="If-None-Match matched: the client's copy is current."),
    (409, "application/json"): OpenApiResponse(
        OpenApiTypes.OBJECT,
        description="The blob failed verification and is quarantined (`blob_corrupt`); or its bytes are archived in a "
        "class S3 reads only after a restore (`restore_required`, with `storage_class`, `restore_in_progress` and "
        "`restore_url`, the endpoint to POST to ask for one).",
    ),
    (416, "application/json"): OpenApiResponse(
        OpenApiTypes.OBJECT, description="The range starts past the end of the blob."
    ),
}

# The OpenAPI description of every endpoint answered by blob_response.
blob_download_schema = extend_schema(parameters=_BLOB_HEADERS, responses=_BLOB_RESPONSES)


def version_download_schema(gone: OpenApiResponse) -> extend_schema:
    """blob_download_schema for a version's download, which also answers 410 once the version is deleted."""
    return extend_schema(parameters=_BLOB_HEADERS, responses={**_BLOB_RESPONSES, (410, "application/json"): gone})
