"""What a file is, from its bytes (magic numbers and structure, never its name), and whether it is safe to load.

Pickles, and the formats that carry them (PyTorch zip archives and legacy checkpoints, joblib dumps, NumPy arrays of
objects), run code when loaded: their opcode streams are scanned with picklescan, which never unpickles. Picklescan
was chosen over modelscan and fickling because it is small and pure Python (modelscan pulls its own CLI and format
stack, fickling decompiles the whole pickle to an AST), it is the scanner the Hugging Face Hub runs on every upload,
so its lists of dangerous and safe imports are maintained against attacks seen in the wild, and it reads a stream,
so a data.pkl inside an archive is scanned without extracting anything. Formats that hold no code (safetensors,
ONNX, GGUF) have their headers parsed and checked for consistency: a header whose offsets or counts disagree with
the file is what exploits of their parsers use.

No Django here: `scan_stream` reads a seekable binary stream of `size` bytes, forward in bounded reads (pickle
streams, headers) or by seeking (a zip's central directory, a header's declared end), and never holds the file
(except a raw pickle's opcodes, which picklescan lists whole before judging them).
"""

import ast
import io
import json
import math
import pickletools
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import IO, Any, BinaryIO

from picklescan.relaxed_zipfile import RelaxedZipFile

# picklescan's opcode walk, and its judgement of a set of imports (private: its lists of dangerous and safe ones) for
# those of a joblib dump with inline arrays, which its walk cannot read past; pyproject.toml pins the version range.
from picklescan.scanner import SafetyLevel, ScanResult, _build_scan_result_from_raw_globals, scan_pickle_bytes

from governance.supplychain.joblib_walk import WRAPPER, JoblibWalkError, joblib_globals

#: Bumped whenever the checks below change what they find, so `rescan_blobs --outdated` rescans with them.
RULES_VERSION = 1
SCANNER = "picklescan"
SCANNER_VERSION = f"{version('picklescan')}+rules.{RULES_VERSION}"

#: safetensors' own limit on its JSON header (the reference implementation refuses larger ones).
SAFETENSORS_HEADER_LIMIT = 100_000_000
#: ONNX has no separate header: the graph sits among the weights in one protobuf message, parsed whole.
ONNX_SCAN_LIMIT = 256 * 1024 * 1024
#: How much of a file the format detection looks at.
SNIFF_BYTES = 4096
#: A headerless (protocol 0 or 1) pickle is recognised by this many opcodes that parse in a row.
TEXT_PICKLE_OPCODES = 16
#: At most this many findings are kept per scan (a hostile file could name thousands of imports).
MAX_FINDINGS = 200

SAFETENSORS_DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
# A legacy (pre-zip) PyTorch checkpoint starts with this pickled magic number (torch/serialization.py).
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
LEGACY_TORCH_PICKLES = 5
# The ModelProto fields an ONNX file starts with after ir_version (field 1): opset_import, producer, graph, ...
ONNX_SECOND_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72}
GGUF_VALUE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
GGUF_STRING, GGUF_ARRAY = 8, 9


@dataclass
class ScanOutcome:
    """What a scan found: the format detected, the verdict, and the findings that justify it."""

    detected_format: str
    verdict: str = "clean"
    findings: list[dict[str, Any]] = field(default_factory=list)
    incomplete: bool = False

    def find(self, kind: str, detail: str, *, severity: str = "unsafe", **where: Any) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append({"kind": kind, "severity": severity, "detail": detail, **where})
        rank = {"clean": 0, "suspicious": 1, "error": 2, "unsafe": 3}
        if rank[severity] > rank.get(self.verdict, 0):
            self.verdict = severity


class Malformed(ValueError):
    """A header that disagrees with itself or with the file."""


def scan_stream(stream: BinaryIO, size: int) -> ScanOutcome:
    """Detect the format of the `size` bytes in `stream` and check them; never raises on hostile bytes (they are
    findings), only on errors reading the stream."""
    head = _read_at(stream, 0, SNIFF_BYTES)
    fmt = detect_format(head, size)
    outcome = ScanOutcome(fmt)
    stream.seek(0)
    try:
        if fmt == "zip":
            _scan_zip(stream, outcome)
        elif fmt == "pytorch":
            _scan_legacy_torch(stream, outcome)
        elif fmt == "pickle":
            _scan_pickle(stream, outcome, member=None, reopen=lambda: _rewound(stream))
        elif fmt == "joblib":
            _scan_pickle(_Decompressed(stream), outcome, member=None, reopen=lambda: _Decompressed(_rewound(stream)))
        elif fmt == "numpy":
            _scan_npy(stream, size, outcome, member=None)
        elif fmt == "safetensors":
            _check_safetensors(stream, size)
        elif fmt == "gguf":
            _check_gguf(stream, size)
        elif fmt == "onnx":
            _check_onnx(stream, size, outcome)
        else:
            outcome.verdict = "not_applicable"
    except Malformed as problem:
        outcome.find("malformed_header", str(problem))
    if outcome.detected_format == "zip":
        outcome.detected_format = "unknown"
        if outcome.verdict == "clean":
            outcome.verdict = "not_applicable"
    return outcome


