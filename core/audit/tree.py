"""The audit log's Merkle tree as the database holds it: leaf hashes on the entries, and the hashes of every
perfect subtree of at least 16 leaves in AuditTreeNode, so a root or a proof at any size takes three queries.

Which subtrees a root or a proof needs and how they are hashed is `core.crypto.merkle`'s to say: the offline
verifier auditors run (tools/audit_verify.py) applies the same module, so the server and the auditor agree on the
rules. This module only stores and reads the hashes.
"""

from django.db import transaction
from django.db.models import Max, Q

from core.crypto.merkle import (
    EMPTY_ROOT,
    consistency_ranges,
    fold_subtrees,
    inclusion_ranges,
    node_hash,
    perfect_subtrees,
    tree_root,
)
from core.models import AuditEntry, AuditLogHead, AuditTreeNode

# Subtrees below this level (fewer than 16 leaves) are hashed from their leaves when needed: storing them would
# add a row for every leaf, and a proof needs at most two runs of 16 leaves.
KEPT_LEVEL = 4
KEPT_WIDTH = 1 << KEPT_LEVEL
# Leaves read per step while extending the kept subtrees (a multiple of KEPT_WIDTH).
EXTEND_CHUNK = 1 << 14


def log_size() -> int:
    """The number of committed entries: the head is advanced in the transaction that adds an entry."""
    return AuditLogHead.objects.filter(pk=1).values_list("size", flat=True).first() or 0


def _leaf_hashes(seqs: Q) -> dict[int, bytes]:
    rows = AuditEntry.objects.filter(seqs).values_list("seq", "leaf_hash")
    return {seq: bytes(digest) for seq, digest in rows}


def kept_size() -> int:
    """How many leaves the kept subtrees cover (a multiple of 16)."""
    last = AuditTreeNode.objects.filter(level=KEPT_LEVEL).aggregate(last=Max("index"))["last"]
    return 0 if last is None else (last + 1) * KEPT_WIDTH


def _stored_node(level: int, index: int) -> bytes:
    return bytes(AuditTreeNode.objects.get(level=level, index=index).hash)


def extend_kept_subtrees(size: int) -> None:
    """Keep the hash of every perfect subtree of 16 or more leaves among the first `size` leaves.

    Idempotent, and safe to run in several processes at once: the hashes depend on the leaves alone, so two
    runs insert the same rows and the unique index keeps one. Each chunk commits on its own, all of its levels
    together, so the highest level-4 node always implies every node above it that it completes.
    """
    start, end = kept_size(), size - size % KEPT_WIDTH
    while start < end:
        stop = min(start + EXTEND_CHUNK, end)
        leaves = _leaf_hashes(Q(seq__gte=start, seq__lt=stop))
        new: dict[tuple[int, int], bytes] = {}
        for first in range(start, stop, KEPT_WIDTH):
            level, index = KEPT_LEVEL, first >> KEPT_LEVEL
            digest = _perfect_from_leaves(leaves, first, KEPT_WIDTH)
            new[(level, index)] = digest
            while index & 1:
                left = new.get((level, index - 1)) or _stored_node(level, index - 1)
                digest, level, index = node_hash(left, digest), level + 1, index >> 1
                new[(level, index)] = digest
        with transaction.atomic():
            AuditTreeNode.objects.bulk_create(
                [AuditTreeNode(level=level, index=index, hash=digest) for (level, index), digest in new.items()],
                ignore_conflicts=True,
                batch_size=2000,
            )
        start = stop


def _perfect_from_leaves(leaves: dict[int, bytes], first: int, width: int) -> bytes:
    """The hash of the `width` leaves from seq `first`, all of them in `leaves`."""
    return tree_root(leaves[seq] for seq in range(first, first + width))


def kept_subtrees_differing(leaves: dict[int, bytes]) -> list[tuple[int, int]]:
    """The kept subtrees, among those `leaves` cover entirely, whose stored hash is not the hash of these leaves, as
    (first seq, end seq) ranges. A root folds the kept hashes and never reads their leaves again: an entry rewritten
    together with its leaf hash, after its subtree was kept, shows only here (and in the offline verifier)."""
    computed: dict[tuple[int, int], bytes] = {}
    for first in range(0, max(leaves, default=-1) + 1, KEPT_WIDTH):
        if all(seq in leaves for seq in range(first, first + KEPT_WIDTH)):
            computed[(KEPT_LEVEL, first >> KEPT_LEVEL)] = _perfect_from_leaves(leaves, first, KEPT_WIDTH)
    level = KEPT_LEVEL
    while True:
        parents = {
            (level + 1, index >> 1): node_hash(computed[(level, index)], computed[(level, index + 1)])
            for (at, index) in list(computed)
            if at == level and index % 2 == 0 and (level, index + 1) in computed
        }
        if not parents:
            break
        computed |= parents
        level += 1
    differing = []
    for at in sorted({level for level, _ in computed}):
        indexes = [index for level, index in computed if level == at]
        stored = AuditTreeNode.objects.filter(level=at, index__in=indexes).values_list("index", "hash")
        differing += [
            (index << at, (index + 1) << at) for index, digest in stored if bytes(digest) != computed[(at, index)]
        ]
    return differing


def range_hashes(ranges: list[tuple[int, int]], size: int) -> list[bytes]:
    """The Merkle hash of each range of leaves, all read at once: the kept subtrees they are built from, and the
    leaves of any smaller pieces. Call with ranges inside the first `size` leaves of a committed log."""
    if size > kept_size() + KEPT_WIDTH - 1:
        extend_kept_subtrees(size)
    pieces = {range_: perfect_subtrees(*range_) for range_ in ranges}
    kept = {piece for parts in pieces.values() for piece in parts if piece[0] >= KEPT_LEVEL}
    small = {piece for parts in pieces.values() for piece in parts if piece[0] < KEPT_LEVEL}
    hashes: dict[tuple[int, int], bytes] = {}
    if kept:
        condition = Q()
        for level, index in kept:
            condition |= Q(level=level, index=index)
        hashes |= {
            (level, index): bytes(h)
            for level, index, h in AuditTreeNode.objects.filter(condition).values_list("level", "index", "hash")
        }
    if small:
        seqs = [seq for level, index in small for seq in range(index << level, (index + 1) << level)]
        leaves = _leaf_hashes(Q(seq__in=seqs))
        hashes |= {(level, index): _perfect_from_leaves(leaves, index << level, 1 << level) for level, index in small}
    return [fold_subtrees([hashes[piece] for piece in pieces[range_]]) for range_ in ranges]


def root_at(size: int) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return range_hashes([(0, size)], size)[0]


def inclusion_proof(seq: int, size: int) -> list[bytes]:
    return range_hashes(inclusion_ranges(seq, size), size)


def consistency_proof(first: int, second: int) -> list[bytes]:
    return range_hashes(consistency_ranges(first, second), second)
