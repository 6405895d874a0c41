"""The audit log's hashing and signing rules, shared by the server that keeps the log and the verifier that checks
it offline, so the two can never disagree on them. The verifier is the client's (`provenant audit verify`,
clients/python/src/provenant_client/audit_verify.py), and the client distribution ships this very file as
`provenant_client.merkle` (a link, not a copy): it must stay importable on Python 3.9 with the standard library and
`cryptography` alone.

Entries are the leaves of a Merkle tree as in RFC 6962 / RFC 9162 (leaf = SHA-256(0x00 || entry), node =
SHA-256(0x01 || left || right)), where an entry is its canonical JSON; a tree head signs the tree's size and root
with Ed25519. This module knows nothing else of the server: it imports the standard library and `cryptography`
only (import-linter forbids Django, the models and the domain here), so the client can ship it.
Its tests check it against RFC 6962's published test vectors, a literal transcription of the RFC and an
independent implementation (tests/core/crypto/test_merkle.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# The names of the two export formats: the server writes them, the verifier recognises them by these.
EXPORT_FORMAT = "provenant-audit-export/1"
FILTERED_EXPORT_FORMAT = "provenant-audit-filtered-export/1"
TREE_HEAD_DOMAIN = b"provenant-tree-head/v1\n"
EMPTY_ROOT = hashlib.sha256(b"").digest()


# The tree ----------------------------------------------------------------------------------------------------


def canonical_json(value: object) -> bytes:
    """The one byte form of a JSON value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def leaf_hash(entry_bytes: bytes) -> bytes:
    """A leaf's hash; the 0x00 prefix keeps a leaf from ever passing for an inner node (RFC 6962, 2.1)."""
    return hashlib.sha256(b"\x00" + entry_bytes).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An inner node's hash, from its children's; 0x01 sets it apart from a leaf's."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two smaller than `size` (size > 1): where RFC 6962 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


class Frontier:
    """The roots of the complete subtrees along a growing tree's right edge: leaves go in one at a time, and the
    root of the tree so far is always at hand, in memory logarithmic in the number of leaves."""

    __slots__ = ("size", "stack")

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def copy(self) -> Frontier:
        twin = Frontier()
        twin.size, twin.stack = self.size, list(self.stack)
        return twin

    def append(self, leaf: bytes) -> None:
        self.stack.append(leaf)
        self.size += 1
        size = self.size
        while not size & 1:
            right = self.stack.pop()
            self.stack[-1] = node_hash(self.stack[-1], right)
            size >>= 1

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        root = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            root = node_hash(left, root)
        return root


def tree_root(leaves: Iterable[bytes]) -> bytes:
    """The root of the tree of these leaf hashes, in their order (MTH, RFC 6962, 2.1); the empty tree's for none."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


# A proof is a list of subtree hashes; a subtree is a range of leaves [start, end). These two functions say which
# subtrees RFC 6962's PATH and PROOF need, so the server can fetch them all at once.


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes prove leaf `index` is in the tree of `size` leaves, leaf end first (PATH)."""
    if not 0 <= index < size:
        raise ValueError(f"Leaf {index} is not in a tree of {size} leaves.")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes prove the tree of `first` leaves is a prefix of the tree of `second` (PROOF)."""
    if not 0 <= first <= second:
        raise ValueError(f"A tree of {first} leaves cannot be a prefix of one of {second}.")
    if first in (0, second):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, second, first, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        ranges.append((start, end))
    return ranges[::-1]


def perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """Split a proof range into the perfect, aligned subtrees (level, index) its hash is built from, left first.

    Every range a proof names starts at a multiple of its left part's size, so the pieces are aligned; a server
    can keep their hashes, which never change once their leaves exist.
    """
    pieces = []
    while end - start > 0:
        size = end - start
        width = size if size & (size - 1) == 0 else split_point(size)
        level = width.bit_length() - 1
        pieces.append((level, start >> level))
        start += width
    return pieces


def fold_subtrees(hashes: list[bytes]) -> bytes:
    """The hash of a range from the hashes of its perfect subtrees (as `perfect_subtrees` lists them)."""
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162, 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162, 2.1.4.2 (with the trivial cases: an empty first tree, and two equal sizes)."""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    if first & (first - 1) == 0:
        proof = [first_root, *proof]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


# Signed tree heads -------------------------------------------------------------------------------------------


def key_id(public_key: bytes) -> str:
    """A short name for an Ed25519 public key (its 32 raw bytes)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def tree_head_message(*, tree_size: int, root_hash: str, signed_at: str, key: str) -> bytes:
    """The bytes an Ed25519 signature of a tree head covers."""
    body = {"key_id": key, "root_hash": root_hash, "signed_at": signed_at, "tree_size": tree_size}
    return TREE_HEAD_DOMAIN + canonical_json(body)


def tree_head_signature_ok(head: dict, public_key: bytes) -> bool:
    """Whether `head` (a tree head document: tree_size, root_hash, signed_at, key_id, signature) is signed by the
    Ed25519 key `public_key` (its 32 raw bytes). The key_id the head names is part of what is signed, never a
    reason to trust it: the caller picks the key."""
    message = tree_head_message(
        tree_size=head["tree_size"], root_hash=head["root_hash"], signed_at=head["signed_at"], key=head["key_id"]
    )
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(head["signature"]), message)
    except (InvalidSignature, ValueError):
        return False
    return True
