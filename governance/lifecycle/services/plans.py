"""Plans before acts: running a project's retention rules writes a plan, and only applying a plan deletes or archives.

A plan lists every version a rule selected: what will be done to it (delete its bytes, keeping a tombstone; move them
to a colder storage class) and which rule said so, or, for a version a built-in protection keeps, what protects it
in words. Protections are built in and no rule overrides them (governance/lifecycle/selectors.py: serving stages,
aliases, legal holds, open promotion requests, and the lineage upstream of any of those model versions).

Deletions never remove rows, only bytes: a deleted version keeps its row under a tombstone. So nothing that names a
version loses its subject: a promotion request of any state still names its model version and artifact version,
and an access review's items name grants, projects and artifacts, never a version, so no lifecycle act can take
one's subject away. A version with an open promotion request is protected all the same, so reviewers judge bytes
that are still there.

Applying walks the pending items in batches and weighs the protections again for each batch, since a version may
have been promoted, aliased or held since planning; such an item is skipped, saying why. Each act is idempotent
(`versions_delete` answers an existing tombstone, `blobs_collect_batch` and `blob_archive` do nothing twice) and an
item is marked done only after its act, so a plan stopped half way (a crash, a lost worker) is finished by applying
it again and nothing is done twice to any version.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import ArtifactVersion, DatasetVersion, Project
from artifacts.services.lifecycle import Deletion, blobs_collect_batch, versions_delete
from artifacts.services.tiers import blob_archive
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import Conflict, NotAllowed
from governance.lifecycle.models import RetentionPlan, RetentionPlanItem
from governance.lifecycle.rules import Rule, rules_clean
from governance.lifecycle.selectors import (
    Protections,
    artifact_versions_selected,
    blob_users_protected,
    dataset_versions_selected,
    plan_bytes_reclaimable,
    protections_compute,
    retention_policy_current,
)
from governance.lifecycle.services.snapshots import storage_snapshot_take

#: Rows read per round trip from the database's cursor while planning, and ids per UPDATE marking items kept.
PLAN_BATCH = 2000
#: Items applied between two looks at the protections, each batch one transaction. Its deletions' audit entries are
#: appended at its end, holding the log's head row until its commit, and it holds the project's row (placing a hold
#: waits): a few hundred deletions keep both waits under a second or two.
APPLY_BATCH = 200

Item = RetentionPlanItem
Plan = RetentionPlan


def _require_maintainer(user: AbstractBaseUser | None, project: Project, doing: str) -> None:
    """A person must maintain the project; None is the project's schedule, which the project opted into."""
    if user is not None and not can(user, Verb.MANAGE, project):
        raise NotAllowed(f"{doing} of project '{project.slug}' needs the maintainer role on the project.")


@dataclass
class _Totals:
    to_delete: int = 0
    to_archive: int = 0
    protected: int = 0
    bytes_selected: int = 0


def retention_plan_create(
    *, project: Project, created_by: AbstractBaseUser | None, trigger: str = Plan.Trigger.MANUAL
) -> RetentionPlan:
    """Run the project's rules in force and write what they would do as a new plan, superseding the project's plans
    not applied yet (a plan being applied is left to finish). `created_by` None: the project's schedule.

    Nothing is deleted or archived here. The whole plan is written in one transaction, so a plan is complete or
    absent. The database selects and writes the items (one INSERT ... SELECT per kind of version); Python holds
    only the protections, so memory does not grow with the store.
    """
    _require_maintainer(created_by, project, "Planning the retention")
    policy = retention_policy_current(project)
    rules = rules_clean(policy.rules)
    with transaction.atomic(), ChangeSet() as changes:
        # One planner per project at a time: two would each supersede the other's plan.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        now = timezone.now()
        superseded = list(
            Plan.objects.filter(project=project, state=Plan.State.PLANNED).order_by("pk").values_list("pk", flat=True)
        )
        Plan.objects.filter(pk__in=superseded).update(state=Plan.State.SUPERSEDED)
        plan = Plan.objects.create(
            project=project,
            policy_version=policy.version,
            trigger=trigger,
            created_by=created_by,
            created_at=now,
        )
        totals = _items_write(plan, rules, protections_compute(), now=now)
        plan.versions_to_delete = totals.to_delete
        plan.versions_to_archive = totals.to_archive
        plan.versions_protected = totals.protected
        plan.bytes_selected = totals.bytes_selected
        plan.bytes_reclaimable = plan_bytes_reclaimable(plan)
        plan.save(
            update_fields=[
                "versions_to_delete",
                "versions_to_archive",
                "versions_protected",
                "bytes_selected",
                "bytes_reclaimable",
            ]
        )
        changes.audit(
            AuditAction.RETENTION_PLAN_CREATED,
            obj=plan,
            actor=created_by,
            changes={
                "trigger": trigger,
                "policy_version": plan.policy_version,
                "versions_to_delete": plan.versions_to_delete,
                "versions_to_archive": plan.versions_to_archive,
                "versions_protected": plan.versions_protected,
                "bytes_reclaimable": plan.bytes_reclaimable,
                "superseded_plans": superseded,
            },
        )
    return plan


