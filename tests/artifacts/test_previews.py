"""Previews of a version's bytes (artifacts/previews.py parses, artifacts/services/previews.py reads and logs):
small text, JSON and CSV files shown, safetensors headers summarised from their header bytes alone, and every
hostile or unsuitable file answered with a sentence instead of an error."""

import json
import struct

import onnx
import pytest

from artifacts.onnx_header import onnx_summary
from artifacts.previews import (
    CSV_ROWS,
    SAFETENSORS_HEADER_LIMIT,
    TEXT_LIMIT,
    PreviewRefused,
    preview_format,
    safetensors_header_length,
    safetensors_summary,
    text_preview,
)
from artifacts.services import previews as preview_service
from artifacts.services.previews import artifact_version_preview
from core.audit.actions import AuditAction
from core.models import AuditEntry
from tests.artifacts.factories import ArtifactVersionFactory


def safetensors(header: dict, data: bytes = b"") -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


WEIGHTS = {
    "weight": {"dtype": "F32", "shape": [1, 4], "data_offsets": [0, 16]},
    "bias": {"dtype": "F32", "shape": [1], "data_offsets": [16, 20]},
    "__metadata__": {"format": "pt"},
}


# Parsing -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "media_type", "expected"),
    [
        ("model.safetensors", "application/octet-stream", "safetensors"),
        ("REPORT.JSON", "application/octet-stream", "json"),
        ("", "application/json", "json"),
        ("rows.csv", "application/octet-stream", "csv"),
        ("", "text/csv; charset=utf-8", "csv"),
        ("notes", "text/plain", "text"),
        ("model.onnx", "application/octet-stream", "onnx"),
        ("", "application/x-onnx", "onnx"),
        ("weights.bin", "application/octet-stream", "none"),
    ],
)
def test_the_format_comes_from_the_file_name_then_the_media_type(filename, media_type, expected):
    assert preview_format(filename, media_type) == expected


def test_json_is_pretty_printed_as_recorded():
    preview = text_preview(b'{"b": 1, "A\xc3\xa9": [1, 2]}', "json")

    assert preview.format == "json"
    assert preview.text == '{\n  "b": 1,\n  "A\u00e9": [\n    1,\n    2\n  ]\n}'


@pytest.mark.parametrize(
    "data", [b'{"cut": ', b"[" * 30_000 + b"]" * 30_000, b"1" * 5000], ids=["truncated", "too-deep", "long-number"]
)
def test_json_that_does_not_parse_is_shown_as_text_and_says_so(data):
    preview = text_preview(data, "json")

    assert preview.format == "text"
    assert preview.text == data.decode()
    assert "not valid JSON" in preview.note


def test_csv_shows_the_header_and_the_first_rows_padded_to_the_widest():
    data = "a,b\n" + "".join(f"{n},x\n" for n in range(CSV_ROWS + 10)) + "short\n"
    preview = text_preview(data.encode(), "csv")

    assert preview.format == "csv"
    assert preview.rows[0] == ["a", "b"]
    assert len(preview.rows) == CSV_ROWS + 1
    assert f"first {CSV_ROWS} rows" in preview.note

    assert text_preview(b"a,b\nshort\n", "csv").rows == [["a", "b"], ["short", ""]]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"caf\xe9 au lait", "not UTF-8"),
        (b"text\x00with a NUL", "binary"),
        (b"x" * (TEXT_LIMIT + 1), "larger than 64 KiB"),
    ],
    ids=["latin-1", "nul", "too-large"],
)
def test_text_that_is_not_text_or_too_large_is_refused_with_a_reason(data, why):
    with pytest.raises(PreviewRefused, match=why):
        text_preview(data, "text")


def test_a_safetensors_header_lists_names_dtypes_shapes_and_parameters():
    data = safetensors(WEIGHTS, bytes(20))
    length = safetensors_header_length(data[:8], len(data))

    preview = safetensors_summary(data[8 : 8 + length])

    assert [(t.name, t.dtype, t.shape_text) for t in preview.tensors] == [
        ("bias", "F32", "[1]"),
        ("weight", "F32", "[1, 4]"),
    ]
    assert (preview.tensor_count, preview.parameter_count) == (2, 5)
    assert preview.metadata == [("format", "pt")]


