"""Reading a version's bytes to preview them (artifacts/previews.py and onnx_header.py parse them): only the
bytes a preview needs, in bounded reads, each logged as a read of that byte range, as the download endpoint logs one.
A preview shows the bytes (or what they hold) to the reader, so it is a read like any download, and the artifact's
history says who looked."""

from artifacts.models import ArtifactVersion, Blob
from artifacts.onnx_header import ONNX_LIMIT, onnx_summary
from artifacts.previews import (
    SAFETENSORS_LENGTH_BYTES,
    TEXT_LIMIT,
    Preview,
    PreviewRefused,
    preview_format,
    safetensors_header_length,
    safetensors_summary,
    text_preview,
)
from artifacts.selectors import artifact_version_downloadable
from artifacts.services.blobs import blob_read_record
from artifacts.storage.reads import iter_blob
from artifacts.storage.tiers import NotReadableNow

#: The first read of a safetensors file: its length field and, for most files, its whole header.
SAFETENSORS_FIRST_READ = 64 * 1024


def artifact_version_preview(*, version: ArtifactVersion) -> Preview:
    """What the page shows of `version`'s bytes, read and logged now; a Preview of format "none" saying why when
    there is nothing to show (an unknown or binary format, a file too large, bytes deleted, quarantined or
    archived, or bytes that are not what their name says).

    Call only for a user who may read the version (it is visible to them), with its artifact, project and blob
    loaded: the same precondition as the download it stands in for.
    """
    blob = version.blob
    if getattr(version, "tombstone", None) is not None or blob.is_collected:
        return Preview.refused("The version was deleted: its bytes are not served, so there is no preview.")
    if blob.state == Blob.State.CORRUPT:
        return Preview.refused("The bytes failed verification and are quarantined: there is no preview.")
    fmt = preview_format(str(version.metadata.get("filename") or ""), version.media_type)
    if fmt == "none":
        return Preview.refused(
            "Only text, JSON and CSV files and safetensors and ONNX models are previewed; this file is none of those "
            f"(media type {version.media_type})."
        )
    if fmt == "onnx" and blob.size > ONNX_LIMIT:
        return Preview.refused(
            f"The file is larger than {ONNX_LIMIT // (1024 * 1024)} MiB: an ONNX model's declarations sit among its "
            "weights, so only smaller ONNX files, read whole, are summarised."
        )
    if fmt in ("text", "json", "csv") and blob.size > TEXT_LIMIT:
        return Preview.refused(
            f"The file is larger than {TEXT_LIMIT // 1024} KiB: only smaller text files are previewed. "
            "Download it to read it."
        )
    if not artifact_version_downloadable(version):
        return Preview.refused("The bytes are archived and must be restored before they can be read: no preview.")
    try:
        if fmt == "safetensors":
            return _safetensors(version)
        if fmt == "onnx":
            return onnx_summary(_read(version, 0, blob.size))
        return text_preview(_read(version, 0, blob.size), fmt)
    except PreviewRefused as refusal:
        return Preview.refused(str(refusal))
    except (FileNotFoundError, NotReadableNow):
        return Preview.refused("The bytes cannot be read from storage now: there is no preview.")


def _safetensors(version: ArtifactVersion) -> Preview:
    size = version.blob.size
    first = _read(version, 0, min(size, SAFETENSORS_FIRST_READ))
    length = safetensors_header_length(first, size)
    end = SAFETENSORS_LENGTH_BYTES + length
    header = first[SAFETENSORS_LENGTH_BYTES:end]
    if end > len(first):
        header += _read(version, len(first), end)
    return safetensors_summary(header)


def _read(version: ArtifactVersion, start: int, end: int) -> bytes:
    """Bytes `start` up to, not including, `end`: logged first, as a download logs before it sends, then read."""
    if end <= start:
        return b""
    blob_read_record(blob=version.blob, through=version, byte_range=(start, end))
    with iter_blob(version.blob.storage_key, start, end) as chunks:
        return b"".join(chunks)