def _items_write(plan: RetentionPlan, rules: Sequence[Rule], protections: Protections, *, now) -> _Totals:
    """Write the plan's items: every selected version in one INSERT ... SELECT per kind of version, then the few
    that a protection keeps marked so, with its words. The database does the per-version work; Python only sees
    the protected versions, which are few next to a store's versions."""
    if rules:
        for kind, selected in (
            ("artifact_version", artifact_versions_selected(plan.project, rules, now=now)),
            ("dataset_version", dataset_versions_selected(plan.project, rules, now=now)),
        ):
            _items_insert(plan, kind, selected, rules)
        _items_protect(plan, protections)
    return _totals(plan)


def _items_insert(plan: RetentionPlan, kind: str, selected: QuerySet, rules: Sequence[Rule]) -> None:
    """INSERT ... SELECT of `selected` (SelectedRow columns) as pending items with their rule's action and name,
    leaving out versions an archive rule selects whose bytes are archived already (nothing to do)."""
    if selected.query.is_empty():
        return
    quote = connection.ops.quote_name
    # In no particular order: the items' ids need not follow the versions', and a sort of every row would cost.
    aliased = selected.order_by().values(
        sel_id=F("pk"),
        sel_rule=F("rule_index"),
        sel_blob=F("blob_id"),
        sel_size=F("blob__size"),
        sel_archived=F("blob__archived_at"),
    )
    select_sql, select_params = aliased.query.sql_with_params()
    by_rule = " ".join("WHEN %s THEN %s" for _ in rules)
    archiving = [index for index, rule in enumerate(rules) if rule.action == Item.Action.ARCHIVE]
    columns = ", ".join(
        quote(Item._meta.get_field(name).column)
        for name in ("plan", kind, "blob", "size", "action", "rule", "protected_by", "state", "outcome")
    )
    # Identifiers are the models' own, quoted; every value is a parameter (the rules' names and actions too).
    sql = (
        f"INSERT INTO {quote(Item._meta.db_table)} ({columns}) "  # noqa: S608
        "SELECT %s, s.sel_id, s.sel_blob, s.sel_size, "
        f"CASE s.sel_rule {by_rule} END, CASE s.sel_rule {by_rule} END, '', %s, '' "
        f"FROM ({select_sql}) s"
    )
    params: list = [plan.pk]
    params += [value for index, rule in enumerate(rules) for value in (index, rule.action)]
    params += [value for index, rule in enumerate(rules) for value in (index, rule.name)]
    params += [Item.State.PENDING, *select_params]
    if archiving:
        marks = ", ".join("%s" for _ in archiving)
        sql += f" WHERE NOT (s.sel_rule IN ({marks}) AND s.sel_archived IS NOT NULL)"
        params += archiving
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _items_protect(plan: RetentionPlan, protections: Protections) -> None:
    """Mark kept, with what protects them, the plan's items a protection covers: those a protection names (a
    version, an artifact, a dataset), then, under a hold on the whole project, all the others; then archive items
    whose bytes a protected version elsewhere shares (archiving moves them for every version)."""
    items = Item.objects.filter(plan=plan)
    columns = (
        "pk",
        "artifact_version_id",
        "artifact_version__artifact_id",
        "dataset_version_id",
        "dataset_version__dataset_id",
    )
    # Ids go in chunks: the protected set spans every project, and a statement takes at most 65,535 parameters.
    conditions = [
        Q(**{lookup: chunk})
        for lookup, ids in (
            ("artifact_version_id__in", protections.artifact_versions),
            ("dataset_version_id__in", protections.dataset_versions),
            ("artifact_version__artifact_id__in", protections.artifacts),
            ("dataset_version__dataset_id__in", protections.datasets),
        )
        for chunk in _chunks(list(ids))
    ]
    words: dict[int, str] = {}
    for condition in conditions:
        rows = items.filter(condition).values_list(*columns)
        for pk, artifact_version_id, artifact_id, dataset_version_id, dataset_id in rows.iterator(
            chunk_size=PLAN_BATCH
        ):
            if artifact_version_id:
                words[pk] = protections.of_artifact_version(
                    version_id=artifact_version_id, artifact_id=artifact_id, project_id=plan.project_id
                )
            else:
                words[pk] = protections.of_dataset_version(
                    version_id=dataset_version_id, dataset_id=dataset_id, project_id=plan.project_id
                )
    _keep(items, words)
    if project_words := "; ".join(protections.projects.get(plan.project_id, ())):
        items.exclude(action=Item.Action.KEEP).update(
            action=Item.Action.KEEP, protected_by=project_words, state=Item.State.SKIPPED, outcome=KEPT
        )
    shared_users = ArtifactVersion.objects.filter(blob_id=OuterRef("blob_id"), tombstone__isnull=True).exclude(
        pk=OuterRef("artifact_version_id")
    )
    shared_data = DatasetVersion.objects.filter(blob_id=OuterRef("blob_id"), tombstone__isnull=True).exclude(
        pk=OuterRef("dataset_version_id")
    )
    sharing = items.filter(action=Item.Action.ARCHIVE).filter(Exists(shared_users) | Exists(shared_data))
    blobs_of: dict[int, list[int]] = defaultdict(list)
    for pk, blob_id in sharing.values_list("pk", "blob_id").iterator(chunk_size=PLAN_BATCH):
        blobs_of[blob_id].append(pk)
    shared = blob_users_protected(list(blobs_of), protections, project=plan.project)
    _keep(items, {pk: words for blob_id, words in shared.items() for pk in blobs_of[blob_id]})