@pytest.mark.parametrize(
    ("prefix", "size", "why"),
    [
        (b"\x05\x00\x00", 3, "shorter than a safetensors header"),
        (struct.pack("<Q", 2**64 - 1), 100, "does not fit"),
        (struct.pack("<Q", 0), 100, "does not fit"),
        (struct.pack("<Q", 200), 100, "does not fit"),
        (struct.pack("<Q", SAFETENSORS_HEADER_LIMIT + 1), 10**10, "more than the 2 MiB"),
    ],
    ids=["truncated-length", "huge", "zero", "past-the-end", "over-the-limit"],
)
def test_a_safetensors_header_length_that_is_absurd_is_refused(prefix, size, why):
    with pytest.raises(PreviewRefused, match=why):
        safetensors_header_length(prefix, size)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0,', "not valid JSON"),
        (b'{"w\xff": {}}', "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}', "lacks a dtype, a shape"),
        (b'{"w": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}', "lacks a dtype, a shape"),
        (b'{"w": {"dtype": "F32", "shape": [1]}}', "two data offsets"),
        (b'{"w": 3}', "is not an object"),
        (b'{"__metadata__": [1]}', "__metadata__ is not an object"),
    ],
)
def test_a_hostile_safetensors_header_is_refused_not_raised(header, why):
    with pytest.raises(PreviewRefused, match=why):
        safetensors_summary(header)


# Reading and logging -----------------------------------------------------------------------------------------------


def reads_logged() -> list[dict]:
    return [
        json.loads(entry.changes)["range"]
        for entry in AuditEntry.objects.filter(action=AuditAction.BLOB_DOWNLOADED).order_by("seq")
    ]


@pytest.mark.django_db
def test_a_safetensors_summary_reads_only_its_header_and_logs_that_read(isolated_blob_folder):
    data = safetensors(WEIGHTS, bytes(20))
    version = ArtifactVersionFactory(content=data, metadata={"filename": "model.safetensors"})

    preview = artifact_version_preview(version=version)

    assert preview.format == "safetensors"
    assert preview.tensor_count == 2
    assert reads_logged() == [{"first": 0, "last": len(data) - 1, "length": len(data)}]


@pytest.mark.django_db
def test_a_large_safetensors_file_is_read_no_further_than_its_header(isolated_blob_folder, monkeypatch):
    monkeypatch.setattr(preview_service, "SAFETENSORS_FIRST_READ", 16)
    header = {f"layer.{n}": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [8 * n, 8 * n + 8]} for n in range(9)}
    data = safetensors(header, bytes(72))
    version = ArtifactVersionFactory(content=data, metadata={"filename": "big.safetensors"})
    header_end = len(data) - 72

    preview = artifact_version_preview(version=version)

    assert preview.tensor_count == 9
    assert reads_logged() == [
        {"first": 0, "last": 15, "length": 16},
        {"first": 16, "last": header_end - 1, "length": header_end - 16},
    ]


@pytest.mark.django_db
def test_a_small_json_file_is_read_whole_and_logged(isolated_blob_folder):
    version = ArtifactVersionFactory(content=b'{"auc": 0.91}', media_type="application/json")

    preview = artifact_version_preview(version=version)

    assert (preview.format, preview.text) == ("json", '{\n  "auc": 0.91\n}')
    assert reads_logged() == [{"first": 0, "last": 12, "length": 13}]


@pytest.mark.django_db
def test_binary_or_too_large_files_are_not_read_at_all(isolated_blob_folder):
    binary = ArtifactVersionFactory(content=b"\x00\x01", metadata={"filename": "weights.bin"})
    large = ArtifactVersionFactory(content=b"x" * (TEXT_LIMIT + 1), media_type="text/plain")

    assert "none of those" in artifact_version_preview(version=binary).reason
    assert "larger than 64 KiB" in artifact_version_preview(version=large).reason
    assert reads_logged() == []


