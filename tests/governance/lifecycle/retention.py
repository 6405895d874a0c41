"""Arranging retention: rules in force, versions with histories, and reading plans back."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest.mock import patch

from django.utils import timezone

from artifacts.models import ArtifactVersion
from governance.lifecycle.models import RetentionPlan, RetentionPlanItem, RetentionPolicy
from governance.lifecycle.services.policies import retention_policy_set
from tests.artifacts.factories import UserFactory

#: As close to "every version" as a delete rule may say (one must spare something): all but what cancelled runs made.
NEARLY_ALL = {"run_statuses": ["none", "running", "completed", "failed"]}


def rules_in_force(project, *rules: dict, auto_apply: bool = False) -> RetentionPolicy:
    """Save the project's next version of rules through the service, each rule deleting unless it says otherwise
    and selecting NEARLY_ALL unless it names criteria."""
    shaped = [
        {"action": "delete", **(rule if set(rule) - {"name", "action"} else {**rule, **NEARLY_ALL})} for rule in rules
    ]
    return retention_policy_set(
        project=project, changed_by=UserFactory(is_superuser=True), rules=shaped, auto_apply=auto_apply
    )[0]


@contextmanager
def days_ago(days: float) -> Iterator[None]:
    """Time travel: what is published inside the block is `days` old (versions are write-once, even their date)."""
    real_now = timezone.now
    with patch("django.utils.timezone.now", lambda: real_now() - timedelta(days=days)):
        yield


def item_of(plan: RetentionPlan, version) -> RetentionPlanItem | None:
    field = "artifact_version" if isinstance(version, ArtifactVersion) else "dataset_version"
    return plan.items.filter(**{field: version}).first()


def selected(plan: RetentionPlan) -> set:
    """The versions the plan deletes or archives, artifact and dataset versions alike (as rows, which compare by
    model and id: an artifact version and a dataset version may share an id)."""
    items = plan.items.exclude(action=RetentionPlanItem.Action.KEEP).select_related(
        "artifact_version", "dataset_version"
    )
    return {item.artifact_version or item.dataset_version for item in items}
