"""The audit log's tree as the database keeps it (core.audit.tree): its roots and proofs equal those computed in
memory by core.crypto.merkle, its kept subtrees are extended idempotently, and a proof costs a constant number of
queries."""

import pytest

from core.audit import tree as audit_tree
from core.audit.recorder import AuditObject, audit_record
from core.crypto.merkle import consistency_ranges, inclusion_ranges, tree_root, verify_consistency, verify_inclusion
from core.models import AuditEntry, AuditTreeNode


def range_hashes(leaves: list[bytes], ranges: list[tuple[int, int]]) -> list[bytes]:
    """The hash of each range of leaves, computed straight from the leaves (the server folds stored subtrees)."""
    return [tree_root(leaves[start:end]) for start, end in ranges]


def record_entries(count: int) -> list[bytes]:
    """Record `count` entries through the one recording function; return every leaf hash of the log so far."""
    for number in range(count):
        audit_record("project.updated", obj=AuditObject(type="test", id=str(number), label="x"))
    return [bytes(digest) for digest in AuditEntry.objects.order_by("seq").values_list("leaf_hash", flat=True)]


def kept_nodes() -> dict[tuple[int, int], bytes]:
    return {
        (level, index): bytes(digest)
        for level, index, digest in AuditTreeNode.objects.values_list("level", "index", "hash")
    }


def expected_kept_nodes(leaves: list[bytes], size: int) -> dict[tuple[int, int], bytes]:
    """Every aligned perfect subtree of 16 or more leaves among the first `size`, hashed from the leaves."""
    nodes = {}
    level = audit_tree.KEPT_LEVEL
    while (1 << level) <= size:
        width = 1 << level
        for index in range(size // width):
            nodes[(level, index)] = tree_root(leaves[index * width : (index + 1) * width])
        level += 1
    return nodes


@pytest.mark.django_db
class TestDatabaseTree:
    def test_roots_below_at_and_above_the_kept_size(self):
        leaves = record_entries(300)
        assert audit_tree.log_size() == 300
        audit_tree.extend_kept_subtrees(150)
        assert audit_tree.kept_size() == 144
        # From sizes the kept subtrees already cover to sizes that make them grow, one at a time.
        for size in range(0, 301):
            assert audit_tree.root_at(size) == tree_root(leaves[:size]), size
        assert audit_tree.kept_size() == 288
        # And again with every kept subtree there: sizes far below the kept size use only those they need.
        for size in [1, 15, 16, 17, 31, 32, 33, 100, 128, 143, 144, 145, 255, 256, 257, 287, 288, 289, 300]:
            assert audit_tree.root_at(size) == tree_root(leaves[:size]), size

    def test_proofs_equal_the_in_memory_proofs(self):
        leaves = record_entries(300)
        for size in [1, 2, 15, 16, 17, 33, 64, 100, 255, 256, 257, 299, 300]:
            for seq in sorted({0, 1, 15, 16, 17, size // 2, size - 1} & set(range(size))):
                proof = audit_tree.inclusion_proof(seq, size)
                assert proof == range_hashes(leaves, inclusion_ranges(seq, size)), (seq, size)
                assert verify_inclusion(seq, size, leaves[seq], proof, tree_root(leaves[:size]))
            for first in sorted({0, 1, 7, 16, 17, 32, size // 3, size - 1, size} & set(range(size + 1))):
                proof = audit_tree.consistency_proof(first, size)
                assert proof == range_hashes(leaves, consistency_ranges(first, size)), (first, size)
                assert verify_consistency(first, size, tree_root(leaves[:first]), tree_root(leaves[:size]), proof)

    def test_extending_is_idempotent_and_the_same_in_steps(self, monkeypatch):
        leaves = record_entries(300)
        expected = expected_kept_nodes(leaves, 300)
        audit_tree.extend_kept_subtrees(300)
        assert kept_nodes() == expected
        audit_tree.extend_kept_subtrees(300)  # twice: nothing new, nothing changed
        assert kept_nodes() == expected

        AuditTreeNode.objects.all().delete()
        audit_tree.extend_kept_subtrees(130)  # in two halves, the first ending inside a 16-leaf run
        assert kept_nodes() == expected_kept_nodes(leaves, 130)
        audit_tree.extend_kept_subtrees(300)
        assert kept_nodes() == expected

        AuditTreeNode.objects.all().delete()
        monkeypatch.setattr(audit_tree, "EXTEND_CHUNK", 48)  # chunks that end mid-subtree at every level above 4
        audit_tree.extend_kept_subtrees(300)
        assert kept_nodes() == expected

    def test_extending_in_two_runs_that_overlap(self):
        """Two processes may extend at once: the second inserts rows the first already has, and keeps them."""
        leaves = record_entries(100)
        audit_tree.extend_kept_subtrees(100)
        rows = list(AuditTreeNode.objects.values_list("level", "index", "hash"))
        AuditTreeNode.objects.filter(level=audit_tree.KEPT_LEVEL, index__gte=3).delete()  # a run that stopped early
        audit_tree.extend_kept_subtrees(100)
        assert sorted((level, index, bytes(digest)) for level, index, digest in rows) == sorted(
            (level, index, digest) for (level, index), digest in expected_kept_nodes(leaves, 100).items()
        )
        assert kept_nodes() == expected_kept_nodes(leaves, 100)

    @pytest.mark.parametrize("count", [100, 5000])
    def test_a_proof_costs_a_constant_number_of_queries(self, count, django_assert_max_num_queries):
        leaves = record_entries(count)
        audit_tree.extend_kept_subtrees(count)
        root = tree_root(leaves)
        for seq in (0, count // 3, count - 1):
            with django_assert_max_num_queries(3):
                proof = audit_tree.inclusion_proof(seq, count)
            assert verify_inclusion(seq, count, leaves[seq], proof, root)
        for first in (1, count // 2 + 3, count - 1):
            with django_assert_max_num_queries(3):
                proof = audit_tree.consistency_proof(first, count)
            assert verify_consistency(first, count, tree_root(leaves[:first]), root, proof)
        with django_assert_max_num_queries(3):
            assert audit_tree.root_at(count) == root
