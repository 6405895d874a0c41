"""audit_verify_bucket: the database's log held against the tree-head copies in the blob storage, and each way it
fails naming the copy (tests/integration/test_backup_restore.py runs it after a real restore)."""

from datetime import UTC, datetime
from io import StringIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command

from core.audit import signing
from core.audit.recorder import audit_record, format_time, tree_head_name, tree_head_sign
from core.crypto.merkle import canonical_json, tree_head_message
from tests.artifacts.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def some_entries(count: int) -> None:
    project = ProjectFactory()
    for n in range(count):
        audit_record("project.updated", obj=project, changes={"n": n})


def verify(*args: str) -> str:
    out = StringIO()
    call_command("audit_verify_bucket", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def failure(*args: str) -> str:
    with pytest.raises(CommandError) as raised:
        verify(*args)
    assert raised.value.returncode == 1
    return str(raised.value)


def signed_copy(tree_size: int, root_hash: str, *, signed_at: datetime | None = None) -> str:
    """A head this server's key really signed, written to the storage as tree_head_sign writes its copies, with no
    row in the database: what a newer database than the one restored left in the bucket."""
    signed_at = signed_at or datetime(2031, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    key = signing.signing_key_id()
    document = {
        "tree_size": tree_size,
        "root_hash": root_hash,
        "signed_at": format_time(signed_at),
        "key_id": key,
        "public_key": signing.public_key_base64(),
        "signature": signing.sign(
            tree_head_message(tree_size=tree_size, root_hash=root_hash, signed_at=format_time(signed_at), key=key)
        ),
    }
    name = tree_head_name(tree_size, signed_at)
    storages["blobs"].save(name, ContentFile(canonical_json(document)))
    return name


def test_an_empty_bucket_has_nothing_to_check():
    assert "No signed tree head in the bucket yet" in verify()


def test_a_log_consistent_with_every_copy_passes():
    some_entries(3)
    tree_head_sign()
    some_entries(20)
    newest = tree_head_sign()

    out = verify()

    assert "consistent with all 2 signed tree head(s)" in out
    assert newest.storage_name in out


def test_a_database_older_than_a_copy_fails_naming_that_copy():
    some_entries(5)
    tree_head_sign()
    newer = signed_copy(9, "ab" * 32)

    message = failure()

    assert newer in message
    assert "holds 5 entries, fewer than the 9 this head signed" in message
    assert "older than the head" in message


def test_a_database_whose_root_differs_fails_naming_the_copy():
    some_entries(4)
    other = signed_copy(4, "00" * 32)

    message = failure()

    assert other in message
    assert "root at size 4 is not the signed root" in message


def test_a_copy_whose_signature_does_not_verify_fails():
    some_entries(2)
    head = tree_head_sign()
    storage = storages["blobs"]
    document = storage.open(head.storage_name).read().replace(head.signature.encode(), b"A" * 86 + b"==")
    storage.delete(head.storage_name)
    storage.save(head.storage_name, ContentFile(document))

    message = failure()

    assert f"{head.storage_name} (size 2" in message
    assert "signature does not verify" in message


def test_a_copy_signed_by_a_key_not_trusted_fails(tmp_path):
    some_entries(2)
    head = tree_head_sign()
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    message = failure("--public-key", str(other))

    assert head.storage_name in message
    assert f"signed by key {head.key_id}, which is not a trusted key" in message


def test_the_pinned_key_passes(tmp_path):
    some_entries(2)
    tree_head_sign()
    pinned = tmp_path / "audit-key.pem"
    pinned.write_text(signing.public_key_pem())

    assert "consistent with all 1" in verify("--public-key", str(pinned))


def test_a_head_the_database_records_without_its_copy_fails():
    some_entries(2)
    head = tree_head_sign()
    storages["blobs"].delete(head.storage_name)

    message = failure()

    assert f"its copy {head.storage_name} is not in the bucket" in message


def test_a_copy_that_is_not_a_tree_head_fails():
    some_entries(1)
    tree_head_sign()
    storages["blobs"].save("audit/tree-heads/000000000009-garbage.json", ContentFile(b"not json"))

    assert "audit/tree-heads/000000000009-garbage.json is not JSON" in failure()


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b'{"tree_size": 1}', "it lacks root_hash, signed_at, key_id, signature"),
        (b"[1, 2]", "it lacks tree_size"),
        (
            b'{"tree_size": -1, "root_hash": "", "signed_at": "", "key_id": "", "signature": ""}',
            "its tree_size is -1",
        ),
        (
            b'{"tree_size": 1, "root_hash": "", "signed_at": "", "key_id": "", "signature": 7}',
            "signature should be text",
        ),
    ],
)
def test_a_copy_missing_a_field_or_with_one_of_the_wrong_kind_fails_naming_it(document, expected):
    storages["blobs"].save("audit/tree-heads/000000000001-odd.json", ContentFile(document))

    message = failure()

    assert "audit/tree-heads/000000000001-odd.json is not a signed tree head" in message
    assert expected in message


def test_newest_checks_only_the_newest_copies():
    some_entries(3)
    stale = signed_copy(3, "00" * 32, signed_at=datetime(2020, 1, 1, tzinfo=UTC))
    tree_head_sign()

    assert stale in failure()
    assert "consistent with all 1" in verify("--newest", "1")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--public-key", "/nonexistent/key.pem"], "cannot read it"),
        (["--newest", "0"], "1 or more"),
    ],
)
def test_bad_options_are_explained(args, expected):
    with pytest.raises(CommandError, match=expected):
        verify(*args)


def test_a_key_file_that_is_not_a_public_key_is_explained(tmp_path):
    bad = tmp_path / "key.pem"
    bad.write_text("hello")

    with pytest.raises(CommandError, match="is not a PEM public key"):
        verify("--public-key", str(bad))


def test_a_storage_that_cannot_be_read_is_not_a_verdict(settings, tmp_path):
    some_entries(1)
    tree_head_sign()
    unreadable = tmp_path / "blobs-unreadable"
    unreadable.write_text("a file where the blob folder should be")
    blobs = {**settings.STORAGES["blobs"], "OPTIONS": {**settings.STORAGES["blobs"]["OPTIONS"]}}
    blobs["OPTIONS"]["location"] = str(unreadable)
    settings.STORAGES = {**settings.STORAGES, "blobs": blobs}

    with pytest.raises(CommandError) as raised:
        verify()

    assert raised.value.returncode == 2
    assert "Cannot read the tree heads in the blob storage" in str(raised.value)


def test_a_log_written_past_a_head_after_an_older_restore_fails_as_a_fork():
    some_entries(3)
    forked = signed_copy(3, "cd" * 32)  # the head an installation signed before its database was restored
    some_entries(4)  # the restored database, started again, writes past that size

    message = failure()

    assert forked in message
    assert "(the log forked)" in message