def detect_format(head: bytes, size: int) -> str:
    """The format the first bytes announce: a zip (resolved to pytorch or numpy by its members), pickle, joblib
    (compressed), numpy, safetensors, gguf, onnx, or unknown."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head.startswith(LEGACY_TORCH_MAGIC):
        return "pytorch"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head.startswith(b"GGUF"):
        return "gguf"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9 and head[8:9] == b"{":
        (length,) = struct.unpack("<Q", head[:8])
        if 0 < length <= size - 8:
            return "safetensors"
    if len(head) >= 3 and head[0] == 0x08 and 0 < head[1] < 0x80 and head[2] in ONNX_SECOND_TAGS:
        return "onnx"
    if _looks_compressed_pickle(head):
        return "joblib"
    if _looks_like_text_pickle(head):
        return "pickle"
    return "unknown"


# Pickles ------------------------------------------------------------------------------------------------------------


def _scan_pickle(
    stream: IO[bytes],
    outcome: ScanOutcome,
    *,
    member: str | None,
    multiple: bool = True,
    reopen: Callable[[], IO[bytes]] | None = None,
) -> None:
    """Scan every pickle in the stream; dangerous imports make the file unsafe, imports picklescan does not know
    suspicious (joblib's own array wrapper excepted), a stream it could not read to the end an error (the rest was
    not scanned). `reopen` gives the stream again from its start, for joblib's inline arrays (joblib_walk.py)."""
    result: ScanResult = scan_pickle_bytes(stream, member or "blob", multiple_pickles=multiple)
    if result.scan_err and reopen is not None and any(g.module == WRAPPER[0] for g in result.globals):
        # joblib's arrays inline: walk the dump again, skipping each array's bytes.
        fresh = reopen()
        try:
            found = joblib_globals(fresh, skip_by_reading=isinstance(fresh, _Decompressed))
        except JoblibWalkError:
            pass  # the plain walk's answer stands: read up to the first array, and the error says so
        else:
            result = _build_scan_result_from_raw_globals(found, member or "blob")
    where = {"member": member} if member else {}
    for found in sorted(result.globals, key=lambda g: (g.module, g.name)):
        if found.module == WRAPPER[0] and outcome.detected_format == "pickle":
            outcome.detected_format = "joblib"
        if (found.module, found.name) == WRAPPER:
            continue  # joblib's loader reads the bytes after it as array data, and builds nothing else from it
        if found.safety == SafetyLevel.Dangerous:
            outcome.find(
                "dangerous_import",
                f"The pickle imports {found.module}.{found.name}, which can run code when it is loaded.",
                module=found.module,
                name=found.name,
                opcode="GLOBAL",
                **where,
            )
        elif found.safety == SafetyLevel.Suspicious:
            outcome.find(
                "unknown_import",
                f"The pickle imports {found.module}.{found.name}, which the scanner does not know to be safe.",
                severity="suspicious",
                module=found.module,
                name=found.name,
                opcode="GLOBAL",
                **where,
            )
    if result.scan_err:
        outcome.incomplete = True
        outcome.find(
            "unreadable_pickle",
            "The pickle stream could not be read to its end (malformed, or data inlined by joblib): what follows "
            "the break was not scanned.",
            severity="error",
            **where,
        )


def _rewound(stream: IO[bytes]) -> IO[bytes]:
    stream.seek(0)
    return stream


def _scan_legacy_torch(stream: IO[bytes], outcome: ScanOutcome) -> None:
    """A pre-zip torch.save file is five pickles (magic number, protocol version, system info, the object, the
    storage keys) followed by the storages' raw bytes, which are not pickle: exactly those five are scanned, as
    torch.load reads them."""
    for _ in range(LEGACY_TORCH_PICKLES):
        _scan_pickle(stream, outcome, member=None, multiple=False)


