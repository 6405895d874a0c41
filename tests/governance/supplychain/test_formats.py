"""The format of a file comes from its bytes, and each format is checked for what makes it unsafe to load: pickles
(alone, in PyTorch archives, in joblib dumps, in NumPy object arrays) for imports that run code, safetensors, ONNX
and GGUF headers for consistency with the file. Real files, built in tests/governance/supplychain/files.py."""

import io
import json
import pickle
import struct

import numpy
import pytest

from governance.supplychain import formats
from governance.supplychain.formats import scan_stream
from tests.governance.supplychain import files


def scan(data: bytes) -> formats.ScanOutcome:
    return scan_stream(io.BytesIO(data), len(data))


def imports(outcome: formats.ScanOutcome, severity: str = "unsafe") -> set[str]:
    return {f"{f['module']}.{f['name']}" for f in outcome.findings if f["severity"] == severity and "module" in f}


@pytest.mark.parametrize("protocol", [0, 2, pickle.DEFAULT_PROTOCOL])
def test_a_pickle_whose_reduce_calls_os_system_is_unsafe_and_names_the_import(protocol):
    outcome = scan(files.hostile_pickle(protocol))

    assert (outcome.detected_format, outcome.verdict) == ("pickle", "unsafe")
    assert imports(outcome) == {"posix.system"}  # os.system is posix.system once pickled on Linux
    [finding] = outcome.findings
    assert finding["kind"] == "dangerous_import"
    assert finding["opcode"] == "GLOBAL"


def test_a_pickle_of_plain_data_is_clean():
    outcome = scan(files.clean_pickle())

    assert (outcome.detected_format, outcome.verdict, outcome.findings) == ("pickle", "clean", [])


def test_a_pytorch_archive_embedding_a_hostile_data_pkl_is_unsafe_naming_the_member():
    outcome = scan(files.hostile_torch_checkpoint())

    assert (outcome.detected_format, outcome.verdict) == ("pytorch", "unsafe")
    assert imports(outcome) == {"posix.system"}
    assert {f["member"] for f in outcome.findings} == {"archive/data.pkl"}


def test_a_pytorch_state_dict_of_tensors_is_clean():
    outcome = scan(files.clean_torch_checkpoint())

    assert (outcome.detected_format, outcome.verdict, outcome.findings) == ("pytorch", "clean", [])


def test_a_legacy_pytorch_checkpoint_has_its_five_pickles_scanned_and_its_raw_storage_skipped():
    clean = scan(files.legacy_torch_checkpoint({"epochs": 3}))
    assert (clean.detected_format, clean.verdict, clean.findings) == ("pytorch", "clean", [])

    hostile = scan(files.legacy_torch_checkpoint({"hook": files.RunsShell()}))
    assert (hostile.detected_format, hostile.verdict) == ("pytorch", "unsafe")
    assert imports(hostile) == {"posix.system"}


def test_every_pickle_in_an_archive_is_scanned_whatever_the_archive_is_named():
    data = files.torch_zip(files.torch_state_dict_pickle(["w"], 4), [b"\0" * 16], archive="resnet50")
    buffer = io.BytesIO(data)
    import zipfile

    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("resnet50/extra/hook.pkl", files.hostile_pickle())

    outcome = scan(buffer.getvalue())

    assert (outcome.detected_format, outcome.verdict) == ("pytorch", "unsafe")
    assert {f["member"] for f in outcome.findings} == {"resnet50/extra/hook.pkl"}


def test_a_zip_with_no_model_in_it_is_not_applicable():
    buffer = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "hello")

    assert (scan(buffer.getvalue()).detected_format, scan(buffer.getvalue()).verdict) == ("unknown", "not_applicable")


def test_a_compressed_joblib_dump_is_unpacked_as_it_is_scanned():
    outcome = scan(files.joblib_dump({"model": files.RunsShell()}, compress=3))

    assert (outcome.detected_format, outcome.verdict) == ("joblib", "unsafe")
    assert imports(outcome) == {"posix.system"}


def test_a_joblib_dump_with_inline_arrays_of_every_kind_is_read_past_them_to_its_end():
    arrays = {
        "coef": numpy.arange(8.0),
        "labels": numpy.array(["spam", "ham"]),
        "records": numpy.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
        "big_endian": numpy.ones((3, 3), dtype=">i2"),
    }
    clean = scan(files.joblib_dump(arrays))
    assert (clean.detected_format, clean.verdict, clean.findings) == ("joblib", "clean", [])

    # The hostile import comes after arrays whose bytes sit between the opcodes: a plain opcode walk stops before it.
    outcome = scan(files.joblib_dump({**arrays, "hook": files.RunsShell(), "after": numpy.arange(3)}))

    assert (outcome.detected_format, outcome.verdict) == ("joblib", "unsafe")
    assert imports(outcome) == {"posix.system"}


