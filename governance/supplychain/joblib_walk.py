"""The imports of a joblib dump whose NumPy arrays are written inline, between the pickle's opcodes.

joblib pickles each array as a `NumpyArrayWrapper` (its shape, dtype and order) and then writes the array's bytes
straight into the file (after a padding byte count and padding), or, for an array of objects, a whole pickle of
it; the outer pickle then goes on. A plain opcode walk stops at the first array. This walk follows the pickle's
stack without running anything (values are kept as plain data, and every call as a record of what would be
called), so it knows each wrapper's state when the wrapper is built, skips exactly that array's bytes (or walks
the nested pickle), and goes on; it answers every (module, name) the dump imports, for picklescan to judge.
Anything it does not understand raises JoblibWalkError: the caller then keeps the plain walk's "could not read".
"""

import io
import math
import pickletools
from dataclasses import dataclass, field
from typing import IO, Any

WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
#: More than this many opcodes is not a joblib dump of a model but an attempt to exhaust the walk.
MAX_OPCODES = 50_000_000


class JoblibWalkError(ValueError):
    """The dump does not follow joblib's layout as this walk knows it."""


@dataclass(eq=False)
class _Global:
    module: str
    name: str


@dataclass(eq=False)
class _Call:
    """What unpickling would create by calling `target` (never called here), and the state BUILD would give it."""

    target: Any
    args: Any = None
    state: Any = None


@dataclass(eq=False)
class _Opaque:
    """A value the walk does not need to know (bytes, a persistent id, a buffer)."""


@dataclass
class _Walk:
    stream: IO[bytes]
    skip_by_reading: bool
    found: set[tuple[str, str]] = field(default_factory=set)
    opcodes: int = 0


_MARK = object()
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}


def joblib_globals(stream: IO[bytes], *, skip_by_reading: bool = False) -> set[tuple[str, str]]:
    """Every (module, name) the pickles in `stream` import, inline arrays skipped; `skip_by_reading` for a stream
    that cannot seek forward (a decompressed one)."""
    walk = _Walk(stream, skip_by_reading)
    while True:
        first = stream.read(1)
        if not first:
            return walk.found
        stream.seek(-1, io.SEEK_CUR)
        _walk_pickle(walk)


def _walk_pickle(walk: _Walk) -> None:
    """One pickle, to its STOP, with every wrapper's array skipped as it is built."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        while True:
            # genops from the stream's position, one opcode at a time: after a wrapper's BUILD the stream must be
            # left where its array starts, so the generator is never allowed to read ahead.
            opcode, arg, _ = next(pickletools.genops(_OneOpcode(walk.stream)))
            walk.opcodes += 1
            if walk.opcodes > MAX_OPCODES:
                raise JoblibWalkError(f"More than {MAX_OPCODES} opcodes.")
            if opcode.name == "STOP":
                return
            built = _step(opcode.name, arg, stack, memo, walk)
            if built is not None:
                _skip_array(built, walk)
    except (IndexError, KeyError, TypeError, ValueError, StopIteration) as error:
        if isinstance(error, JoblibWalkError):
            raise
        raise JoblibWalkError(f"Not a joblib dump this walk can follow ({error!r}).") from None


class _OneOpcode(io.RawIOBase):
    """The stream as genops reads it: no read-ahead, and no STOP needed (the walk asks for one opcode at a time)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(n)

    def readline(self, size: int | None = -1) -> bytes:
        return self._stream.readline()

    def tell(self) -> int:
        return self._stream.tell()


def _pop_mark(stack: list[Any]) -> list[Any]:
    index = len(stack) - 1 - stack[::-1].index(_MARK)
    items = stack[index + 1 :]
    del stack[index:]
    return items


