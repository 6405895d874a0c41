"""Arranging retention: rules in force, versions with histories, and reading plans back."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

from django.utils import timezone

from artifacts.models import ArtifactVersion
from governance.lifecycle.models import RetentionPlan, RetentionPlanItem, RetentionPolicy
from tests.artifacts.factories import UserFactory


def rules_in_force(project, *rules: dict, auto_apply: bool = False) -> RetentionPolicy:
    """Save the project's next version of rules (each a dict in the stored shape)."""
    latest = RetentionPolicy.objects.filter(project=project).order_by("-version").first()
    return RetentionPolicy.objects.create(
        project=project,
        version=(latest.version + 1) if latest else 1,
        rules=[{"action": "delete", **rule} for rule in rules],
        auto_apply=auto_apply,
        changed_by=UserFactory(),
        changed_at=timezone.now(),
    )


@contextmanager
def days_ago(days: float) -> Iterator[None]:
    """Time travel: what is published inside the block is `days` old (versions are write-once, even their date)."""
    real_now = timezone.now
    with patch("django.utils.timezone.now", lambda: real_now() - timedelta(days=days)):
        yield


def item_of(plan: RetentionPlan, version) -> RetentionPlanItem | None:
    field = "artifact_version" if isinstance(version, ArtifactVersion) else "dataset_version"
    return plan.items.filter(**{field: version}).first()


def selected(plan: RetentionPlan) -> set[int]:
    """Ids of the versions the plan deletes or archives (artifact and dataset versions alike)."""
    rows = plan.items.exclude(action=RetentionPlanItem.Action.KEEP).values_list(
        "artifact_version_id", "dataset_version_id"
    )
    return {artifact or dataset for artifact, dataset in rows}