def _looks_compressed_pickle(head: bytes) -> bool:
    """joblib's compressed dumps: a zlib or gzip stream whose first bytes inflate to a pickle."""
    if head[:2] == b"\x1f\x8b":
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif len(head) >= 2 and head[0] == 0x78 and ((head[0] << 8) | head[1]) % 31 == 0:
        decompressor = zlib.decompressobj()
    else:
        return False
    try:
        start = decompressor.decompress(head, 2)
    except zlib.error:
        return False
    return len(start) >= 2 and start[0] == 0x80 and 2 <= start[1] <= 5


def _looks_like_text_pickle(head: bytes) -> bool:
    """Protocol 0 and 1 pickles have no header: the first bytes parse as pickle opcodes, to a STOP or for a good
    many of them (text in other formats breaks the opcode grammar within a few bytes)."""
    count = 0
    try:
        for opcode, _, _ in pickletools.genops(io.BytesIO(head)):
            count += 1
            if opcode.name == "STOP" or count >= TEXT_PICKLE_OPCODES:
                return True
    except Exception:  # any parse error means: not the start of a pickle
        return False
    return False


class _Decompressed(io.RawIOBase):
    """A zlib or gzip stream inflated as it is read, for picklescan; it only ever reads forward."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        first = stream.read(2)
        stream.seek(0)
        wbits = 16 + zlib.MAX_WBITS if first == b"\x1f\x8b" else zlib.MAX_WBITS
        self._decompressor = zlib.decompressobj(wbits)
        self._buffer = b""
        self._position = 0
        self._peeked = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True  # only the one-byte step back picklescan takes after each pickle

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self._buffer) < n) and not self._decompressor.eof:
            # Inflated at most 8 MiB at a time (a zip bomb is read as far as the scan gets, never all at once): what
            # that leaves of the input waits in unconsumed_tail and goes first.
            chunk = self._decompressor.unconsumed_tail or self._stream.read(1024 * 1024)
            if not chunk:
                break
            self._buffer += self._decompressor.decompress(chunk, 8 * 1024 * 1024)
        taken = self._buffer if n < 0 else self._buffer[:n]
        self._buffer = self._buffer[len(taken) :]
        self._position += len(taken)
        if taken:
            self._peeked = taken[-1:]
        return taken

    def readline(self, size: int | None = -1) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            byte = self.read(1)
            if not byte:
                break
            line += byte
        return line

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR and offset == -1 and self._peeked:
            self._buffer = self._peeked + self._buffer
            self._position -= 1
            self._peeked = b""
        elif not (whence == io.SEEK_CUR and offset == 0):
            raise io.UnsupportedOperation("A decompressed stream only steps back one byte.")
        return self._position


# Zip archives: PyTorch checkpoints and NumPy .npz ----------------------------------------------------------------


def _scan_zip(stream: BinaryIO, outcome: ScanOutcome) -> None:
    """A PyTorch archive holds `<name>/data.pkl` (the pickle torch.load runs) and its tensors as raw members; an
    .npz holds .npy members. Every .pkl member is scanned, and every .npy member checked."""
    import zipfile

    try:
        archive = RelaxedZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise Malformed(f"The file starts as a zip archive but its directory cannot be read ({error}).") from None
    with archive:
        members = archive.infolist()
        pickles = [m for m in members if m.filename.endswith(".pkl")]
        arrays = [m for m in members if m.filename.endswith(".npy")]
        if any(m.filename == "data.pkl" or m.filename.endswith("/data.pkl") for m in members):
            outcome.detected_format = "pytorch"
        elif arrays and len(arrays) == len(members):
            outcome.detected_format = "numpy"
        for member in pickles:
            with archive.open(member) as data:
                _scan_pickle(_Seekable(data), outcome, member=member.filename)
        for member in arrays:
            with archive.open(member) as data:
                try:
                    _scan_npy(_Seekable(data), member.file_size, outcome, member=member.filename)
                except Malformed as problem:
                    outcome.find("malformed_header", str(problem), member=member.filename)


class _Seekable(io.RawIOBase):
    """A zip member read forward, with the one-byte step back picklescan takes (ZipExtFile's seek re-reads the
    member from its start to go back)."""

    def __init__(self, data: IO[bytes]) -> None:
        self._data = data
        self._back = b""
        self._last = b""
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        taken, self._back = (self._back, b"") if self._back else (b"", b"")
        if n < 0:
            taken += self._data.read()
        elif len(taken) < n:
            taken += self._data.read(n - len(taken))
        self._position += len(taken)
        if taken:
            self._last = taken[-1:]
        return taken

    def readline(self, size: int | None = -1) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            byte = self.read(1)
            if not byte:
                break
            line += byte
        return line

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR and offset == -1 and self._last and not self._back:
            self._back, self._position = self._last, self._position - 1
        elif not (whence == io.SEEK_CUR and offset == 0) and not (whence == io.SEEK_SET and offset == self._position):
            raise io.UnsupportedOperation("A zip member is read forward, stepping back one byte at most.")
        return self._position


# NumPy .npy -------------------------------------------------------------------------------------------------------


def _scan_npy(stream: IO[bytes], size: int, outcome: ScanOutcome, *, member: str | None) -> None:
    """An .npy header is a Python literal; an array of objects is followed by a pickle (scanned), any other by
    exactly shape times item size bytes."""
    import numpy

    prefix = stream.read(10)
    if len(prefix) < 10 or not prefix.startswith(b"\x93NUMPY"):
        raise Malformed("The .npy magic number or version is missing.")
    major = prefix[6]
    if major == 1:
        (length,) = struct.unpack("<H", prefix[8:10])
        start = 10
    elif major in (2, 3):
        (length,) = struct.unpack("<I", prefix[8:10] + stream.read(2))
        start = 12
    else:
        raise Malformed(f"The .npy format version {major} is unknown.")
    if start + length > size or length > 1024 * 1024:
        raise Malformed(f"The .npy header states {length} bytes, which the file cannot hold.")
    text = stream.read(length).decode("utf-8" if major == 3 else "latin1", errors="replace")
    try:
        header = ast.literal_eval(text)
        dtype = numpy.lib.format.descr_to_dtype(header["descr"])
        shape = tuple(header["shape"])
        bool(header["fortran_order"])
    except (ValueError, SyntaxError, KeyError, TypeError, MemoryError, RecursionError) as error:
        raise Malformed(f"The .npy header is not a valid array description ({error}).") from None
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise Malformed(f"The .npy header's shape {shape} is not a list of sizes.")
    if dtype.hasobject:
        outcome.find(
            "object_array",
            "The array holds Python objects, stored as a pickle that numpy.load runs only with allow_pickle=True.",
            severity="suspicious",
            **({"member": member} if member else {}),
        )
        _scan_pickle(stream, outcome, member=member)
        return
    expected = start + length + math.prod(shape) * dtype.itemsize
    if expected != size:
        raise Malformed(f"The .npy header describes {expected} bytes with its data; the file has {size}.")


# safetensors --------------------------------------------------------------------------------------------------------


def _check_safetensors(stream: BinaryIO, size: int) -> None:
    """Length field within the file and safetensors' limit; a JSON object of tensors with known dtypes, whose
    offsets match their shapes and tile the data section exactly, without gaps or overlaps."""
    (length,) = struct.unpack("<Q", stream.read(8))
    if length > SAFETENSORS_HEADER_LIMIT or 8 + length > size:
        raise Malformed(f"The safetensors header states {length} bytes, which the {size}-byte file cannot hold.")
    try:
        document = json.loads(stream.read(length).decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Malformed("The safetensors header is not UTF-8 JSON.") from None
    if not isinstance(document, dict):
        raise Malformed("The safetensors header is not a JSON object.")
    metadata = document.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise Malformed("The safetensors __metadata__ is not an object of strings.")
    spans = []
    for name, entry in document.items():
        if not isinstance(entry, dict):
            raise Malformed(f"Tensor '{name}' is not an object.")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in SAFETENSORS_DTYPE_SIZES:
            raise Malformed(f"Tensor '{name}' has the unknown dtype {dtype!r}.")
        if not isinstance(shape, list) or not all(_count(n) for n in shape):
            raise Malformed(f"Tensor '{name}' has no shape of sizes.")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_count(o) for o in offsets)):
            raise Malformed(f"Tensor '{name}' has no pair of data offsets.")
        begin, end = offsets
        if end - begin != math.prod(shape) * SAFETENSORS_DTYPE_SIZES[dtype]:
            raise Malformed(f"Tensor '{name}' spans {end - begin} bytes; its shape {shape} of {dtype} needs another.")
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise Malformed(f"Tensor '{name}' starts at {begin}, not where the previous one ends ({position}).")
        position = end
    if position != size - 8 - length:
        raise Malformed(f"The tensors cover {position} bytes; the file holds {size - 8 - length} after the header.")


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# GGUF ---------------------------------------------------------------------------------------------------------------


def _check_gguf(stream: BinaryIO, size: int) -> None:
    """Magic, a known version, and every count, string and array length of the metadata and tensor table within
    the file (what llama.cpp's parser overflows were about); tensor offsets aligned and inside the data section."""
    reader = _Bounded(stream, size)
    reader.take(4)
    (gguf_version,) = reader.unpack("<I")
    if gguf_version not in (2, 3):
        raise Malformed(f"GGUF version {gguf_version} is not one this scanner reads (2 or 3).")
    tensors, kvs = reader.unpack("<QQ")
    # Each metadata pair takes at least 12 bytes and each tensor entry at least 24.
    if kvs * 12 + tensors * 24 > size:
        raise Malformed(f"The GGUF header counts {tensors} tensors and {kvs} metadata pairs; the file is too small.")
    alignment = 32
    for _ in range(kvs):
        key = reader.string()
        (kind,) = reader.unpack("<I")
        value = reader.value(kind)
        if key == "general.alignment":
            if not isinstance(value, int) or value <= 0 or value & (value - 1):
                raise Malformed(f"general.alignment {value!r} is not a power of two.")
            alignment = value
    offsets = []
    for _ in range(tensors):
        name = reader.string()
        (dims,) = reader.unpack("<I")
        if dims > 4:
            raise Malformed(f"Tensor {name!r} has {dims} dimensions; GGUF allows at most 4.")
        reader.take(8 * dims)
        _, offset = reader.unpack("<IQ")
        if offset % alignment:
            raise Malformed(f"Tensor {name!r} starts at offset {offset}, not a multiple of the alignment {alignment}.")
        offsets.append((offset, name))
    data_start = -(-reader.position // alignment) * alignment
    for offset, name in offsets:
        if data_start + offset > size:
            raise Malformed(f"Tensor {name!r} starts at offset {offset}, past the end of the file.")


class _Bounded:
    """Reads a GGUF header forward, refusing any length that would run past the file's end."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size, self.position = stream, size, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.position + n > self.size:
            raise Malformed(f"The GGUF header asks for {n} bytes at offset {self.position}, past the file's end.")
        data = self.stream.read(n)
        self.position += len(data)
        if len(data) != n:
            raise Malformed("The GGUF header ends early.")
        return data

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def string(self) -> str:
        (length,) = self.unpack("<Q")
        if length > 1024 * 1024:
            raise Malformed(f"A GGUF string states {length} bytes, more than any key or name needs.")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind == GGUF_STRING:
            return self.string()
        if kind == GGUF_ARRAY:
            item_kind, count = self.unpack("<IQ")
            if item_kind in GGUF_VALUE_SIZES:
                self.take(GGUF_VALUE_SIZES[item_kind] * count)
            elif item_kind == GGUF_STRING:
                for _ in range(count):
                    self.string()
            else:
                raise Malformed(f"A GGUF array holds values of the unknown type {item_kind}.")
            return None
        if kind not in GGUF_VALUE_SIZES:
            raise Malformed(f"A GGUF metadata value has the unknown type {kind}.")
        data = self.take(GGUF_VALUE_SIZES[kind])
        return int.from_bytes(data, "little") if kind in (0, 2, 4, 10) else data


# ONNX -------------------------------------------------------------------------------------------------------------


def _check_onnx(stream: BinaryIO, size: int, outcome: ScanOutcome) -> None:
    """Parsed with the `onnx` package (as artifacts/onnx_header.py does for previews) and run through its checker;
    weights stored outside the file must name a relative path inside the model's folder."""
    if size > ONNX_SCAN_LIMIT:
        outcome.incomplete = True
        outcome.find(
            "not_checked",
            f"The ONNX file is larger than {ONNX_SCAN_LIMIT // 1024**2} MiB: its graph sits among its weights in "
            "one message, parsed whole, so it was not checked.",
            severity="error",
        )
        return
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(stream.read(size))
    except (DecodeError, RuntimeWarning, ValueError) as error:
        raise Malformed(f"The file does not parse as an ONNX model ({error}).") from None
    if not model.HasField("graph"):
        raise Malformed("The file has no ONNX graph.")
    external = [t for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    for tensor in external:
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        if location.startswith(("/", "\\")) or ".." in location.replace("\\", "/").split("/") or ":" in location:
            outcome.find(
                "external_data_path",
                f"Weight {tensor.name!r} is read from {location!r}, outside the model's folder.",
                name=tensor.name,
            )
    if external:
        # The checker would look for those files on this machine: the weights are not in this blob, so say so.
        outcome.find(
            "external_data",
            f"{len(external)} weights are stored outside this file; they were not checked.",
            severity="suspicious",
        )
        return
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise Malformed(f"The ONNX checker refused the model: {str(error).splitlines()[0]}") from None


def _read_at(stream: BinaryIO, offset: int, n: int) -> bytes:
    stream.seek(offset)
    return stream.read(n)