@pytest.mark.django_db
def test_bytes_missing_from_storage_give_a_reason_not_an_error(isolated_blob_folder):
    version = ArtifactVersionFactory(content=b"hello", media_type="text/plain")
    (isolated_blob_folder / version.blob.storage_key).unlink()

    assert "cannot be read from storage" in artifact_version_preview(version=version).reason


# ONNX, read with the onnx package -----------------------------------------------------------------------------------


def onnx_model() -> bytes:
    """A linear layer y = x·W + b over a batch of any size, made with onnx's own helpers."""
    helper, tensor = onnx.helper, onnx.TensorProto
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["y"])],
        "linear",
        inputs=[
            helper.make_tensor_value_info("x", tensor.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("W", tensor.FLOAT, [4, 2]),
        ],
        outputs=[helper.make_tensor_value_info("y", tensor.FLOAT, ["batch", 2])],
        initializer=[
            helper.make_tensor("W", tensor.FLOAT, [4, 2], [0.0] * 8),
            helper.make_tensor("b", tensor.FLOAT, [2], [0.0] * 2),
        ],
    )
    model = helper.make_model(
        graph, producer_name="pytorch", producer_version="2.5.0", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_an_onnx_model_shows_its_inputs_outputs_and_weights():
    preview = onnx_summary(onnx_model())

    assert preview.format == "onnx"
    assert dict(preview.metadata) == {
        "IR version": "9",
        "Producer": "pytorch",
        "Producer version": "2.5.0",
        "Opsets": "ai.onnx 17",
        "Nodes": "1",
        "Input x": "float32 [batch, 4]",  # W is a weight, not an input the caller feeds
        "Output y": "float32 [batch, 2]",
    }
    assert [(t.name, t.dtype, t.shape_text) for t in preview.tensors] == [
        ("W", "float32", "[4, 2]"),
        ("b", "float32", "[2]"),
    ]
    assert (preview.tensor_count, preview.parameter_count) == (2, 10)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "no ONNX graph"),
        (b"\xff" * 20, "does not parse as an ONNX model"),
        (b"\x3a\xe8\x07", "does not parse as an ONNX model"),  # a graph said to be 1,000 bytes long, and none
        (b"PK\x03\x04" + bytes(40), "does not parse as an ONNX model"),  # a zip file named .onnx
    ],
    ids=["empty", "garbage", "overlong", "zip"],
)
def test_hostile_onnx_bytes_are_refused_not_raised(data, why):
    with pytest.raises(PreviewRefused, match=why):
        onnx_summary(data)


def test_a_truncated_onnx_file_is_refused_or_summarised_never_an_error():
    # Protobuf has no end marker: a cut between two top-level fields is a shorter, valid model.
    whole = onnx_model()
    refused = 0
    for cut in range(len(whole)):
        try:
            onnx_summary(whole[:cut])
        except PreviewRefused:
            refused += 1
    assert refused > len(whole) // 2


@pytest.mark.django_db
def test_an_onnx_file_is_read_whole_and_logged_and_a_large_one_not_at_all(isolated_blob_folder, monkeypatch):
    data = onnx_model()
    small = ArtifactVersionFactory(content=data, metadata={"filename": "linear.onnx"})
    monkeypatch.setattr(preview_service, "ONNX_LIMIT", len(data) - 1)
    large = ArtifactVersionFactory(content=data + b"\x00", media_type="application/x-onnx")
    monkeypatch.undo()

    assert artifact_version_preview(version=small).tensor_count == 2
    assert reads_logged() == [{"first": 0, "last": len(data) - 1, "length": len(data)}]

    monkeypatch.setattr(preview_service, "ONNX_LIMIT", len(data))
    assert "larger than" in artifact_version_preview(version=large).reason
    assert len(reads_logged()) == 1
