"""The inputs, outputs and weights an ONNX model declares (names, element types, shapes), read with the `onnx`
package's own protobuf classes.

An ONNX file is one ModelProto message whose graph holds the weights inline, next to the declarations, so a summary
parses the whole file; artifacts/services/previews.py only asks it of files up to ONNX_LIMIT. Bytes that do not
parse, or parse into something without a graph, raise PreviewRefused with a sentence for the page.
"""

from typing import TYPE_CHECKING

from artifacts.previews import Preview, PreviewRefused, Tensor

if TYPE_CHECKING:
    import onnx

ONNX_LIMIT = 16 * 1024 * 1024
TENSORS_SHOWN = 200


def _onnx():
    """The onnx package, imported when a summary is asked for: it loads numpy, which a web or worker process that
    never shows an ONNX file should not carry (tests/test_web_worker_imports.py)."""
    import onnx

    return onnx


def _element_type(number: int) -> str:
    """numpy's name for the element type (float32, int64, bfloat16), else ONNX's (string), else its number."""
    onnx = _onnx()
    if number == onnx.TensorProto.STRING:
        return "string"
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(number))
    except (KeyError, ValueError, TypeError):
        known = onnx.TensorProto.DataType.Name(number) if number in onnx.TensorProto.DataType.values() else ""
        return known.lower() or f"type {number}"


def _value_info(value: "onnx.ValueInfoProto") -> tuple[str, str]:
    """A graph input or output: its element type and shape ("?" for a dimension with neither value nor name);
    sequences and maps are named by their kind only."""
    if not value.type.HasField("tensor_type"):
        return value.name, value.type.WhichOneof("value") or "unknown"
    tensor = value.type.tensor_type
    dims = [str(dim.dim_value) if dim.HasField("dim_value") else dim.dim_param or "?" for dim in tensor.shape.dim]
    element = _element_type(tensor.elem_type) if tensor.elem_type else "unknown"
    return value.name, f"{element} [{', '.join(dims)}]"


def onnx_summary(data: bytes) -> Preview:
    """The graph's inputs and outputs and its initializers (weights), with the producer and opsets, of a whole ONNX
    file; PreviewRefused when the bytes are not a ModelProto with a graph."""
    onnx = _onnx()
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)  # external data (weights in other files) is never fetched
    except (DecodeError, RuntimeWarning, ValueError) as error:
        raise PreviewRefused(f"The file does not parse as an ONNX model ({error}).") from error
    if not model.HasField("graph"):
        raise PreviewRefused("The file has no ONNX graph: it is not an ONNX model.")
    facts = [("IR version", str(model.ir_version))] if model.ir_version else []
    facts += [("Producer", model.producer_name)] if model.producer_name else []
    facts += [("Producer version", model.producer_version)] if model.producer_version else []
    if model.opset_import:
        facts.append(("Opsets", ", ".join(f"{op.domain or 'ai.onnx'} {op.version}" for op in model.opset_import)))
    graph = model.graph
    initializers = sorted(
        (
            Tensor(name=weight.name, dtype=_element_type(weight.data_type), shape=tuple(weight.dims))
            for weight in graph.initializer
        ),
        key=lambda tensor: tensor.name,
    )
    weight_names = {tensor.name for tensor in initializers}
    facts.append(("Nodes", str(len(graph.node))))
    facts += [(f"Input {name}", shape) for name, shape in map(_value_info, graph.input) if name not in weight_names]
    facts += [(f"Output {name}", shape) for name, shape in map(_value_info, graph.output)]
    return Preview(
        format="onnx",
        tensors=initializers[:TENSORS_SHOWN],
        tensor_count=len(initializers),
        parameter_count=sum(tensor.parameters for tensor in initializers),
        metadata=facts,
        note=f"The first {TENSORS_SHOWN} weights by name are listed." if len(initializers) > TENSORS_SHOWN else "",
    )
