"""The audit log's writes: recording an act, signing a tree head, and the exports auditors verify offline.

`audit_record` is the one way an entry is made. Services call it through a ChangeSet (core/changes.py), inside the
transaction of the act they record, as its last step: the append locks the log's head row until that transaction
ends, so appends queue in commit order and the sequence never forks or skips, and taking it last keeps other locks
from queueing behind it.

Row locks a service takes before recording are FOR NO KEY UPDATE (`select_for_update(no_key=True)`): PostgreSQL
checks foreign keys at commit, after the append, with a KEY SHARE lock on each referenced row, which a plain FOR
UPDATE blocks; a transaction holding the head would then wait for one that waits for the head.
"""

import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import chain
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from core.audit import signing
from core.audit import tree as audit_tree
from core.audit.actions import AuditAction, declared_action
from core.audit.context import current_request, request_facts, running_task_label, system_actor_label
from core.crypto.merkle import (
    EXPORT_FORMAT,
    FILTERED_EXPORT_FORMAT,
    canonical_json,
    inclusion_ranges,
    leaf_hash,
    tree_head_message,
)
from core.models import AuditEntry, AuditLogHead, SignedTreeHead
from core.s3 import encryption_parameters

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
EXPORT_CHUNK = 2000
#: Entries of a filtered export whose inclusion proofs are read together, in at most three queries
#: (`audit_tree.range_hashes`). A proof names at most one stored subtree per level of the tree, so a batch asks for
#: a few hundred at most: a condition both databases take in one statement.
PROOF_BATCH = 32


def format_time(moment: datetime) -> str:
    """Times in the log's canonical form: UTC with microseconds, the same before and after a database round trip."""
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


# What an entry is about ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditObject:
    """The object of an act, as the log names it; `project_id` and `artifact_id` let one filter find everything
    that happened in a project or to an artifact (its versions and their downloads included)."""

    type: str
    id: str
    label: str
    project_id: int | None = None
    project_label: str = ""
    artifact_id: int | None = None


def _related(obj: Model, path: str) -> Model | None:
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


#: Where an object's project and artifact are found: directly, or through the dataset, artifact, model or version.
PROJECT_PATHS = (
    "project",
    "dataset.project",
    "artifact.project",
    "registered_model.project",
    "artifact_version.artifact.project",
)
ARTIFACT_ID_PATHS = ("artifact_id", "artifact_version.artifact_id", "model_version.artifact_version.artifact_id")


def audit_object(obj: Model, *, label: str | None = None) -> AuditObject:
    """Describe any model instance: its kind, id and label, and the project and artifact it belongs to."""
    model_name = obj._meta.model_name
    if model_name == "project":
        project = obj
    else:
        project = next(
            (found for path in PROJECT_PATHS if (found := _related(obj, path))),
            None,
        )
    if model_name == "artifact":
        artifact_id = obj.pk
    else:
        artifact_id = next((found for path in ARTIFACT_ID_PATHS if (found := _related(obj, path))), None)
    return AuditObject(
        type=str(obj._meta.verbose_name).replace(" ", "_"),
        id=str(obj.pk),
        label=label if label is not None else str(obj),
        project_id=project.pk if project is not None else None,
        project_label=getattr(project, "slug", "") if project is not None else "",
        artifact_id=artifact_id,
    )


# Recording --------------------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """A JSON value both databases store and give back byte for byte: no NUL or lone surrogates in strings, no
    NaN or infinity, and anything else (dates, decimals, ids) as text."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {_clean(str(key)): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(item) for item in value]
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, date | Decimal | UUID):
        return str(value)
    if isinstance(value, Model):
        return str(value.pk)
    return _clean(str(value))


def _text(value: str, limit: int) -> str:
    return _clean(value)[:limit]