KEPT = "Kept: a built-in protection overrides the rule."


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[start : start + PLAN_BATCH] for start in range(0, len(ids), PLAN_BATCH)]


def _keep(items: QuerySet, words: dict[int, str]) -> None:
    """Mark the items `words` names kept, each with its words: one UPDATE per distinct wording."""
    by_words: dict[str, list[int]] = defaultdict(list)
    for pk, text in words.items():
        if text:
            by_words[text].append(pk)
    for text, pks in by_words.items():
        for start in range(0, len(pks), PLAN_BATCH):
            items.filter(pk__in=pks[start : start + PLAN_BATCH]).update(
                action=Item.Action.KEEP, protected_by=text, state=Item.State.SKIPPED, outcome=KEPT
            )


def _totals(plan: RetentionPlan) -> _Totals:
    totals = _Totals()
    counted = Item.objects.filter(plan=plan).order_by().values("action").annotate(n=Count("pk"), size=Sum("size"))
    for row in counted:
        if row["action"] == Item.Action.KEEP:
            totals.protected = row["n"]
            continue
        totals.bytes_selected += row["size"] or 0
        if row["action"] == Item.Action.DELETE:
            totals.to_delete = row["n"]
        else:
            totals.to_archive = row["n"]
    return totals


def retention_plan_apply_start(
    *, plan: RetentionPlan, applied_by: AbstractBaseUser | None
) -> tuple[RetentionPlan, bool]:
    """Begin applying `plan`, or resume it; answer it with whether there is work left (False: applied already).

    A superseded plan is refused (409): a newer plan of the project replaced it, and applying an old list would act
    on what the rules no longer say. Only one plan of a project is applied at a time (409 naming the other).
    """
    _require_maintainer(applied_by, plan.project, "Applying the retention plans")
    with transaction.atomic(), ChangeSet() as changes:
        plan = Plan.objects.select_for_update().select_related("project").get(pk=plan.pk)
        if plan.state == Plan.State.APPLIED:
            return plan, False
        if plan.state == Plan.State.SUPERSEDED:
            newer = Plan.objects.filter(project=plan.project, pk__gt=plan.pk).order_by("-pk").first()
            raise Conflict(
                f"Plan #{plan.pk} was superseded by plan #{newer.pk if newer else '?'} of project "
                f"'{plan.project.slug}': review and apply the newer plan instead.",
                code="superseded",
            )
        if plan.state == Plan.State.APPLYING:
            return plan, True
        other = Plan.objects.filter(project=plan.project, state=Plan.State.APPLYING).exclude(pk=plan.pk).first()
        if other is not None:
            raise Conflict(
                f"Plan #{other.pk} of project '{plan.project.slug}' is being applied: wait for it to finish.",
                code="applying",
            )
        changes.update(plan, state=Plan.State.APPLYING, applied_by=applied_by, apply_started_at=timezone.now())
    return plan, True


