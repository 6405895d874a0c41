"""The database itself refuses to rewrite the audit log: the triggers of migration governance/0004 stop a raw
`QuerySet.update()` or `delete()` and plain SQL alike, on SQLite and on PostgreSQL."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.recorder import AuditObject, audit_record, tree_head_sign
from core.models import AuditEntry, AuditLogHead, AuditTreeNode, SignedTreeHead


def refused(statement) -> None:
    """`statement` raises IntegrityError, in a savepoint so the test's transaction goes on (PostgreSQL aborts a
    transaction at its first error)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        statement()


def sql(text: str, model, params=()):
    table = connection.ops.quote_name(model._meta.db_table)

    def run():
        with connection.cursor() as cursor:
            cursor.execute(text.format(table=table), params)

    return run


@pytest.fixture
def log(db, settings, tmp_path):
    settings.PROVENANT_AUDIT_SIGNING_KEY = ""
    settings.PROVENANT_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "audit-signing-key.pem")
    signing.signing_key.cache_clear()
    for number in range(40):
        audit_record("project.updated", obj=AuditObject(type="test", id=str(number), label=f"object {number}"))
    head = tree_head_sign()
    yield head
    signing.signing_key.cache_clear()


class TestAuditEntries:
    def test_update_is_refused(self, log):
        refused(lambda: AuditEntry.objects.filter(seq=3).update(object_label="rewritten"))
        refused(lambda: AuditEntry.objects.update(leaf_hash=b"\0" * 32))
        refused(sql("UPDATE {table} SET action = 'rewritten' WHERE seq = 3", AuditEntry))
        entry = AuditEntry.objects.get(seq=3)
        entry.actor_label = "someone else"
        refused(lambda: entry.save(update_fields=["actor_label"]))
        assert AuditEntry.objects.get(seq=3).object_label == "object 3"

    def test_delete_is_refused(self, log):
        refused(lambda: AuditEntry.objects.filter(seq=39).delete())
        refused(lambda: AuditEntry.objects.get(seq=0).delete())
        refused(sql("DELETE FROM {table} WHERE seq >= 20", AuditEntry))
        assert AuditEntry.objects.count() == 40

    def test_appending_goes_on(self, log):
        entry = audit_record("project.updated", obj=AuditObject(type="test", id="40", label="object 40"))
        assert entry.seq == 40
        assert audit_tree.log_size() == 41


class TestSignedTreeHeads:
    def test_update_is_refused(self, log):
        refused(lambda: SignedTreeHead.objects.filter(pk=log.pk).update(root_hash="0" * 64))
        refused(sql("UPDATE {table} SET tree_size = 1", SignedTreeHead))
        log.signature = "forged"
        refused(log.save)
        assert SignedTreeHead.objects.get(pk=log.pk).root_hash == audit_tree.root_at(40).hex()

    def test_delete_is_refused(self, log):
        refused(lambda: SignedTreeHead.objects.all().delete())
        refused(sql("DELETE FROM {table}", SignedTreeHead))
        assert SignedTreeHead.objects.count() == 1


class TestTreeNodes:
    def test_update_is_refused(self, log):
        assert AuditTreeNode.objects.exists()  # signing the head kept the subtrees of 16 and 32 leaves
        refused(lambda: AuditTreeNode.objects.update(hash=b"\0" * 32))
        refused(sql("UPDATE {table} SET level = level + 1", AuditTreeNode))
        assert audit_tree.root_at(40) == bytes.fromhex(log.root_hash)


class TestLogHead:
    def test_only_a_step_of_one_is_allowed(self, log):
        head = AuditLogHead.objects.filter(pk=1)
        refused(lambda: head.update(size=F("size") + 2))
        refused(lambda: head.update(size=F("size") - 1))
        refused(lambda: head.update(size=0))
        refused(lambda: head.update(size=F("size")))
        refused(sql("UPDATE {table} SET size = 1000", AuditLogHead))
        refused(sql("UPDATE {table} SET id = 2, size = size + 1", AuditLogHead))
        assert audit_tree.log_size() == 40
        with transaction.atomic():
            assert head.update(size=F("size") + 1) == 1  # what an append does
            transaction.set_rollback(True)
        assert audit_tree.log_size() == 40

    def test_delete_is_refused(self, log):
        refused(lambda: AuditLogHead.objects.all().delete())
        refused(sql("DELETE FROM {table}", AuditLogHead))
        assert audit_tree.log_size() == 40