def _next_seq() -> int:
    """Advance the head and return the new entry's number; the head row stays locked until the transaction ends."""
    table = connection.ops.quote_name(AuditLogHead._meta.db_table)
    for _attempt in range(2):
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET size = size + 1 WHERE id = 1 RETURNING size")  # noqa: S608
            row = cursor.fetchone()
        if row is not None:
            return row[0] - 1
        # The head row is made by the migration; a database emptied by a test's flush has lost it.
        AuditLogHead.objects.get_or_create(pk=1, defaults={"size": 0})
    raise RuntimeError("The audit log's head row cannot be created.")


def _acting_request() -> HttpRequest | None:
    """The request being served, unless a task is running: a task acts as the system even when it runs in-process,
    inside the request that queued it (the embedded default runs tasks right after the request's commit)."""
    return None if running_task_label() is not None else current_request()


def _actor(actor: AbstractBaseUser | None, anonymous_label: str | None, request: HttpRequest | None) -> dict:
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    if actor is not None:
        token = getattr(request, "auth", None) if request is not None else None
        token_id = getattr(token, "pk", None) if getattr(token, "user_id", None) == actor.pk else None
        return {"kind": "user", "user_id": actor.pk, "label": actor.get_username(), "token_id": token_id}
    if anonymous_label is not None:
        return {"kind": "anonymous", "user_id": None, "label": anonymous_label, "token_id": None}
    return {"kind": "system", "user_id": None, "label": system_actor_label(), "token_id": None}


def acting_party(actor: AbstractBaseUser | None = None) -> dict:
    """Who is acting right now, as the log names them: `actor`, else the request's user, else the system (the task
    or command running). Events name their actor the same way."""
    return _actor(actor, None, _acting_request())


def audit_record(
    action: AuditAction | str,
    *,
    obj: Model | AuditObject,
    actor: AbstractBaseUser | None = None,
    changes: Mapping[str, Any] | None = None,
    anonymous_label: str | None = None,
) -> AuditEntry:
    """Append an entry for `action` on `obj`, in the current transaction: it commits or rolls back with the act.

    `actor` is the user who acted; without one, the request's user, else the worker task or command running
    (or, with `anonymous_label`, a person not logged in, as for a failed login). `changes` summarises what
    changed, as {"field": [before, after]} for changes and the new values for creations. `action` must be
    declared in `AuditAction` (UndeclaredAuditAction otherwise, before anything is written): the log's
    vocabulary is published, and a reader filtering by it must be able to rely on the list.
    """
    [entry] = audit_record_many([AuditAct(action, obj, actor, changes)], anonymous_label=anonymous_label)
    return entry


@dataclass(frozen=True)
class AuditAct:
    """One act to record, as `audit_record` takes it."""

    action: AuditAction | str
    obj: Model | AuditObject
    actor: AbstractBaseUser | None = None
    changes: Mapping[str, Any] | None = None


def audit_record_many(acts: Sequence[AuditAct], *, anonymous_label: str | None = None) -> list[AuditEntry]:
    """Append one entry per act, in order and in the current transaction, as `audit_record` does for one: the
    rows are written with one INSERT, so a change that records hundreds of acts (a retention plan's batch) pays
    for most of the log's work once. The head still moves one entry at a time (its trigger allows nothing else),
    and holds its lock from the first move, so the numbers are consecutive."""
    if not acts:
        return []
    described = [
        (declared_action(act.action), act.obj if isinstance(act.obj, AuditObject) else audit_object(act.obj), act)
        for act in acts
    ]
    request = _acting_request()
    facts = request_facts(request)
    parties: dict[int | None, dict] = {}
    entries = []
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        for action, target, act in described:
            key = act.actor.pk if act.actor is not None else None
            who = parties.get(key) or parties.setdefault(key, _actor(act.actor, anonymous_label, request))
            entry = AuditEntry(
                seq=_next_seq(),
                recorded_at=now,
                actor_kind=who["kind"],
                actor_user_id=who["user_id"],
                actor_label=_text(who["label"], 200),
                token_id=who["token_id"],
                action=action.value,
                object_type=_text(target.type, 64),
                object_id=_text(target.id, 100),
                object_label=_text(target.label, 300),
                project_id=target.project_id,
                project_label=_text(target.project_label, 100),
                artifact_id=target.artifact_id,
                request_id=_text(facts.request_id, 64),
                source_ip=facts.source_ip,
                user_agent=_text(facts.user_agent, 300),
                changes=canonical_json(_clean(dict(act.changes or {}))).decode(),
            )
            entry.leaf_hash = leaf_hash(entry_bytes(entry))
            entries.append(entry)
        AuditEntry.objects.bulk_create(entries)
    return entries


