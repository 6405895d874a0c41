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
(`version_delete` answers an existing tombstone, `blob_collect` and `blob_archive` do nothing twice) and an item is
marked done only after its act, so a plan stopped half way (a crash, a lost worker) is finished by applying it again
and nothing is done twice to any version.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from artifacts.services.lifecycle import blob_collect, version_delete
from artifacts.services.tiers import blob_archive
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.models import Project
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

logger = logging.getLogger(__name__)

#: Items written per INSERT while planning, and versions read per round trip from the database's cursor.
PLAN_BATCH = 2000
#: Items applied between two looks at the protections (and two saves of the items' states).
APPLY_BATCH = 500

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
    pending: list[RetentionPlanItem] = field(default_factory=list)


def retention_plan_create(
    *, project: Project, created_by: AbstractBaseUser | None, trigger: str = Plan.Trigger.MANUAL
) -> RetentionPlan:
    """Run the project's rules in force and write what they would do as a new plan, superseding the project's plans
    not applied yet (a plan being applied is left to finish). `created_by` None: the project's schedule.

    Nothing is deleted or archived here. The whole plan is written in one transaction, so a plan is complete or
    absent; planning over a million versions streams them from the database and writes items in batches.
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
    totals = _Totals()
    project = plan.project
    for kind, rows in (
        ("artifact_version", artifact_versions_selected(project, rules, now=now)),
        ("dataset_version", dataset_versions_selected(project, rules, now=now)),
    ):
        batch: list[tuple] = []
        for row in rows.iterator(chunk_size=PLAN_BATCH):
            batch.append(row)
            if len(batch) == PLAN_BATCH:
                _items_batch_write(plan, kind, batch, rules, protections, totals)
                batch = []
        if batch:
            _items_batch_write(plan, kind, batch, rules, protections, totals)
    return totals


def _items_batch_write(
    plan: RetentionPlan,
    kind: str,
    rows: list[tuple],
    rules: Sequence[Rule],
    protections: Protections,
    totals: _Totals,
) -> None:
    """One batch of selected versions (SelectedRow tuples) as items: kept with words when protected."""
    describe = protections.of_artifact_version if kind == "artifact_version" else protections.of_dataset_version
    parent = "artifact_id" if kind == "artifact_version" else "dataset_id"
    archive_blobs = [row[3] for row in rows if rules[row[1]].action == Item.Action.ARCHIVE and row[5] is None]
    shared = blob_users_protected(archive_blobs, protections, project=plan.project) if archive_blobs else {}
    items = []
    for version_id, rule_index, parent_id, blob_id, size, archived_at in rows:
        rule = rules[rule_index]
        if rule.action == Item.Action.ARCHIVE and archived_at is not None:
            continue  # archived already: nothing to do
        words = describe(version_id=version_id, **{parent: parent_id}, project_id=plan.project_id)
        if not words and rule.action == Item.Action.ARCHIVE:
            words = shared.get(blob_id, "")
        item = Item(plan=plan, blob_id=blob_id, size=size, rule=rule.name, **{f"{kind}_id": version_id})
        if words:
            item.action, item.protected_by, item.state = Item.Action.KEEP, words, Item.State.SKIPPED
            item.outcome = "Kept: a built-in protection overrides the rule."
            totals.protected += 1
        else:
            item.action = rule.action
            totals.bytes_selected += size
            if rule.action == Item.Action.DELETE:
                totals.to_delete += 1
            else:
                totals.to_archive += 1
        items.append(item)
    Item.objects.bulk_create(items, batch_size=PLAN_BATCH)


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

    Between this look and the act a version could still be promoted; the window is one batch's acts, and a
    promotion of a version whose bytes are gone is refused by its gates (the bytes must verify).
    """
    protections = protections_compute()
    archive_blobs = [item.blob_id for item in batch if item.action == Item.Action.ARCHIVE]
    shared = blob_users_protected(archive_blobs, protections, project=plan.project) if archive_blobs else {}
    now = timezone.now
    for item in batch:
        version = item.artifact_version or item.dataset_version
        if item.artifact_version_id:
            words = protections.of_artifact_version(
                version_id=version.pk, artifact_id=version.artifact_id, project_id=plan.project_id
            )
        else:
            words = protections.of_dataset_version(
                version_id=version.pk, dataset_id=version.dataset_id, project_id=plan.project_id
            )
        if not words and item.action == Item.Action.ARCHIVE:
            words = shared.get(item.blob_id, "")
        if words:
            item.state, item.outcome = Item.State.SKIPPED, f"Skipped: protected since planning ({words})."
        elif item.action == Item.Action.DELETE:
            item.state, item.outcome = Item.State.DONE, _delete(plan, item, version, actor)
        else:
            item.state, item.outcome = Item.State.DONE, _archive(item)
        item.done_at = now()
    Item.objects.bulk_update(batch, ["state", "outcome", "done_at"])


def _delete(plan: RetentionPlan, item: RetentionPlanItem, version, actor: AbstractBaseUser | None) -> str:
    tombstone = version_delete(
        version=version,
        deleted_by=actor,
        reason=f"Deleted by retention rule '{item.rule}' (plan #{plan.pk} of project '{plan.project.slug}').",
        rule=item.rule,
        plan_id=plan.pk,
    )
    done = "Deleted" if tombstone.plan_id == plan.pk else f"Deleted already ({tombstone.reason})"
    if blob_collect(blob_id=item.blob_id):
        return f"{done}; its bytes left storage."
    return f"{done}; its bytes stay in storage while another version uses them."


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
    return plan
