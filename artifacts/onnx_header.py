"""The inputs, outputs and weights an ONNX model declares (names, element types, shapes), read from its protobuf
bytes with a small wire-format reader: the `onnx` package is not a dependency, and these few fields need no more.

An ONNX file is one ModelProto message whose graph holds the weights inline, next to the declarations, so a summary
reads the whole file; artifacts/services/previews.py only asks it of files up to ONNX_LIMIT. Every length and every
number is checked against the bytes there are: hostile or truncated input raises PreviewRefused, never an IndexError
or a loop that does not end (each step consumes at least one byte, and only known fields are descended into, to a
fixed depth).
"""

from collections.abc import Iterator

from artifacts.previews import Preview, PreviewRefused, Tensor

ONNX_LIMIT = 16 * 1024 * 1024
TENSORS_SHOWN = 200

#: TensorProto.DataType, as onnx.proto numbers them.
ELEMENT_TYPES = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 8: "string", 9: "bool",
    10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128", 16: "bfloat16",
    17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4",
}  # fmt: skip

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise PreviewRefused("The ONNX file ends in the middle of a number: it is truncated or not ONNX.")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise PreviewRefused("The ONNX file holds a number longer than protobuf allows: it is not ONNX.")


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message: an int, or the bytes of a length-delimited
    field (a view, not a copy)."""
    view = memoryview(data)
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise PreviewRefused("The ONNX file holds a field numbered 0: it is not ONNX.")
        if wire == VARINT:
            value, at = _varint(data, at)
        elif wire == LENGTH:
            length, at = _varint(data, at)
            if length > len(data) - at:
                raise PreviewRefused(
                    "The ONNX file declares a field longer than the file: it is truncated or not ONNX."
                )
            value, at = view[at : at + length], at + length
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if size > len(data) - at:
                raise PreviewRefused("The ONNX file ends in the middle of a field: it is truncated or not ONNX.")
            value, at = int.from_bytes(data[at : at + size], "little"), at + size
        else:
            raise PreviewRefused(f"The ONNX file holds a protobuf wire type {wire} it cannot: it is not ONNX.")
        yield number, wire, value


def _text(value: int | bytes) -> str:
    if isinstance(value, int):
        raise PreviewRefused("The ONNX file has a number where a name belongs: it is not ONNX.")
    return bytes(value).decode("utf-8", errors="replace")


def _message(value: int | bytes) -> bytes:
    if isinstance(value, int):
        raise PreviewRefused("The ONNX file has a number where a message belongs: it is not ONNX.")
    return bytes(value)


def _dims(wire: int, value: int | bytes) -> list[int]:
    """A repeated int64, packed (one length-delimited run of varints) or not (one varint)."""
    if wire == VARINT:
        return [value]  # type: ignore[list-item]
    packed, at, dims = _message(value), 0, []
    while at < len(packed):
        dim, at = _varint(packed, at)
        dims.append(dim)
    return dims


def _shape_text(dims: list[int | str]) -> str:
    return "[" + ", ".join(str(dim) for dim in dims) + "]"


def _value_info(data: bytes) -> tuple[str, str, str]:
    """A graph input or output: its name, element type and shape ("?" for a dimension with neither value nor name)."""
    name, element, dims = "", "", []
    for number, _, value in _fields(data):
        if number == 1:
            name = _text(value)
        elif number == 2:  # TypeProto
            for type_number, _, type_value in _fields(_message(value)):
                if type_number != 1:  # only tensor_type; sequences and maps are left undescribed
                    continue
                for tensor_number, _, tensor_value in _fields(_message(type_value)):
                    if tensor_number == 1 and isinstance(tensor_value, int):
                        element = ELEMENT_TYPES.get(tensor_value, f"type {tensor_value}")
                    elif tensor_number == 2:  # TensorShapeProto
                        for dim_number, _, dim_value in _fields(_message(tensor_value)):
                            if dim_number == 1:
                                dims.append(_dimension(_message(dim_value)))
    return name, element or "unknown", _shape_text(dims)


def _dimension(data: bytes) -> int | str:
    for number, _, value in _fields(data):
        if number == 1 and isinstance(value, int):
            return value
        if number == 2:
            return _text(value)
    return "?"


def _initializer(data: bytes) -> Tensor:
    name, element, dims = "", "", []
    for number, wire, value in _fields(data):
        if number == 1:
            dims.extend(_dims(wire, value))
        elif number == 2 and isinstance(value, int):
            element = ELEMENT_TYPES.get(value, f"type {value}")
        elif number == 8:
            name = _text(value)
    return Tensor(name=name, dtype=element or "unknown", shape=tuple(dims))


def onnx_summary(data: bytes) -> Preview:
    """The graph's inputs and outputs and its initializers (weights), with the producer and opsets, of a whole ONNX
    file; PreviewRefused when the bytes are not a ModelProto with a graph."""
    facts: list[tuple[str, str]] = []
    opsets: list[str] = []
    graph = None
    for number, _, value in _fields(data):
        if number == 1 and isinstance(value, int):
            facts.append(("IR version", str(value)))
        elif number == 2:
            facts.append(("Producer", _text(value)))
        elif number == 3:
            facts.append(("Producer version", _text(value)))
        elif number == 7:
            graph = _message(value)
        elif number == 8:
            domain, version = "ai.onnx", ""
            for opset_number, _, opset_value in _fields(_message(value)):
                if opset_number == 1 and _text(opset_value):
                    domain = _text(opset_value)
                elif opset_number == 2:
                    version = str(opset_value)
            opsets.append(f"{domain} {version}".strip())
    if graph is None:
        raise PreviewRefused("The file has no ONNX graph: it is not an ONNX model.")
    if opsets:
        facts.append(("Opsets", ", ".join(opsets)))
    inputs, outputs, initializers, nodes = [], [], [], 0
    for number, _, value in _fields(graph):
        if number == 1:
            nodes += 1
        elif number == 5:
            initializers.append(_initializer(_message(value)))
        elif number == 11:
            inputs.append(_value_info(_message(value)))
        elif number == 12:
            outputs.append(_value_info(_message(value)))
    weight_names = {tensor.name for tensor in initializers}
    facts.append(("Nodes", str(nodes)))
    facts += [(f"Input {name}", f"{element} {shape}") for name, element, shape in inputs if name not in weight_names]
    facts += [(f"Output {name}", f"{element} {shape}") for name, element, shape in outputs]
    initializers.sort(key=lambda tensor: tensor.name)
    return Preview(
        format="onnx",
        tensors=initializers[:TENSORS_SHOWN],
        tensor_count=len(initializers),
        parameter_count=sum(tensor.parameters for tensor in initializers),
        metadata=facts,
        note=f"The first {TENSORS_SHOWN} weights by name are listed." if len(initializers) > TENSORS_SHOWN else "",
    )
