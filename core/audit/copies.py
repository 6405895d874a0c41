"""The signed tree heads' copies in the blob storage, read back and held against the database's log.

`tree_head_sign` writes each head to the bucket before its row, so the copies outlive a rollback of the database:
a database restored from a dump older than the newest copy holds fewer entries than that head signed (or other
ones), which is what `manage.py audit_verify_bucket` reports after a restore. The checks reuse the tree the
database keeps (`core.audit.tree.root_at`) and the signature rule the offline verifier applies
(`core.crypto.merkle.tree_head_signature_ok`); nothing here hashes differently.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.files.storage import storages

from core.audit import tree as audit_tree
from core.audit.recorder import TREE_HEAD_FOLDER
from core.crypto.merkle import key_id, tree_head_signature_ok
from core.models import SignedTreeHead

HEAD_FIELDS = ("tree_size", "root_hash", "signed_at", "key_id", "signature")


@dataclass
class CopiesReport:
    """What the check found: the copies it held against the log, and each failure as a sentence naming its copy."""

    log_size: int
    checked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    newest: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def tree_head_copy_names() -> list[str]:
    """Every copy's name in the blob storage, oldest first (the names begin with the zero-padded size)."""
    storage = storages["blobs"]
    try:
        _folders, files = storage.listdir(TREE_HEAD_FOLDER)
    except FileNotFoundError:  # a local folder that no head was ever written to
        return []
    return sorted(f"{TREE_HEAD_FOLDER}/{name}" for name in files if name.endswith(".json"))


def read_tree_head_copy(name: str) -> dict:
    """A copy's document; ValueError naming the copy if it is not a tree head."""
    with storages["blobs"].open(name, "rb") as handle:
        raw = handle.read()
    try:
        head = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{name} is not JSON ({error})") from None
    missing = [field for field in HEAD_FIELDS if not isinstance(head, dict) or field not in head]
    if missing:
        raise ValueError(f"{name} is not a signed tree head: it lacks {', '.join(missing)}")
    if not isinstance(head["tree_size"], int) or isinstance(head["tree_size"], bool) or head["tree_size"] < 0:
        raise ValueError(f"{name} is not a signed tree head: its tree_size is {head['tree_size']!r}")
    not_text = [field for field in HEAD_FIELDS[1:] if not isinstance(head[field], str)]
    if not_text:
        raise ValueError(f"{name} is not a signed tree head: {', '.join(not_text)} should be text")
    return head


def _describe(name: str, head: dict) -> str:
    return f"{name} (size {head['tree_size']}, signed {head['signed_at']})"


def verify_tree_head_copies(
    public_keys: Iterable[bytes],
    *,
    newest: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> CopiesReport:
    """Hold the database's log against every copy in the bucket (with `newest`, the newest that many).

    A copy passes when one of `public_keys` (raw Ed25519 keys) signed it, the log holds at least as many entries
    as it names, and the log's root at that size is the one it signed. A copy signed by no trusted key proves
    nothing and fails: pass the old public key too after a key change. Every head the database records must
    also have its copy, or the bucket was restored from a copy older than the database.
    """
    trusted = {key_id(key): key for key in public_keys}
    size = audit_tree.log_size()
    report = CopiesReport(log_size=size)
    every = tree_head_copy_names()
    for head in heads_without_copy(every):
        report.failures.append(
            f"The database records {head} (size {head.tree_size}), but its copy {head.storage_name} is not in the "
            "bucket: the bucket was restored from a copy older than the database, or the copy was deleted."
        )
    for name in every if newest is None else every[-newest:]:
        try:
            head = read_tree_head_copy(name)
        except ValueError as error:
            report.failures.append(f"{error}.")
            continue
        described = _describe(name, head)
        key = trusted.get(head["key_id"])
        if key is None:
            report.failures.append(
                f"{described} is signed by key {head['key_id']}, which is not a trusted key "
                f"(trusted: {', '.join(sorted(trusted)) or 'none'}); pass that key's PEM with --public-key if it "
                "was this server's before a change of key."
            )
            continue
        if not tree_head_signature_ok(head, key):
            report.failures.append(f"{described}: the signature does not verify with key {head['key_id']}.")
            continue
        if size < head["tree_size"]:
            report.failures.append(
                f"{described}: the database's audit log holds {size} entries, fewer than the {head['tree_size']} "
                "this head signed. The database is older than the head (restored from an earlier backup?) or "
                "has lost entries."
            )
        elif audit_tree.root_at(head["tree_size"]).hex() != head["root_hash"]:
            report.failures.append(
                f"{described}: the database's root at size {head['tree_size']} is not the signed root "
                f"{head['root_hash']}. Entries before {head['tree_size']} were changed, or entries were written to a "
                "database restored from an older dump (the log forked), or the database is another installation's."
            )
        else:
            report.checked.append(name)
            if progress is not None:
                progress(f"{described}: consistent.")
        if report.newest is None or head["tree_size"] >= report.newest["tree_size"]:
            report.newest = {**head, "name": name}
    return report


def heads_without_copy(names: Iterable[str]) -> list[SignedTreeHead]:
    """Heads the database records whose copy is not among `names`: the bucket is older than the database."""
    present = set(names)
    heads = SignedTreeHead.objects.order_by("tree_size", "signed_at")
    return [head for head in heads if head.storage_name not in present]