def test_an_array_of_objects_in_a_joblib_dump_is_walked_as_the_pickle_joblib_writes_for_it():
    outcome = scan(files.joblib_dump({"objects": numpy.array([files.RunsShell(), 1], dtype=object)}))

    assert (outcome.detected_format, outcome.verdict) == ("joblib", "unsafe")
    assert imports(outcome) == {"posix.system"}


def test_a_joblib_dump_cut_inside_an_array_is_an_error_saying_what_was_not_scanned():
    data = files.joblib_dump({"coef": numpy.arange(4096.0), "hook": files.RunsShell()})

    outcome = scan(data[:2000])

    assert (outcome.detected_format, outcome.verdict) == ("joblib", "error")
    assert "unreadable_pickle" in {f["kind"] for f in outcome.findings}


def test_a_numpy_array_of_numbers_is_clean_and_one_of_objects_is_scanned_as_the_pickle_it_is():
    assert (scan(files.npy(numpy.arange(10, dtype=numpy.float32))).verdict, "numpy") == ("clean", "numpy")

    outcome = scan(files.npy(numpy.array([files.RunsShell()], dtype=object)))

    assert (outcome.detected_format, outcome.verdict) == ("numpy", "unsafe")
    assert {f["kind"] for f in outcome.findings} == {"object_array", "dangerous_import"}


def test_a_numpy_array_whose_header_promises_more_bytes_than_the_file_has_is_unsafe():
    data = files.npy(numpy.zeros((4, 4), dtype=numpy.float64))[:-8]

    outcome = scan(data)

    assert (outcome.detected_format, outcome.verdict) == ("numpy", "unsafe")
    assert outcome.findings[0]["kind"] == "malformed_header"


def test_a_safetensors_file_written_by_the_reference_library_is_clean():
    outcome = scan(files.clean_safetensors())

    assert (outcome.detected_format, outcome.verdict, outcome.findings) == ("safetensors", "clean", [])


def safetensors_with(header: dict, data: bytes) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


@pytest.mark.parametrize(
    ("header", "data", "why"),
    [
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "cover 16 bytes"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 12]}}, b"\0" * 12, "spans 12 bytes"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
            "not where the previous one ends",
        ),
        ({"w": {"dtype": "Q4", "shape": [4], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype"),
        ({"w": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "no shape of sizes"),
    ],
)
def test_a_safetensors_header_inconsistent_with_the_file_is_unsafe(header, data, why):
    outcome = scan(safetensors_with(header, data))

    assert (outcome.detected_format, outcome.verdict) == ("safetensors", "unsafe")
    assert why in outcome.findings[0]["detail"]


def test_a_safetensors_length_field_past_the_end_of_the_file_is_not_taken_for_safetensors():
    data = struct.pack("<Q", 10**12) + b'{"w": {}}'

    assert scan(data).detected_format == "unknown"


def test_an_onnx_graph_is_clean():
    outcome = scan(files.onnx_graph())

    assert (outcome.detected_format, outcome.verdict, outcome.findings) == ("onnx", "clean", [])


def test_an_onnx_model_reading_weights_from_outside_its_folder_is_unsafe():
    outcome = scan(files.onnx_graph(external_location="../../../etc/shadow"))

    assert (outcome.detected_format, outcome.verdict) == ("onnx", "unsafe")
    assert outcome.findings[0]["kind"] == "external_data_path"


def test_an_onnx_file_cut_short_is_unsafe():
    data = files.onnx_graph()

    outcome = scan(data[: len(data) - 20])

    assert (outcome.detected_format, outcome.verdict) == ("onnx", "unsafe")


def test_a_gguf_file_is_clean_and_one_whose_counts_lie_is_unsafe():
    assert (scan(files.gguf()).detected_format, scan(files.gguf()).verdict) == ("gguf", "clean")

    for lying in (files.gguf(tensor_count=10**9), files.gguf(string_length=2**40)):
        outcome = scan(lying)
        assert (outcome.detected_format, outcome.verdict) == ("gguf", "unsafe")
        assert outcome.findings[0]["kind"] == "malformed_header"


def test_text_is_not_a_model_format():
    outcome = scan(b"name,amount\nalice,3\n" * 10)

    assert (outcome.detected_format, outcome.verdict) == ("unknown", "not_applicable")


def test_findings_are_capped_however_many_imports_a_hostile_pickle_names():
    body = b"".join(b"c" + f"evil{n}\nf\n".encode() + b"0" for n in range(formats.MAX_FINDINGS + 50))
    outcome = scan(b"\x80\x02" + body + b"N.")

    assert outcome.verdict == "suspicious"
    assert len(outcome.findings) == formats.MAX_FINDINGS


def test_a_compressed_pickle_that_inflates_to_more_than_one_step_is_read_to_its_end():
    # Over 8 MiB once inflated, from a few KiB: the hostile import comes after the padding.
    outcome = scan(files.joblib_dump({"padding": b"\0" * (20 * 2**20), "hook": files.RunsShell()}, compress=3))

    assert (outcome.detected_format, outcome.verdict) == ("joblib", "unsafe")
    assert imports(outcome) == {"posix.system"}
