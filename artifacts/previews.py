"""What a version's bytes look like, without downloading them: the first rows of a small CSV, a small JSON document
pretty-printed, a small text file, or the header of a safetensors file (its tensors' names, dtypes and shapes).

Pure: bytes in, a `Preview` out; reading the bytes (and logging the read) is artifacts/services/previews.py's. Every
input is someone's upload, so nothing here trusts it: text must decode as UTF-8 and hold no NUL, a JSON document
too deep or a number too long falls back to plain text, and a safetensors header must say a sane length, fit in the
file and be a JSON object of well-formed tensor entries, or there is no summary and the preview says why.

ONNX files are summarised by artifacts/onnx_header.py: their declarations sit among the weights, so only files small
enough to read whole are.
"""

import csv
import io
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

#: Text, JSON and CSV files at most this large are previewed whole; larger ones are not (a cut JSON is not JSON).
TEXT_LIMIT = 64 * 1024
CSV_ROWS = 50
CSV_COLUMNS = 40
#: safetensors stores an 8-byte little-endian header length, then the JSON header.
SAFETENSORS_LENGTH_BYTES = 8
#: The longest header summarised. Real ones are a few KiB to a few hundred (a tensor entry is ~100 bytes); the format
#: itself allows 100 MB, which is no page's business to read.
SAFETENSORS_HEADER_LIMIT = 2 * 1024 * 1024
SAFETENSORS_TENSORS_SHOWN = 200

PreviewFormat = Literal["text", "json", "csv", "safetensors", "onnx", "none"]

MEDIA_TYPE_FORMATS = {
    "application/json": "json",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/onnx": "onnx",
    "application/x-onnx": "onnx",
}
SUFFIX_FORMATS = {
    ".safetensors": "safetensors",
    ".onnx": "onnx",
    ".json": "json",
    ".csv": "csv",
    ".txt": "text",
    ".md": "text",
    ".yaml": "text",
    ".yml": "text",
    ".toml": "text",
    ".cfg": "text",
    ".ini": "text",
    ".log": "text",
    ".jsonl": "text",
}


class PreviewRefused(ValueError):
    """The bytes are not what their name says, or not something a page should show: `str()` says why, in a
    sentence shown on the page."""


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def parameters(self) -> int:
        return math.prod(self.shape)

    @property
    def shape_text(self) -> str:
        return "[" + ", ".join(str(size) for size in self.shape) + "]"


@dataclass(frozen=True)
class Preview:
    """What the page shows of a file: `format` says which of the fields are filled; "none" with `reason` when
    there is nothing to show. `note` qualifies a preview that is shown (a CSV cut to its first rows)."""

    format: PreviewFormat
    reason: str = ""
    note: str = ""
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    tensor_count: int = 0
    parameter_count: int = 0
    metadata: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def refused(cls, reason: str) -> "Preview":
        return cls(format="none", reason=reason)


def preview_format(filename: str, media_type: str) -> PreviewFormat:
    """Which preview suits a file, by its name's suffix (what the publisher saw), else its media type."""
    suffix = PurePosixPath(filename.strip()).suffix.lower() if filename else ""
    if suffix in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffix]
    media_type = media_type.split(";", 1)[0].strip().lower()
    if media_type in MEDIA_TYPE_FORMATS:
        return MEDIA_TYPE_FORMATS[media_type]
    if media_type.startswith("text/") or media_type.endswith("+json"):
        return "json" if media_type.endswith("+json") else "text"
    return "none"


