"""A SHA-256 whose state can be saved between the chunks of an upload session, and that hashes beside the threads
receiving and writing a chunk instead of stopping them.

`rehashes.PySha256` serialises its state, which hashlib cannot, but holds the GIL while it hashes: in a session
chunk the hashing thread then stops the receiving and writing threads for its whole share of the work (about 0.6 s
a GiB here), so the three ran one after the other (measured in benchmarks/README.md, "The MLflow plugin"). OpenSSL's
own `SHA256_Update`, called through ctypes, releases the GIL for the call and its `SHA256_CTX` is a plain struct,
so its state can be copied out and back in.

The state is stored in rehashes' format whichever implementation hashed: the sessions already in the database stay
readable, and a server whose OpenSSL lacks these functions (or a big-endian one) falls back to rehashes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import struct
import sys
from typing import Protocol

import rehashes

#: OpenSSL's SHA256_CTX: h[8], Nl, Nh (the length in bits), data[16] (the partial block), num, md_len.
_CTX_SIZE = 112
_CTX = struct.Struct("<8I2I64s2I")
#: rehashes (the sha2 crate's serialised state): h[8], whole blocks hashed (u64), bytes in the partial block (u8),
#: the partial block padded to 63 bytes.
_REHASHES = struct.Struct("<8IQB63s")


class Sha256State(Protocol):
    def update(self, data: bytes) -> None: ...
    def serialize(self) -> bytes: ...
    def finalize(self) -> str: ...


def _load_openssl() -> ctypes.CDLL | None:
    """libcrypto with the low-level SHA-256 calls, checked against hashlib; None where it is not usable."""
    if sys.byteorder != "little":  # the state's words would not be in rehashes' order
        return None
    name = ctypes.util.find_library("crypto")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)  # a CDLL call releases the GIL for its duration
        for function in (library.SHA256_Init, library.SHA256_Update, library.SHA256_Final):
            function.restype = ctypes.c_int
        library.SHA256_Init.argtypes = [ctypes.c_void_p]
        library.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        library.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    probe = OpenSslSha256(library)
    probe.update(b"abc" * 100)
    if probe.finalize() != hashlib.sha256(b"abc" * 100).hexdigest():
        return None
    return library


class OpenSslSha256:
    """OpenSSL's SHA-256 through ctypes: the GIL is released while a block is hashed."""

    def __init__(self, library: ctypes.CDLL, state: bytes | None = None) -> None:
        self._library = library
        self._context = ctypes.create_string_buffer(_CTX_SIZE)
        if state:
            self._context.raw = self._from_rehashes(state)
        else:
            library.SHA256_Init(self._context)

    def update(self, data: bytes) -> None:
        if not isinstance(data, bytes):
            data = bytes(data)  # c_char_p takes bytes only; received blocks already are
        self._library.SHA256_Update(self._context, data, len(data))

    def serialize(self) -> bytes:
        *words, low, high, data, num, _ = _CTX.unpack(self._context.raw)
        length = ((high << 32) | low) // 8
        return _REHASHES.pack(*words, (length - num) // 64, num, data[:num])

    def finalize(self) -> str:
        context = ctypes.create_string_buffer(self._context.raw, _CTX_SIZE)  # this state stays usable
        digest = ctypes.create_string_buffer(32)
        self._library.SHA256_Final(digest, context)
        return digest.raw.hex()

    @staticmethod
    def _from_rehashes(state: bytes) -> bytes:
        *words, blocks, num, data = _REHASHES.unpack(state)
        bits = (blocks * 64 + num) * 8
        return _CTX.pack(*words, bits & 0xFFFFFFFF, bits >> 32, data[:num], num, 32)


_OPENSSL = _load_openssl()


def new_sha256(state: bytes | None = None) -> Sha256State:
    """A SHA-256 starting afresh or from a saved state (rehashes' format, whichever implementation saved it)."""
    if _OPENSSL is not None:
        return OpenSslSha256(_OPENSSL, state)
    return rehashes.PySha256.deserialize(state) if state else rehashes.PySha256()


def releases_gil() -> bool:
    """Whether hashing here lets the other threads run (OpenSSL is used), for the benchmark's notes."""
    return _OPENSSL is not None