def _step(name: str, arg: Any, stack: list[Any], memo: dict[int, Any], walk: _Walk) -> _Call | None:
    """Apply one opcode; answer the wrapper it just built, if it built one."""
    if name in ("PROTO", "FRAME"):
        return None
    if name == "MARK":
        stack.append(_MARK)
    elif name in _CONSTANTS:
        stack.append(_CONSTANTS[name])
    elif name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT") or name in (
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
    ):
        stack.append(arg)
    elif name == "BINUNICODE8" or name in ("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"):
        stack.append(arg if isinstance(arg, str) else _Opaque())
    elif name in ("EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
        stack.append({"EMPTY_TUPLE": (), "EMPTY_LIST": [], "EMPTY_DICT": {}, "EMPTY_SET": []}[name])
    elif name == "TUPLE":
        stack.append(tuple(_pop_mark(stack)))
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        count = int(name[-1])
        items = tuple(stack[-count:])
        del stack[-count:]
        stack.append(items)
    elif name in ("LIST", "FROZENSET"):
        stack.append(_pop_mark(stack))
    elif name == "DICT":
        items = _pop_mark(stack)
        stack.append(_dict(items))
    elif name == "APPEND":
        value = stack.pop()
        _extend(stack[-1], [value])
    elif name in ("APPENDS", "ADDITEMS"):
        items = _pop_mark(stack)
        _extend(stack[-1], items)
    elif name == "SETITEM":
        value, key = stack.pop(), stack.pop()
        _set_items(stack[-1], [key, value])
    elif name == "SETITEMS":
        items = _pop_mark(stack)
        _set_items(stack[-1], items)
    elif name in ("GLOBAL", "INST"):
        module, _, attribute = arg.partition(" ")
        walk.found.add((module, attribute))
        target = _Global(module, attribute)
        stack.append(target if name == "GLOBAL" else _Call(target, tuple(_pop_mark(stack))))
    elif name == "STACK_GLOBAL":
        attribute, module = stack.pop(), stack.pop()
        if not isinstance(module, str) or not isinstance(attribute, str):
            module, attribute = "unknown", "unknown"
        walk.found.add((module, attribute))
        stack.append(_Global(module, attribute))
    elif name in ("REDUCE", "NEWOBJ"):
        args = stack.pop()
        stack.append(_Call(stack.pop(), args))
    elif name == "NEWOBJ_EX":
        kwargs, args = stack.pop(), stack.pop()
        stack.append(_Call(stack.pop(), (args, kwargs)))
    elif name == "OBJ":
        items = _pop_mark(stack)
        stack.append(_Call(items[0], tuple(items[1:])))
    elif name == "BUILD":
        state = stack.pop()
        target = stack[-1]
        if isinstance(target, _Call):
            target.state = state
            if isinstance(target.target, _Global) and (target.target.module, target.target.name) == WRAPPER:
                return target
    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[int(arg)] = stack[-1]
    elif name == "MEMOIZE":
        memo[len(memo)] = stack[-1]
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        stack.append(memo[int(arg)])
    elif name == "POP":
        stack.pop()
    elif name == "POP_MARK":
        _pop_mark(stack)
    elif name == "DUP":
        stack.append(stack[-1])
    elif name in ("PERSID", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER"):
        stack.append(_Opaque())
    elif name == "BINPERSID":
        stack[-1] = _Opaque()
    elif name == "READONLY_BUFFER":
        return None  # marks the buffer on top of the stack read-only: the stack itself does not change
    else:
        raise JoblibWalkError(f"The opcode {name} is not one a joblib dump uses.")
    return None


def _dict(items: list[Any]) -> dict:
    result: dict = {}
    _set_items(result, items)
    return result


def _set_items(target: Any, items: list[Any]) -> None:
    if isinstance(target, dict):
        for key, value in zip(items[::2], items[1::2], strict=True):
            if isinstance(key, str | int | float | bool | None):
                target[key] = value


def _extend(target: Any, items: list[Any]) -> None:
    if isinstance(target, list):
        target.extend(items)


def _skip_array(wrapper: _Call, walk: _Walk) -> None:
    """Past the bytes joblib wrote after the wrapper: a nested pickle for an array of objects, else an optional
    padding (its length in one byte, then that many bytes) and shape times item size bytes."""
    import numpy

    state = wrapper.state
    if not isinstance(state, dict):
        raise JoblibWalkError("A NumpyArrayWrapper without a state dict.")
    shape, dtype = state.get("shape"), state.get("dtype")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise JoblibWalkError(f"A NumpyArrayWrapper's shape is {shape!r}.")
    if not (
        isinstance(dtype, _Call) and isinstance(dtype.args, tuple) and dtype.args and isinstance(dtype.args[0], str)
    ):
        raise JoblibWalkError("A NumpyArrayWrapper's dtype is not numpy.dtype(<descr>).")
    descr = dtype.args[0]
    if descr.startswith("O"):
        _walk_pickle(walk)  # joblib pickles an array of objects whole, with pickle protocol 5
        return
    try:
        itemsize = numpy.dtype(descr).itemsize
    except TypeError as error:
        raise JoblibWalkError(f"A NumpyArrayWrapper's dtype {descr!r} is not one numpy knows.") from error
    if isinstance(dtype.state, tuple) and len(dtype.state) > 5 and isinstance(dtype.state[5], int):
        itemsize = dtype.state[5] if dtype.state[5] > 0 else itemsize  # a structured or flexible dtype's own
    if state.get("numpy_array_alignment_bytes") is not None:
        padding = walk.stream.read(1)
        if not padding:
            raise JoblibWalkError("The dump ends where an array's padding was due.")
        _skip(walk, padding[0])
    _skip(walk, math.prod(shape) * itemsize)


def _skip(walk: _Walk, count: int) -> None:
    if walk.skip_by_reading:
        while count > 0:
            data = walk.stream.read(min(count, 1024 * 1024))
            if not data:
                raise JoblibWalkError("The dump ends inside an array.")
            count -= len(data)
    else:
        walk.stream.seek(count, io.SEEK_CUR)