def decoded_text(data: bytes) -> str:
    """`data` as text if it is UTF-8 (a byte order mark dropped) with no NUL; PreviewRefused otherwise."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PreviewRefused(
            f"The file is not UTF-8 text (byte {error.start} is not valid UTF-8): no preview is shown."
        ) from None
    if "\x00" in text:
        raise PreviewRefused("The file holds NUL bytes, so it is binary, not text: no preview is shown.")
    return text


def text_preview(data: bytes, fmt: PreviewFormat) -> Preview:
    """A whole small file shown as `fmt` ("text", "json" or "csv"); a JSON or CSV file that does not parse as one
    is shown as plain text, and the note says so."""
    if len(data) > TEXT_LIMIT:
        raise PreviewRefused(
            f"The file is larger than {TEXT_LIMIT // 1024} KiB: only smaller text files are previewed."
        )
    text = decoded_text(data)
    if fmt == "json":
        try:
            document = json.loads(text)
            return Preview(format="json", text=json.dumps(document, indent=2, ensure_ascii=False))
        except (ValueError, RecursionError):
            # ValueError: not JSON, or an integer longer than Python converts; RecursionError: nested too deep.
            return Preview(format="text", text=text, note="It is not valid JSON, so it is shown as plain text.")
    if fmt == "csv":
        return _csv_preview(text)
    return Preview(format="text", text=text)


def _csv_preview(text: str) -> Preview:
    """The header and the first CSV_ROWS rows, each cut to CSV_COLUMNS columns and padded to the widest."""
    rows: list[list[str]] = []
    more_rows = cut_columns = False
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            if len(rows) == CSV_ROWS + 1:
                more_rows = True
                break
            cut_columns = cut_columns or len(row) > CSV_COLUMNS
            rows.append(row[:CSV_COLUMNS])
    except csv.Error:
        return Preview(format="text", text=text, note="It is not valid CSV, so it is shown as plain text.")
    if not rows:
        return Preview.refused("The file is empty: there is nothing to preview.")
    notes = [
        f"The first {CSV_ROWS} rows after the header are shown." if more_rows else "",
        f"Only the first {CSV_COLUMNS} columns are shown." if cut_columns else "",
    ]
    width = max(len(row) for row in rows)
    return Preview(
        format="csv", rows=[row + [""] * (width - len(row)) for row in rows], note=" ".join(filter(None, notes))
    )


def safetensors_header_length(prefix: bytes, file_size: int) -> int:
    """The header length a safetensors file's first 8 bytes state, once checked against the file and the limit."""
    if len(prefix) < SAFETENSORS_LENGTH_BYTES or file_size < SAFETENSORS_LENGTH_BYTES:
        raise PreviewRefused("The file is shorter than a safetensors header: no summary is shown.")
    (length,) = struct.unpack("<Q", prefix[:SAFETENSORS_LENGTH_BYTES])
    if length == 0 or length > file_size - SAFETENSORS_LENGTH_BYTES:
        raise PreviewRefused(
            f"The file states a header of {length} bytes, which does not fit in its {file_size} bytes: "
            "it is not a valid safetensors file."
        )
    if length > SAFETENSORS_HEADER_LIMIT:
        raise PreviewRefused(
            f"The file states a header of {length} bytes, more than the {SAFETENSORS_HEADER_LIMIT // (1024 * 1024)} "
            "MiB summarised here: no summary is shown."
        )
    return length


def safetensors_summary(header: bytes) -> Preview:
    """The tensors a safetensors header describes (name, dtype, shape), largest files cut to the first
    SAFETENSORS_TENSORS_SHOWN by name, with the total count and parameters, and its free-text `__metadata__`."""
    try:
        document = json.loads(decoded_text(header))
    except PreviewRefused:
        raise PreviewRefused("The safetensors header is not UTF-8 JSON: no summary is shown.") from None
    except (ValueError, RecursionError):
        raise PreviewRefused("The safetensors header is not valid JSON: no summary is shown.") from None
    if not isinstance(document, dict):
        raise PreviewRefused("The safetensors header is not a JSON object: no summary is shown.")
    metadata = document.pop("__metadata__", {})
    if not isinstance(metadata, dict):
        raise PreviewRefused("The safetensors header's __metadata__ is not an object: no summary is shown.")
    tensors = sorted((_tensor(name, entry) for name, entry in document.items()), key=lambda tensor: tensor.name)
    return Preview(
        format="safetensors",
        tensors=tensors[:SAFETENSORS_TENSORS_SHOWN],
        tensor_count=len(tensors),
        parameter_count=sum(tensor.parameters for tensor in tensors),
        metadata=[(str(key), str(value)) for key, value in sorted(metadata.items())],
        note=f"The first {SAFETENSORS_TENSORS_SHOWN} tensors by name are listed."
        if len(tensors) > SAFETENSORS_TENSORS_SHOWN
        else "",
    )


def _tensor(name: str, entry: object) -> Tensor:
    if not isinstance(entry, dict):
        raise PreviewRefused(f"Tensor '{name}' in the safetensors header is not an object: no summary is shown.")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if (
        not isinstance(dtype, str)
        or not isinstance(shape, list)
        or not all(_count(size) for size in shape)
        or not (isinstance(offsets, list) and len(offsets) == 2 and all(_count(offset) for offset in offsets))
    ):
        raise PreviewRefused(
            f"Tensor '{name}' in the safetensors header lacks a dtype, a shape of sizes or two data offsets: "
            "no summary is shown."
        )
    return Tensor(name=name, dtype=dtype, shape=tuple(shape))


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
