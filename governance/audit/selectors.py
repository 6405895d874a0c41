"""Reads of the audit log: whose entries a user may read, tree heads and their proofs."""

from collections.abc import Collection

from django.db.models import CharField, Count, Model, Q, QuerySet
from django.db.models.functions import Cast

from artifacts.access.roles import Verb
from artifacts.access.rule import User, holds_global
from artifacts.models import Artifact, ArtifactScopedQuerySet, ArtifactVersion, Project
from core.audit import tree as audit_tree
from core.audit.actions import READ_ACTIONS
from core.audit.recorder import entry_document, tree_head_document
from core.errors import InvalidInput
from core.models import AuditEntry, SignedTreeHead

#: The log-wide permission: every entry, the whole-log export (superusers, and compliance staff given it in the admin).
WHOLE_LOG_PERMISSION = "core.view_auditentry"
PORTAL_VERIFICATIONS = 20
VERIFICATION_ACTIONS = ("blob.verified", "blob.corrupt")

# The audit log ----------------------------------------------------------------------------------------------


class AuditEntryQuerySet(ArtifactScopedQuerySet):
    """The log's entries as the access rule reads them: `AuditEntryQuerySet(model=AuditEntry)`. The log lives in core,
    which knows no access rule, and names its project and artifact by id. An entry about an artifact (its versions,
    grants on it) takes the verbs held on the artifact, restricted ones included; one about a project as a whole,
    those held on the project."""

    project_path = "project_id"
    artifact_path = "artifact_id"


def can_read_whole_log(user: User) -> bool:
    """Whether `user` holds the log-wide permission (WHOLE_LOG_PERMISSION): every entry, and the export of all."""
    return holds_global(user, WHOLE_LOG_PERMISSION)


def entries_visible_to(user: User) -> QuerySet[AuditEntry]:
    """Entries `user` may read: all of them with the log-wide permission; otherwise those of the projects and
    artifacts where the user is an auditor, by the access rule (restricted artifacts need a grant on the artifact
    itself). The log lives in core, which knows no access rule: this is the one place that applies it."""
    if not user.is_active:
        return AuditEntry.objects.none()
    if can_read_whole_log(user):
        return AuditEntry.objects.all()
    return AuditEntryQuerySet(model=AuditEntry).where(user, Verb.AUDIT)


def entries_about_artifact(entries: QuerySet[AuditEntry], artifact_id: int) -> QuerySet[AuditEntry]:
    """Of `entries`, everything that happened to an artifact: to it, its versions and grants on it, and every read
    of its versions' bytes, those read through the project's blob endpoint included (they name no artifact). One
    statement: the versions' blobs and the artifact's project are subqueries."""
    return entries.filter(_about_artifacts([artifact_id]))


def entries_about(
    entries: QuerySet[AuditEntry], *, artifact_ids: Collection[int], objects: Collection[tuple[str, str]] = ()
) -> QuerySet[AuditEntry]:
    """Of `entries`, everything about the artifacts `artifact_ids` (as `entries_about_artifact` reads each) and
    about the `objects`, each named by its (object type, id): what the log ties to no artifact, such as a
    registered model (the registry, beside this area, says which of its objects and artifacts make up a model)."""
    condition = _about_artifacts(artifact_ids) if artifact_ids else Q(pk__in=[])
    for object_type, object_id in objects:
        condition |= Q(object_type=object_type, object_id=object_id)
    return entries.filter(condition)


def _about_artifacts(artifact_ids: Collection[int]) -> Q:
    versions = ArtifactVersion.objects.filter(artifact_id__in=artifact_ids)
    projects = Artifact.objects.filter(pk__in=artifact_ids).values("project_id")
    reads_of_their_bytes = Q(
        action__in=READ_ACTIONS,
        object_type="blob",
        object_id__in=versions.values(key=Cast("blob_id", CharField())),
        project_id__in=projects,
    )
    return Q(artifact_id__in=artifact_ids) | reads_of_their_bytes


def entries_hidden_between(user: User, gaps: list[tuple[int, int]], *, filtered: bool) -> list[int]:
    """For each (newer, older) pair of seqs of entries listed one after the other, how many entries lie strictly
    between them that `user` may not read. Seqs are gapless, so a gap holds `newer - older - 1` entries. Listed
    without filters, the two are consecutive among the entries `user` may read, so every entry between is hidden
    (no query); with filters, those `user` may read (but the filters left out) are counted, every gap in one
    statement over the seqs the gaps span."""
    sizes = [newer - older - 1 for newer, older in gaps]
    if can_read_whole_log(user):
        return [0] * len(gaps)
    if not filtered or not any(sizes):
        return sizes
    counts = {
        f"gap_{index}": Count("pk", filter=Q(seq__gt=older, seq__lt=newer))
        for index, (newer, older) in enumerate(gaps)
        if newer - older > 1
    }
    lowest, highest = min(older for _, older in gaps), max(newer for newer, _ in gaps)
    readable = entries_visible_to(user).filter(seq__gt=lowest, seq__lt=highest).aggregate(**counts)
    return [size - readable.get(f"gap_{index}", 0) for index, size in enumerate(sizes)]