def entry_document(entry: AuditEntry) -> dict:
    """The entry as the log hashes and exports it; every field is in it, so every field is covered."""
    return {
        "seq": entry.seq,
        "time": format_time(entry.recorded_at),
        "actor": {
            "kind": entry.actor_kind,
            "user_id": entry.actor_user_id,
            "label": entry.actor_label,
            "token_id": entry.token_id,
        },
        "action": entry.action,
        "object": {"type": entry.object_type, "id": entry.object_id, "label": entry.object_label},
        "project": {"id": entry.project_id, "label": entry.project_label},
        "artifact_id": entry.artifact_id,
        "request": {"id": entry.request_id, "ip": entry.source_ip, "user_agent": entry.user_agent},
        "changes": json.loads(entry.changes),
    }


def entry_bytes(entry: AuditEntry) -> bytes:
    return canonical_json(entry_document(entry))


# Signed tree heads ------------------------------------------------------------------------------------------


def tree_head_document(head: SignedTreeHead) -> dict:
    return {
        "tree_size": head.tree_size,
        "root_hash": head.root_hash,
        "signed_at": format_time(head.signed_at),
        "key_id": head.key_id,
        "public_key": head.public_key,
        "signature": head.signature,
    }


def _bucket_has_object_lock(client, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        configuration = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError:
        return False  # no Object Lock configuration on this bucket (or no right to read it)
    return configuration.get("ObjectLockEnabled") == "Enabled"


def _store_tree_head_copy(name: str, body: bytes) -> datetime | None:
    """Write the copy to the blob storage; in an S3 bucket with Object Lock, retained for the configured time.
    Returns the retention date, or None where the storage has no lock."""
    storage = storages["blobs"]
    # Not imported to ask: that would load boto3 into a web worker that stores blobs on disk (~11 MiB); an
    # S3Storage exists only once its module is loaded.
    s3 = sys.modules.get("storages.backends.s3")
    if s3 is None or not isinstance(storage, s3.S3Storage):
        storage.save(name, ContentFile(body))
        return None
    from storages.utils import clean_name

    client = storage.connection.meta.client
    params = {
        "Bucket": storage.bucket_name,
        "Key": storage._normalize_name(clean_name(name)),
        "Body": body,
        "ContentType": "application/json",
        **encryption_parameters(storage),
    }
    retain_until = None
    if _bucket_has_object_lock(client, storage.bucket_name):
        retain_until = timezone.now() + timedelta(days=settings.PROVENANT_AUDIT_OBJECT_LOCK_DAYS)
        params |= {
            "ObjectLockMode": settings.PROVENANT_AUDIT_OBJECT_LOCK_MODE,
            "ObjectLockRetainUntilDate": retain_until,
            # S3 requires an integrity checksum on every write to a bucket with Object Lock.
            "ChecksumAlgorithm": "SHA256",
        }
    client.put_object(**params)
    return retain_until


#: Where the copies of the signed tree heads are kept in the blob storage (core/audit/copies.py reads them back).
TREE_HEAD_FOLDER = "audit/tree-heads"


def tree_head_name(tree_size: int, signed_at: datetime) -> str:
    return f"{TREE_HEAD_FOLDER}/{tree_size:012d}-{signed_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.json"


def tree_head_sign(*, only_if_grown: bool = False) -> SignedTreeHead | None:
    """Sign the log's current size and root, keep a copy in the blob storage, and return the head.

    With `only_if_grown` (the periodic task), nothing is signed when the latest head already covers the log.
    The copy is written before the row: a row always has its copy, and a copy whose row was lost (a crash, or
    a rollback of this database) is the point of keeping copies.
    """
    size = audit_tree.log_size()
    latest = SignedTreeHead.objects.order_by("-tree_size", "-signed_at").first()
    if only_if_grown and latest is not None and latest.tree_size >= size:
        return None
    root = audit_tree.root_at(size).hex()
    signed_at = timezone.now()
    key = signing.signing_key_id()
    message = tree_head_message(tree_size=size, root_hash=root, signed_at=format_time(signed_at), key=key)
    head = SignedTreeHead(
        tree_size=size,
        root_hash=root,
        signed_at=signed_at,
        key_id=key,
        public_key=signing.public_key_base64(),
        signature=signing.sign(message),
        storage_name=tree_head_name(size, signed_at),
    )
    head.locked_until = _store_tree_head_copy(head.storage_name, canonical_json(tree_head_document(head)))
    head.save(force_insert=True)
    return head


# Export -----------------------------------------------------------------------------------------------------


def _line(record: dict) -> bytes:
    return canonical_json(record) + b"\n"


def entry_line(entry: AuditEntry) -> bytes:
    """An entry as the export writes it: the exact bytes that were hashed, after the leaf hash recorded for them."""
    return b'{"leaf_hash":"' + bytes(entry.leaf_hash).hex().encode() + b'","entry":' + entry_bytes(entry) + b"}\n"


def export_lines(head: SignedTreeHead) -> Iterator[bytes]:
    """The whole log up to `head`, as JSON Lines: a header, every signed tree head it covers, then the entries,
    read a chunk at a time in sequence order, so memory stays flat whatever the log's length."""
    heads = SignedTreeHead.objects.filter(tree_size__lte=head.tree_size).order_by("tree_size", "signed_at")
    keys = dict(heads.values_list("key_id", "public_key").distinct())
    header = {
        "format": EXPORT_FORMAT,
        "tree_size": head.tree_size,
        "exported_at": format_time(timezone.now()),
        "public_keys": keys,
    }
    yield _line({"header": header})
    for signed in heads.iterator(chunk_size=EXPORT_CHUNK):
        yield _line({"tree_head": tree_head_document(signed)})
    for start in range(0, head.tree_size, EXPORT_CHUNK):
        chunk = AuditEntry.objects.filter(seq__gte=start, seq__lt=min(start + EXPORT_CHUNK, head.tree_size))
        for entry in chunk.order_by("seq"):
            yield entry_line(entry)


def export_tree_head() -> SignedTreeHead:
    """The tree head an export ends at: the latest, or a new one if the log has grown since."""
    return tree_head_sign(only_if_grown=True) or SignedTreeHead.objects.order_by("-tree_size", "-signed_at").first()


EXPORTED_LOG = AuditObject(type="audit_log", id="audit_log", label="audit log")


def audit_export_begin(*, filters: Mapping[str, Any] | None = None) -> SignedTreeHead:
    """Record that the log is being exported, commit that, and return the tree head the export ends at: the
    export covers its own entry, so the record of who took a copy is in the copy.

    With `filters` (as `export_filter_document` gives them), the export is a filtered one, and the entry says so
    and names the filter; without, it is the whole log and the entry's changes are empty.
    """
    changes = None if filters is None else {"format": FILTERED_EXPORT_FORMAT, "filter": dict(filters)}
    with transaction.atomic():
        audit_record(AuditAction.AUDIT_LOG_EXPORTED, obj=EXPORTED_LOG, changes=changes)
    return export_tree_head()


def export_filter_document(cleaned: Mapping[str, Any]) -> dict:
    """The filter a filtered export applied, as its header and its audit entry name it: the values of
    AuditEntryFilter's cleaned form that were given, times in the log's form (UTC), and a project or an actor as
    the text asked for (the form reads it as an id and a name at once)."""
    document = {}
    for name, value in cleaned.items():
        if value is None or value == "":
            continue
        if isinstance(value, datetime):
            value = format_time(value)
        elif isinstance(value, tuple):
            value = value[1]
        document[name] = value
    return document


def _audit_paths(seqs: list[int], size: int) -> dict[int, list[str]]:
    """The audit path of each of `seqs` in the tree of `size` leaves; neighbouring entries share most of theirs,
    and all are read at once."""
    ranges = {seq: inclusion_ranges(seq, size) for seq in seqs}
    needed = sorted({range_ for path in ranges.values() for range_ in path})
    hashes = dict(zip(needed, audit_tree.range_hashes(needed, size), strict=True))
    return {seq: [hashes[range_].hex() for range_ in path] for seq, path in ranges.items()}


def proven_entry_line(entry: AuditEntry, audit_path: list[str], tree_size: int) -> bytes:
    """An entry as a filtered export writes it: its line in the whole-log export with the proof of its inclusion
    in the tree of `tree_size` entries between the leaf hash and the entry's exact bytes."""
    proof = canonical_json({"audit_path": audit_path, "leaf_index": entry.seq, "tree_size": tree_size})
    return (
        b'{"leaf_hash":"'
        + bytes(entry.leaf_hash).hex().encode()
        + b'","inclusion_proof":'
        + proof
        + b',"entry":'
        + entry_bytes(entry)
        + b"}\n"
    )


def _proven_entry_lines(entries: QuerySet[AuditEntry], tree_size: int) -> Iterator[bytes]:
    last = -1
    while chunk := list(entries.filter(seq__gt=last)[:EXPORT_CHUNK]):
        for start in range(0, len(chunk), PROOF_BATCH):
            batch = chunk[start : start + PROOF_BATCH]
            paths = _audit_paths([entry.seq for entry in batch], tree_size)
            for entry in batch:
                yield proven_entry_line(entry, paths[entry.seq], tree_size)
        last = chunk[-1].seq


def filtered_export_lines(
    head: SignedTreeHead, entries: QuerySet[AuditEntry], *, filters: Mapping[str, Any]
) -> Iterator[bytes]:
    """`entries` (those the reader may read that match `filters`) that `head` covers, as JSON Lines that
    tools/audit_verify.py checks offline: a header with the signed head, its key, the filter and how many entries
    matched, then each entry in sequence order with its inclusion proof against that head.

    The header is made now, in the request (one query counts the entries, and the reader is the acting party);
    the entries are read as the lines are consumed, a chunk at a time by sequence number, so memory stays flat
    however many match. Proofs cost at most three queries per PROOF_BATCH entries, against three per entry if
    each were asked for alone.
    """
    covered = entries.filter(seq__lt=head.tree_size).order_by("seq")
    header = {
        "format": FILTERED_EXPORT_FORMAT,
        "tree_head": tree_head_document(head),
        "public_key": head.public_key,
        "filter": dict(filters),
        "entries": covered.count(),
        "exported_at": format_time(timezone.now()),
        "exported_by": acting_party()["label"],
    }
    return chain([_line(header)], _proven_entry_lines(covered, head.tree_size))


def public_key_document() -> dict:
    return {
        "key_id": signing.signing_key_id(),
        "public_key": signing.public_key_base64(),
        "pem": signing.public_key_pem(),
        "algorithm": "Ed25519",
    }


__all__ = [
    "AuditObject",
    "audit_export_begin",
    "audit_object",
    "audit_record",
    "entry_bytes",
    "entry_document",
    "entry_line",
    "export_filter_document",
    "export_lines",
    "export_tree_head",
    "filtered_export_lines",
    "format_time",
    "proven_entry_line",
    "public_key_document",
    "tree_head_document",
    "tree_head_sign",
]
