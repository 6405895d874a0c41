"""A storage scenario shared by the accounting, storage API and portal tests: two projects sharing a blob, one project
deduplicating inside itself, a deleted version awaiting collection, a deleted and collected one, an archived blob
and a plan waiting to be applied. Tombstones, archival and collection are written on the rows directly, as the
lifecycle services would leave them (those services are not what these tests are about)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.models import Artifact, ArtifactVersion, Blob, DatasetVersion, Project, VersionTombstone
from governance.lifecycle.models import LegalHold, RetentionPlan, RetentionPlanItem, RetentionPolicy
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    UserFactory,
    grant,
)

SHARED = b"s" * 1000  # in both projects
TOKENIZER = b"t" * 300  # twice in the first project: a model version and a config version
DATA = b"d" * 500  # the first project's dataset version, archived
DELETED = b"x" * 200  # deleted, its bytes not collected yet
COLLECTED = b"c" * 400  # deleted and collected


@dataclass
class Scenario:
    first: Project
    second: Project
    viewer_of_both: AbstractBaseUser
    viewer_of_second: AbstractBaseUser
    maintainer: AbstractBaseUser
    model_v1: ArtifactVersion
    dataset_version: DatasetVersion
    deleted: ArtifactVersion
    collected: ArtifactVersion
    plan: RetentionPlan
    now: datetime


def tombstone(version: ArtifactVersion, *, by, at: datetime, reason: str = "Older than 90 days.") -> VersionTombstone:
    return VersionTombstone.objects.create(
        project=version.artifact.project,
        artifact_version=version,
        deleted_by=by,
        deleted_at=at,
        reason=reason,
        rule="old-checkpoints",
    )


def build() -> Scenario:
    now = timezone.now()
    first, second = ProjectFactory(slug="fraud"), ProjectFactory(slug="churn")
    maintainer = grant(Role.MAINTAINER, on=first).user
    viewer_of_both = grant(Role.VIEWER, on=first).user
    grant(Role.VIEWER, on=second, user=viewer_of_both)
    viewer_of_second = grant(Role.VIEWER, on=second).user

    model = ArtifactFactory(project=first, name="model", kind=Artifact.Kind.MODEL)
    config = ArtifactFactory(project=first, name="tokenizer-config", kind=Artifact.Kind.CONFIG)
    model_v1 = ArtifactVersionFactory(artifact=model, content=SHARED)
    ArtifactVersionFactory(artifact=model, content=TOKENIZER)
    ArtifactVersionFactory(artifact=config, content=TOKENIZER)
    deleted = ArtifactVersionFactory(artifact=model, content=DELETED)
    collected = ArtifactVersionFactory(artifact=model, content=COLLECTED)
    dataset_version = DatasetVersionFactory(dataset=DatasetFactory(project=first, name="transactions"), content=DATA)
    checkpoint = ArtifactFactory(project=second, name="checkpoint", kind=Artifact.Kind.CHECKPOINT)
    ArtifactVersionFactory(artifact=checkpoint, content=SHARED)

    tombstone(deleted, by=maintainer, at=now)
    tombstone(collected, by=None, at=now - timedelta(days=62), reason="Superseded checkpoint.")
    Blob.objects.filter(pk=collected.blob_id).update(collected_at=now)
    Blob.objects.filter(pk=dataset_version.blob_id).update(storage_class="GLACIER_IR", archived_at=now)

    RetentionPolicy.objects.create(
        project=first,
        version=1,
        rules=[{"name": "old-checkpoints", "action": "delete", "kinds": ["checkpoint"], "older_than_days": 90}],
        changed_by=maintainer,
        changed_at=now - timedelta(days=3),
    )
    RetentionPolicy.objects.create(
        project=first,
        version=2,
        rules=[
            {"name": "old-checkpoints", "action": "delete", "kinds": ["checkpoint"], "older_than_days": 30},
            {"name": "cold-datasets", "action": "archive", "kinds": ["dataset"], "older_than_days": 60},
        ],
        note="Checkpoints are kept a month now.",
        changed_by=maintainer,
        changed_at=now - timedelta(days=1),
    )
    LegalHold.objects.create(
        project=first,
        artifact=model,
        reason="Litigation 2026-17: keep every model.",
        placed_by=maintainer,
        placed_at=now - timedelta(days=2),
    )
    superseded = RetentionPlan.objects.create(
        project=first,
        policy_version=1,
        state=RetentionPlan.State.SUPERSEDED,
        trigger="schedule",
        created_at=now - timedelta(days=2),
        bytes_reclaimable=9999,
    )
    plan = RetentionPlan.objects.create(
        project=first,
        policy_version=2,
        trigger="manual",
        created_by=maintainer,
        created_at=now - timedelta(hours=1),
        versions_to_archive=1,
        versions_protected=1,
        bytes_selected=500,
        bytes_reclaimable=700,
    )
    RetentionPlanItem.objects.create(
        plan=plan,
        dataset_version=dataset_version,
        blob_id=dataset_version.blob_id,
        size=len(DATA),
        action="archive",
        rule="cold-datasets",
    )
    RetentionPlanItem.objects.create(
        plan=plan,
        artifact_version=model_v1,
        blob_id=model_v1.blob_id,
        size=len(SHARED),
        action="keep",
        rule="old-checkpoints",
        protected_by="Legal hold: Litigation 2026-17.",
        state="skipped",
    )
    assert superseded.pk < plan.pk
    return Scenario(
        first=first,
        second=second,
        viewer_of_both=viewer_of_both,
        viewer_of_second=viewer_of_second,
        maintainer=maintainer,
        model_v1=model_v1,
        dataset_version=dataset_version,
        deleted=deleted,
        collected=collected,
        plan=plan,
        now=now,
    )


def stranger() -> AbstractBaseUser:
    return UserFactory()