def retention_plan_apply(*, plan: RetentionPlan, applied_by: AbstractBaseUser | None) -> RetentionPlan:
    """Apply `plan` to its end: delete or archive each pending item unless something protects it now, then mark the
    plan applied. Applying an applied plan does nothing; applying a plan that stopped half way finishes it.

    Storage errors propagate (the caller, a task, retries); what was done so far stays done and marked.
    """
    plan, work = retention_plan_apply_start(plan=plan, applied_by=applied_by)
    if not work:
        return plan
    actor = applied_by if applied_by is not None else plan.applied_by
    while batch := list(
        Item.objects.filter(plan=plan, state=Item.State.PENDING)
        .select_related("artifact_version__artifact", "dataset_version__dataset")
        .order_by("pk")[:APPLY_BATCH]
    ):
        _apply_batch(plan, batch, actor)
    return _finish(plan, actor)


def _apply_batch(plan: RetentionPlan, batch: list[RetentionPlanItem], actor: AbstractBaseUser | None) -> None:
    """Act on one batch of pending items, weighing the protections as they stand now.

    The look and the deletions share one transaction holding the project's row lock, the lock legal_hold_place
    takes before it writes: a hold committed before the look is seen, and one placed meanwhile waits, then finds the
    version deleted. Bytes leave storage only after that commit (`blobs_collect_batch`, all of the batch's blobs in
    one transaction; beat's sweep catches any this process dies before), so a rolled-back batch never loses bytes.
    Archival copies bytes within storage, which may take a while, so it runs after the commit, outside the lock: it
    is undone by a restore, not lost.

    A promotion is not serialised with this look: a version promoted between it and the deletion loses its bytes,
    and its promotion is then refused by the gates (the bytes must verify). The window is one batch.
    """
    deleted: list[RetentionPlanItem] = []
    archiving: list[RetentionPlanItem] = []
    with transaction.atomic(), ChangeSet():
        Project.objects.select_for_update(no_key=True).filter(pk=plan.project_id).first()
        protections = protections_compute()
        archive_blobs = [item.blob_id for item in batch if item.action == Item.Action.ARCHIVE]
        shared = blob_users_protected(archive_blobs, protections, project=plan.project) if archive_blobs else {}
        for item in batch:
            words = _protected_now(plan, item, protections) or (
                shared.get(item.blob_id, "") if item.action == Item.Action.ARCHIVE else ""
            )
            if words:
                item.state, item.outcome = Item.State.SKIPPED, f"Skipped: protected since planning ({words})."
                item.done_at = timezone.now()
            elif item.action == Item.Action.DELETE:
                deleted.append(item)
            else:
                archiving.append(item)
        for item, outcome in zip(deleted, _delete(plan, deleted, actor), strict=True):
            item.state, item.outcome, item.done_at = Item.State.DONE, outcome, timezone.now()
        _mark([item for item in batch if item.state != Item.State.PENDING])
    collected = set(blobs_collect_batch(blob_ids=[item.blob_id for item in deleted if item.blob_id is not None]))
    for item in deleted:
        if item.blob_id in collected:
            item.outcome += " Its bytes left storage."
        else:
            item.outcome += " Its bytes stay in storage while another version uses them."
    _mark(deleted)
    for item in archiving:
        item.state, item.outcome, item.done_at = Item.State.DONE, _archive(item), timezone.now()
    _mark(archiving)


