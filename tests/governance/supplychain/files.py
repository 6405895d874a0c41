"""Real model files, built here, byte for byte as their tools write them: hostile pickles whose `__reduce__` calls
os.system, PyTorch zip archives in torch.save's layout (torch itself is not installed: its pickles are assembled
opcode by opcode, as torch writes them), safetensors files written by the reference library, ONNX graphs built with
the `onnx` package, GGUF files in the layout of llama.cpp's writer, NumPy arrays and joblib dumps by numpy and joblib.
"""

import io
import os
import pickle
import struct
import zipfile

import joblib
import numpy
import onnx
from onnx import TensorProto, helper
from onnx.external_data_helper import set_external_data
from safetensors.numpy import save as safetensors_save


class RunsShell:
    """Unpickling this runs a shell command: the classic hostile pickle."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/provenant-pwned",))


def hostile_pickle(protocol: int = pickle.DEFAULT_PROTOCOL) -> bytes:
    return pickle.dumps({"weights": [0.1, 0.2], "hook": RunsShell()}, protocol=protocol)


def clean_pickle() -> bytes:
    return pickle.dumps({"weights": [0.1, 0.2, 0.3], "epochs": 20})


# PyTorch ------------------------------------------------------------------------------------------------------------


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _text(value: str) -> bytes:
    encoded = value.encode()
    return b"X" + struct.pack("<I", len(encoded)) + encoded


def _small(n: int) -> bytes:
    return b"K" + bytes([n])


def torch_state_dict_pickle(names: list[str], numel: int) -> bytes:
    """The data.pkl torch.save writes for a state dict of float32 tensors `names`, each of `numel` values stored in
    members data/0, data/1, ...: an OrderedDict of _rebuild_tensor_v2 calls on persistent storages."""
    out = b"\x80\x02" + _global("collections", "OrderedDict") + b")R"
    out += b"("
    for key, name in enumerate(names):
        storage = b"(" + _text("storage") + _global("torch", "FloatStorage") + _text(str(key)) + _text("cpu")
        storage += _small(numel) + b"tQ"  # the tuple, then BINPERSID: the storage is the member data/<key>
        args = b"(" + storage + _small(0) + _small(numel) + b"\x85" + _small(1) + b"\x85" + b"\x89"
        args += _global("collections", "OrderedDict") + b")R" + b"t"
        out += _text(name) + _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"
    return out + b"u."


def torch_zip(data_pkl: bytes, tensors: list[bytes] = (), *, archive: str = "archive") -> bytes:
    """A checkpoint in torch.save's zip layout (stored, not compressed, as torch writes it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{archive}/data.pkl", data_pkl)
        zf.writestr(f"{archive}/byteorder", "little")
        for key, data in enumerate(tensors):
            zf.writestr(f"{archive}/data/{key}", data)
        zf.writestr(f"{archive}/version", "3\n")
        zf.writestr(f"{archive}/.data/serialization_id", "0123456789")
    return buffer.getvalue()


def clean_torch_checkpoint(numel: int = 4) -> bytes:
    tensors = [numpy.arange(numel, dtype="<f4").tobytes(), numpy.ones(numel, dtype="<f4").tobytes()]
    return torch_zip(torch_state_dict_pickle(["fc.weight", "fc.bias"], numel), tensors)


def hostile_torch_checkpoint() -> bytes:
    return torch_zip(hostile_pickle(protocol=2), [numpy.ones(4, dtype="<f4").tobytes()])


def legacy_torch_checkpoint(state: object) -> bytes:
    """torch.save's format before zip archives (_legacy_save): five pickles, then the storages' raw bytes."""
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}]
    pickles = [pickle.dumps(value, protocol=2) for value in [*header, state, ["0"]]]
    return b"".join(pickles) + struct.pack("<q", 4) + numpy.ones(4, dtype="<f4").tobytes()


# Formats that hold no code ----------------------------------------------------------------------------------------


def clean_safetensors() -> bytes:
    return safetensors_save(
        {"fc.weight": numpy.arange(12, dtype=numpy.float32).reshape(3, 4), "fc.bias": numpy.zeros(3, numpy.int64)},
        metadata={"format": "pt"},
    )


def onnx_graph(*, external_location: str | None = None) -> bytes:
    """Y = X @ W + B: a small, valid ONNX model; `external_location` stores W outside the file, at that path."""
    weight = helper.make_tensor("W", TensorProto.FLOAT, [3, 2], numpy.full(6, 0.5, "<f4").tobytes(), raw=True)
    if external_location is not None:
        set_external_data(weight, location=external_location, length=24)
        weight.ClearField("raw_data")
    bias = helper.make_tensor("B", TensorProto.FLOAT, [2], [0.1, 0.2])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"])],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 2])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, producer_name="provenant-tests", opset_imports=[helper.make_opsetid("", 17)])
    if external_location is None:
        onnx.checker.check_model(model)
    return model.SerializeToString()


def _gguf_string(value: str) -> bytes:
    encoded = value.encode()
    return struct.pack("<Q", len(encoded)) + encoded


def gguf(*, tensor_count: int | None = None, string_length: int | None = None) -> bytes:
    """A GGUF v3 file as llama.cpp's writer lays it out: header, metadata (architecture, alignment), one F32 tensor
    of 4 values, padding to the alignment, the data. `tensor_count` and `string_length` lie about the counts."""
    metadata = _gguf_string("general.architecture") + struct.pack("<I", 8)
    name = b"llama"
    metadata += struct.pack("<Q", string_length if string_length is not None else len(name)) + name
    metadata += _gguf_string("general.alignment") + struct.pack("<I", 4) + struct.pack("<I", 32)
    tensor_info = _gguf_string("token_embd.weight") + struct.pack("<I", 1) + struct.pack("<Q", 4)
    tensor_info += struct.pack("<IQ", 0, 0)  # type F32, offset 0 in the data section
    header = b"GGUF" + struct.pack("<IQQ", 3, 1 if tensor_count is None else tensor_count, 2)
    body = header + metadata + tensor_info
    body += b"\0" * (-len(body) % 32)
    return body + numpy.ones(4, dtype="<f4").tobytes()


def npy(array: numpy.ndarray) -> bytes:
    buffer = io.BytesIO()
    numpy.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def joblib_dump(value: object, **options) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(value, buffer, **options)
    return buffer.getvalue()
