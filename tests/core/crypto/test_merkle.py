"""The audit log's Merkle tree rules (core.crypto.merkle) against RFC 6962's published test vectors, a literal
transcription of the RFC's recursive definitions, and an independent implementation (pymerkle); and the module's
standing apart from the server."""

import ast
import hashlib
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymerkle import InmemoryTree

from core.crypto import merkle
from core.crypto.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_ranges,
    fold_subtrees,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_subtrees,
    split_point,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

# The reference vectors of Certificate Transparency, as transparency-dev/merkle keeps them in proof/verify_test.go
# (from google/certificate-transparency's merkle_tree_test.cc). Their leaf numbers there count from 1; here from 0.
VECTOR_LEAVES = [
    bytes.fromhex(text)
    for text in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
VECTOR_ROOTS = [  # MTH of the first 1, 2, ..., 8 leaves
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
VECTOR_INCLUSION = [  # (index, size, PATH)
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
VECTOR_CONSISTENCY = [  # (first, second, PROOF)
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = hashlib.sha256(b"not in the tree").digest()


def leaves_of(count: int) -> list[bytes]:
    return [leaf_hash(b"entry %d" % number) for number in range(count)]


def proof_from(leaves: list[bytes], ranges: list[tuple[int, int]]) -> list[bytes]:
    """A proof the way the server builds one: each range's hash folded from its perfect subtrees."""
    proof = []
    for start, end in ranges:
        pieces = perfect_subtrees(start, end)
        proof.append(fold_subtrees([tree_root(leaves[i << lvl : (i + 1) << lvl]) for lvl, i in pieces]))
    return proof


# RFC 6962, section 2.1, transcribed literally: an oracle that shares nothing with the code under test but node_hash.


def rfc_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(rfc_mth(leaves[:k]), rfc_mth(leaves[k:]))


def rfc_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = split_point(len(leaves))
    if m < k:
        return [*rfc_path(m, leaves[:k]), rfc_mth(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), rfc_mth(leaves[:k])]


def rfc_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [rfc_mth(leaves)]
    k = split_point(n)
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], complete), rfc_mth(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), rfc_mth(leaves[:k])]


def rfc_proof(m: int, leaves: list[bytes]) -> list[bytes]:
    return rfc_subproof(m, leaves, True) if 0 < m < len(leaves) else []


class TestReferenceVectors:
    def test_the_empty_tree_and_the_leaf_hash(self):
        assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        assert tree_root([]) == EMPTY_ROOT
        assert leaf_hash(b"").hex() == VECTOR_ROOTS[0]

    @pytest.mark.parametrize("size", range(1, 9))
    def test_roots(self, size):
        assert tree_root(leaf_hash(leaf) for leaf in VECTOR_LEAVES[:size]).hex() == VECTOR_ROOTS[size - 1]

    @pytest.mark.parametrize(("index", "size", "path"), VECTOR_INCLUSION)
    def test_inclusion_paths(self, index, size, path):
        leaves = [leaf_hash(leaf) for leaf in VECTOR_LEAVES]
        proof = proof_from(leaves, inclusion_ranges(index, size))
        assert [digest.hex() for digest in proof] == path
        root = bytes.fromhex(VECTOR_ROOTS[size - 1])
        assert verify_inclusion(index, size, leaves[index], proof, root)

    @pytest.mark.parametrize(("first", "second", "path"), VECTOR_CONSISTENCY)
    def test_consistency_paths(self, first, second, path):
        leaves = [leaf_hash(leaf) for leaf in VECTOR_LEAVES]
        proof = proof_from(leaves, consistency_ranges(first, second))
        assert [digest.hex() for digest in proof] == path
        first_root, second_root = (bytes.fromhex(VECTOR_ROOTS[size - 1]) for size in (first, second))
        assert verify_consistency(first, second, first_root, second_root, proof)


def _corrupted_inclusion(index, size, leaf, proof, root):
    """The probes transparency-dev/merkle's verify_test.go runs against a good proof; none may verify."""
    probes = [
        (index - 1, size, leaf, proof, root),
        (index + 1, size, leaf, proof, root),
        (index ^ 2, size, leaf, proof, root),
        (index, size * 2, leaf, proof, root),
        (index, size // 2, leaf, proof, root),
        (index, size, SOME_HASH, proof, root),
        (index, size, leaf, proof, EMPTY_ROOT),
        (index, size, leaf, proof, SOME_HASH),
        (index, size, leaf, [*proof, b""], root),
        (index, size, leaf, [*proof, root], root),
        (index, size, leaf, [b"", *proof], root),
        (index, size, leaf, [root, *proof], root),
    ]
    for position in range(len(proof)):
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 8]) + flipped[position][1:]
        probes.append((index, size, leaf, flipped, root))
    if proof:
        probes.append((index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        probes.append((index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root))
    return probes


def _corrupted_consistency(first, second, first_root, second_root, proof):
    probes = [
        (first - 1, second, first_root, second_root, proof),
        (first + 1, second, first_root, second_root, proof),
        (first ^ 2, second, first_root, second_root, proof),
        (first, second * 2, first_root, second_root, proof),
        (first, second // 2, first_root, second_root, proof),
        (first, second, SOME_HASH, second_root, proof),
        (first, second, first_root, SOME_HASH, proof),
        (first, second, second_root, first_root, proof),
        (first, second, first_root, second_root, []),
        (first, second, first_root, second_root, [*proof, b""]),
        (first, second, first_root, second_root, [*proof, first_root]),
        (first, second, first_root, second_root, [*proof, second_root]),
        (first, second, first_root, second_root, [b"", *proof]),
        (first, second, first_root, second_root, [first_root, *proof]),
        (first, second, first_root, second_root, [second_root, *proof]),
        (first, second, first_root, second_root, [proof[0], *proof]),
        (first, second, first_root, second_root, proof[:-1]),
    ]
    for position in range(len(proof)):
        flipped = list(proof)
        flipped[position] = bytes([flipped[position][0] ^ 16]) + flipped[position][1:]
        probes.append((first, second, first_root, second_root, flipped))
    return probes


class TestVerifiersRejectCorruptedProofs:
    @pytest.mark.parametrize(("index", "size", "path"), VECTOR_INCLUSION)
    def test_inclusion(self, index, size, path):
        leaves = [leaf_hash(leaf) for leaf in VECTOR_LEAVES]
        proof, root = [bytes.fromhex(h) for h in path], bytes.fromhex(VECTOR_ROOTS[size - 1])
        for probe in _corrupted_inclusion(index, size, leaves[index], proof, root):
            assert not verify_inclusion(*probe), probe

    @pytest.mark.parametrize(("first", "second", "path"), [v for v in VECTOR_CONSISTENCY if v[2]])
    def test_consistency(self, first, second, path):
        proof = [bytes.fromhex(h) for h in path]
        first_root, second_root = (bytes.fromhex(VECTOR_ROOTS[size - 1]) for size in (first, second))
        for probe in _corrupted_consistency(first, second, first_root, second_root, proof):
            assert not verify_consistency(*probe), probe

    def test_trivial_consistency_cases(self):
        """transparency-dev's table of sizes that are always consistent, or never."""
        a, b = SOME_HASH, EMPTY_ROOT
        assert verify_consistency(0, 0, a, a, [])
        assert verify_consistency(0, 1, a, b, [])
        assert verify_consistency(1, 1, b, b, [])
        assert not verify_consistency(1, 1, a, b, [])
        assert not verify_consistency(1, 0, a, b, [])
        assert not verify_consistency(2, 1, a, b, [])
        assert not verify_consistency(1, 2, a, b, [])
        assert not verify_consistency(0, 0, b, b, [b])
        assert not verify_consistency(0, 1, b, b, [b])
        assert not verify_consistency(1, 1, b, b, [b])

    def test_out_of_range_inclusion(self):
        for index, size in ((0, 0), (1, 0), (2, 1), (-1, 4)):
            assert not verify_inclusion(index, size, SOME_HASH, [], SOME_HASH)
        with pytest.raises(ValueError, match="not in a tree"):
            inclusion_ranges(3, 3)
        with pytest.raises(ValueError, match="cannot be a prefix"):
            consistency_ranges(4, 3)


def _pymerkle_tree(count: int) -> tuple[InmemoryTree, list[bytes]]:
    tree = InmemoryTree(algorithm="sha256")
    entries = [b"entry %d" % number for number in range(count)]
    for entry in entries:
        tree.append_entry(entry)
    return tree, [leaf_hash(entry) for entry in entries]


class TestAgainstPymerkle:
    def test_roots_for_every_size_to_300(self):
        tree, leaves = _pymerkle_tree(300)
        frontier = Frontier()
        for size in range(1, 301):
            frontier.append(leaves[size - 1])
            expected = tree.get_root(size)
            assert tree_root(leaves[:size]) == expected, size
            assert frontier.root() == expected, size
        assert tree.get_root(0) == EMPTY_ROOT == Frontier().root()

    @pytest.mark.parametrize("size", [511, 512, 513, 1000, 1023, 1024, 1025, 4097, 16385, 65537])
    def test_roots_of_larger_trees(self, size):
        tree, leaves = _pymerkle_tree(size)
        root = tree.get_root(size)
        assert tree_root(leaves) == root
        for index in (0, size // 2 + 1, size - 1):
            proof = proof_from(leaves, inclusion_ranges(index, size))
            assert proof == tree.prove_inclusion(index + 1, size).path[1:]
            assert verify_inclusion(index, size, leaves[index], proof, root)

    def test_inclusion_proofs(self):
        tree, leaves = _pymerkle_tree(300)
        for size in [*range(1, 70), 127, 128, 129, 200, 255, 256, 257, 300]:
            root = tree.get_root(size)
            for index in sorted({0, 1, size // 3, size // 2, size - 2, size - 1} & set(range(size))):
                proof = proof_from(leaves, inclusion_ranges(index, size))
                # pymerkle's path opens with the leaf itself, then the siblings leaf end first, as RFC 6962's PATH.
                assert proof == tree.prove_inclusion(index + 1, size).path[1:], (index, size)
                assert verify_inclusion(index, size, leaves[index], proof, root)
                for probe in _corrupted_inclusion(index, size, leaves[index], proof, root):
                    assert not verify_inclusion(*probe), (index, size, probe)

    def test_consistency_proofs_for_all_sizes_to_64(self):
        tree, leaves = _pymerkle_tree(64)
        for second in range(1, 65):
            second_root = tree.get_root(second)
            for first in range(1, second + 1):
                first_root = tree.get_root(first)
                proof = proof_from(leaves, consistency_ranges(first, second))
                assert proof == rfc_proof(first, leaves[:second]), (first, second)
                assert verify_consistency(first, second, first_root, second_root, proof), (first, second)
                if proof:
                    for probe in _corrupted_consistency(first, second, first_root, second_root, proof):
                        assert not verify_consistency(*probe), (first, second, probe)
                # pymerkle's proof of the same pair checks out too: both trees agree on what the prefix is.
                assert tree.prove_consistency(first, second).verify(first_root, second_root) is None


@settings(max_examples=200, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=3000))
def test_inclusion_property(data, size):
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves = leaves_of(size)
    proof = proof_from(leaves, inclusion_ranges(index, size))
    assert proof == rfc_path(index, leaves)
    root = tree_root(leaves)
    assert verify_inclusion(index, size, leaves[index], proof, root)
    assert not verify_inclusion(index, size, SOME_HASH, proof, root)
    if size > 1:
        other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index))
        assert not verify_inclusion(other, size, leaves[index], proof, root)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), second=st.integers(min_value=1, max_value=3000))
def test_consistency_property(data, second):
    first = data.draw(st.integers(min_value=1, max_value=second))
    leaves = leaves_of(second)
    proof = proof_from(leaves, consistency_ranges(first, second))
    assert proof == rfc_proof(first, leaves)
    first_root, second_root = tree_root(leaves[:first]), tree_root(leaves)
    assert verify_consistency(first, second, first_root, second_root, proof)
    if first < second:
        assert not verify_consistency(first, second, SOME_HASH, second_root, proof)
        assert not verify_consistency(first, second, first_root, SOME_HASH, proof)


@settings(max_examples=500, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=1 << 40))
def test_proof_ranges_split_into_aligned_perfect_subtrees(data, size):
    """The server reads a proof's ranges as kept perfect subtrees: they must be aligned and cover the range."""
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    first = data.draw(st.integers(min_value=0, max_value=size))
    for start, end in [*inclusion_ranges(index, size), *consistency_ranges(first, size)]:
        assert 0 <= start < end <= size
        position = start
        for level, piece in perfect_subtrees(start, end):
            assert piece << level == position
            position += 1 << level
        assert position == end


def test_the_module_imports_only_the_standard_library_and_cryptography():
    """Auditors copy it beside the verifier, without the server: no Django, nothing else of this repository."""
    tree = ast.parse(Path(merkle.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would not survive being copied"
            imported.add(node.module.split(".")[0])

    assert "cryptography" in imported
    assert imported - {"cryptography"} <= sys.stdlib_module_names, imported - sys.stdlib_module_names