def _mark(items: list[RetentionPlanItem]) -> None:
    """Save the items' progress. A batch's items share a handful of outcomes ("Deleted.", a skip's reason), so one
    UPDATE per outcome, not bulk_update's CASE over the whole batch (which cost more than the deletions)."""
    groups: dict[tuple[str, str], list[RetentionPlanItem]] = defaultdict(list)
    for item in items:
        groups[(item.state, item.outcome)].append(item)
    for (state, outcome), members in groups.items():
        done_at = max(item.done_at for item in members)
        Item.objects.filter(pk__in=[item.pk for item in members]).update(state=state, outcome=outcome, done_at=done_at)


def _protected_now(plan: RetentionPlan, item: RetentionPlanItem, protections: Protections) -> str:
    if item.artifact_version_id:
        version = item.artifact_version
        return protections.of_artifact_version(
            version_id=version.pk, artifact_id=version.artifact_id, project_id=plan.project_id
        )
    version = item.dataset_version
    return protections.of_dataset_version(
        version_id=version.pk, dataset_id=version.dataset_id, project_id=plan.project_id
    )


def _delete(plan: RetentionPlan, items: list[RetentionPlanItem], actor: AbstractBaseUser | None) -> list[str]:
    """Delete the items' versions together (`versions_delete`); answer each item's outcome. The batch collects
    their blobs itself once this commits, so no collection is queued per version."""
    reason = "Deleted by retention rule '{rule}' (plan #{plan} of project '{project}')."
    tombstones = versions_delete(
        deletions=[
            Deletion(
                item.artifact_version or item.dataset_version,
                reason.format(rule=item.rule, plan=plan.pk, project=plan.project.slug),
                item.rule,
            )
            for item in items
        ],
        deleted_by=actor,
        plan_id=plan.pk,
        queue_collection=False,
    )
    return [
        "Deleted." if tombstone.plan_id == plan.pk else f"Deleted already: {tombstone.reason}"
        for tombstone in tombstones
    ]


def _archive(item: RetentionPlanItem) -> str:
    if blob_archive(blob_id=item.blob_id):
        return "Archived: its bytes moved to a colder storage class."
    return "Not archived: the bytes are archived already, or the storage has no colder class."


def _finish(plan: RetentionPlan, actor: AbstractBaseUser | None) -> RetentionPlan:
    with transaction.atomic(), ChangeSet() as changes:
        plan = Plan.objects.select_for_update().select_related("project").get(pk=plan.pk)
        if plan.state != Plan.State.APPLYING or plan.items.filter(state=Item.State.PENDING).exists():
            return plan  # another applier finished it, or is still at it
        changes.update(plan, state=Plan.State.APPLIED, applied_at=timezone.now())
        done = plan.items.filter(state=Item.State.DONE)
        changes.audit(
            AuditAction.RETENTION_PLAN_APPLIED,
            obj=plan,
            actor=actor,
            changes={
                "deleted": done.filter(action=Item.Action.DELETE).count(),
                "archived": done.filter(action=Item.Action.ARCHIVE).count(),
                "skipped_since_planning": plan.items.filter(state=Item.State.SKIPPED)
                .exclude(action=Item.Action.KEEP)
                .count(),
            },
        )
        # The project's storage figures are read from snapshots (services/snapshots.py): take one once the plan's
        # last act is committed, so the dashboard shows what applying it freed without waiting for the hour.
        project = plan.project
        transaction.on_commit(lambda: storage_snapshot_take(project=project))
    return plan