def audit_entries_for(user: User) -> QuerySet[AuditEntry]:
    """The entries `user` may read, newest first. An entry has no relations to join: its actor, object and
    project are named by the columns themselves, so a page of them is one query whatever its length."""
    return entries_visible_to(user).order_by("-seq")


def audits_anything(user: User) -> bool:
    """Whether `user` reads some of the log: the global "view audit entry" permission (superusers included), or
    the auditor role on a project or an artifact."""
    if not user.is_active:
        return False
    if can_read_whole_log(user):
        return True
    return Project.objects.where(user, Verb.AUDIT).exists() or Artifact.objects.where(user, Verb.AUDIT).exists()


def latest_tree_head() -> SignedTreeHead | None:
    return SignedTreeHead.objects.order_by("-tree_size", "-signed_at").first()


def tree_head_covering(seq: int) -> SignedTreeHead | None:
    """The latest signed tree head whose tree holds entry `seq`."""
    return SignedTreeHead.objects.filter(tree_size__gt=seq).order_by("-tree_size", "-signed_at").first()


def tree_head_of_size(size: int) -> SignedTreeHead | None:
    """The latest head signed at exactly `size` entries (heads of one size all carry the same root)."""
    return SignedTreeHead.objects.filter(tree_size=size).order_by("-signed_at").first()


def _head_or_none(head: SignedTreeHead | None) -> dict | None:
    return tree_head_document(head) if head is not None else None


def audit_inclusion_proof(entry: AuditEntry, tree_size: int) -> dict:
    """The proof that `entry` is leaf `entry.seq` of the log's first `tree_size` entries, with that tree's root
    and the head signed at that size (if one was), so an auditor can check it without asking again."""
    size = audit_tree.log_size()
    if not entry.seq < tree_size <= size:
        raise InvalidInput(
            f"tree_size must be more than the entry's seq ({entry.seq}) and at most the log's size ({size}): "
            f"a tree of {tree_size} entries {'does not hold' if tree_size <= entry.seq else 'does not exist yet'}.",
            field="tree_size",
        )
    return {
        "seq": entry.seq,
        "tree_size": tree_size,
        "leaf_hash": bytes(entry.leaf_hash).hex(),
        "root_hash": audit_tree.root_at(tree_size).hex(),
        "audit_path": [digest.hex() for digest in audit_tree.inclusion_proof(entry.seq, tree_size)],
        "tree_head": _head_or_none(tree_head_of_size(tree_size)),
        "entry": entry_document(entry),
    }


def audit_consistency_proof(first: int, second: int) -> dict:
    """The proof that the log's first `first` entries are, unchanged, the start of its first `second` entries,
    with both roots and the heads signed at those sizes (if any)."""
    size = audit_tree.log_size()
    if not 0 <= first <= second <= size:
        raise InvalidInput(
            f"Sizes must satisfy 0 <= first <= second <= the log's size ({size}); got first={first}, second={second}.",
            field="second" if first <= second else "first",
        )
    return {
        "first": first,
        "second": second,
        "first_root": audit_tree.root_at(first).hex(),
        "second_root": audit_tree.root_at(second).hex(),
        "proof": [digest.hex() for digest in audit_tree.consistency_proof(first, second)],
        "first_head": _head_or_none(tree_head_of_size(first)),
        "second_head": _head_or_none(tree_head_of_size(second)),
    }


def audit_entries_by(user: User) -> QuerySet[AuditEntry]:
    """The entries recording `user`'s own acts, newest first: what the dashboard shows someone who audits nothing."""
    return AuditEntry.objects.filter(actor_kind=AuditEntry.ActorKind.USER, actor_user_id=user.pk).order_by("-seq")


def blob_verifications(blob: Model, user: User) -> list:
    """The verification results for `blob` in the audit log that `user` may read, newest first (none for most
    users: blobs belong to no single project, so only readers of the whole log see them)."""
    entries = audit_entries_for(user).filter(
        action__in=VERIFICATION_ACTIONS, object_type="blob", object_id=str(blob.pk)
    )
    return list(entries[:PORTAL_VERIFICATIONS])


# The portal's artifact pages: what the registry and the audit log add ------------------------------------------

#: Verification results listed on a version's page, newest first.
