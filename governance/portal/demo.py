"""The registry part of `manage.py load_demo`: the demo's model registered, promoted through its policies by the
demo team, with one promotion left half-approved so a reviewer has something waiting at first sign-in, an access
review under way for the maintainer, retention rules with a legal hold and a few days of storage snapshots so the
lifecycle page and the dashboard's storage accounting have something to show."""

from dataclasses import dataclass
from datetime import UTC, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.access.services import role_grant
from governance.access.services import campaign_open
from governance.lifecycle.models import StorageSnapshot
from governance.lifecycle.services.holds import legal_hold_place
from governance.lifecycle.services.policies import retention_policy_set
from governance.lifecycle.services.snapshots import storage_snapshot_take
from governance.registry.models import PromotionRequest, RegisteredModel
from governance.registry.services.promotions import (
    promotion_approve,
    promotion_comment_add,
    promotion_request_create,
)
from governance.registry.services.registry import (
    model_alias_set,
    model_version_register,
    promotion_policy_set,
    registered_model_create,
)

MODEL_NAME = "fraud-scorer"
#: A second reviewer (production takes two approvals from people who did not make the bytes), and a maintainer who
#: sets the policies (the demo's admin may be someone's existing account, whose rights the demo leaves alone).
SECOND_REVIEWER = "sam"
MAINTAINER = "mara"
MODEL_CARD = """# Fraud scorer

Scores a card transaction's probability of fraud before authorisation.

## Intended use
Ranking transactions for manual review by the fraud desk. Not for declining a transaction on its own.

## Training data
Labelled card transactions (`card-transactions`), synthetic for this demo. v1 trained on 1-21 October 2026,
v2 on 1-28 October.

## Evaluation
Held-out transactions of the same snapshot; see the `evaluation-report` artifact of each run. Production
requires `auc >= 0.9` on it.

## Limitations
Logistic regression on six features; it does not see merchant history. Retrain monthly.
"""


@dataclass(frozen=True)
class RegistryDemo:
    loaded: bool
    model: RegisteredModel
    waiting: PromotionRequest | None


def load_registry_demo(project, admin: AbstractBaseUser, passwords: str) -> RegistryDemo:
    """Register the demo's model unless it is there; safe to call any number of times."""
    existing = RegisteredModel.objects.filter(project=project, name=MODEL_NAME).first()
    if existing is not None:
        waiting = existing.promotion_requests.filter(state=PromotionRequest.State.OPEN).first()
        return RegistryDemo(loaded=False, model=existing, waiting=waiting)
    with transaction.atomic():
        return RegistryDemo(loaded=True, **_record(project, admin, passwords))


def _member(username: str, role: str, project, admin: AbstractBaseUser, password: str) -> AbstractBaseUser:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first() or user_model.objects.create_user(
        username=username, email=f"{username}@example.com", password=password
    )
    role_grant(obj=project, role=role, user=user, granted_by=admin)
    return user


def _record(project, admin: AbstractBaseUser, password: str) -> dict:
    user_model = get_user_model()
    dana, rui = user_model.objects.get(username="dana"), user_model.objects.get(username="rui")
    sam = _member(SECOND_REVIEWER, Role.REVIEWER, project, admin, password)
    mara = _member(MAINTAINER, Role.MAINTAINER, project, admin, password)
    promotion_policy_set(
        project=project,
        stage="production",
        changed_by=mara,
        note="Production needs two reviewers and an AUC of at least 0.9 on held-out transactions.",
        approvals_required=2,
        metric_thresholds=[{"metric": "auc", "operator": ">=", "value": 0.9}],
        require_model_card=True,
    )
    model = registered_model_create(
        project=project,
        name=MODEL_NAME,
        created_by=dana,
        description="Fraud probability of a card transaction, for the fraud desk's review queue.",
        model_card=MODEL_CARD,
        owners=[dana],
        # The policy's threshold says auc is better higher; the rest the model declares.
        metric_directions={
            "accuracy": "higher",
            "f1": "higher",
            "log_loss": "lower",
            "precision": "higher",
            "recall": "higher",
            "train_log_loss": "lower",
        },
    )
    artifact = project.artifacts.get(name="model")
    v1, v2 = (
        model_version_register(registered_model=model, artifact_version=version, created_by=dana)[0]
        for version in artifact.versions.order_by("number")
    )
    staging = promotion_request_create(
        model_version=v1, target_stage="staging", requested_by=dana, justification="Baseline for shadow scoring."
    )
    promotion_approve(request=staging, reviewer=rui, comment="Lineage and metrics check out.")
    production = promotion_request_create(
        model_version=v1,
        target_stage="production",
        requested_by=dana,
        justification="Shadow scoring matched the desk's decisions on 96% of flagged transactions.",
    )
    promotion_approve(request=production, reviewer=rui, comment="Agreed.")
    promotion_approve(request=production, reviewer=sam, comment="Good to go.")
    waiting = promotion_request_create(
        model_version=v2,
        target_stage="production",
        requested_by=dana,
        justification="Retrained on a week more of labelled data; higher AUC on the held-out week.",
    )
    promotion_approve(request=waiting, reviewer=rui, comment="Better AUC at the same threshold.")
    promotion_comment_add(
        request=waiting,
        author=rui,
        body="Did the held-out week include the chargebacks filed late? Recall hinges on it.",
    )
    promotion_comment_add(request=waiting, author=dana, body="Yes: its labels include chargebacks up to 14 days late.")
    model_alias_set(registered_model=model, name="champion", model_version=v1, set_by=dana)
    model_alias_set(registered_model=model, name="candidate", model_version=v2, set_by=dana)
    # A quarterly access review under way, so the maintainer has grants to recertify at first sign-in; she shares
    # it with sam, as a second pair of eyes (neither reviews their own grant).
    campaign_open(
        project=project,
        due_at=timezone.now() + timedelta(days=14),
        opened_by=mara,
        reviewers=[mara, sam],
        title="Fraud detection: quarterly access review",
    )
    _lifecycle(project, mara)
    return {"model": model, "waiting": waiting}


#: The demo's retention rules: evaluation reports and preprocessors of failed runs go after a month, old dataset
#: snapshots move to colder storage; every model version is under the hold below anyway.
RETENTION_RULES = [
    {
        "name": "failed-runs",
        "action": "delete",
        "kinds": ["evaluation_report", "preprocessor"],
        "run_statuses": ["failed"],
        "older_than_days": 30,
    },
    {
        "name": "cold-snapshots",
        "action": "archive",
        "kinds": ["dataset"],
        "older_than_days": 90,
        "keep_last_versions": 2,
    },
]


def _lifecycle(project, maintainer: AbstractBaseUser) -> None:
    """Retention rules and a legal hold on the model, set through the lifecycle services (audited like any), and a
    few days of storage snapshots so the dashboard and the lifecycle page have growth to show."""
    retention_policy_set(
        project=project,
        changed_by=maintainer,
        rules=RETENTION_RULES,
        note="Keep failed runs' by-products a month; archive dataset snapshots after a quarter, the newest two aside.",
    )
    legal_hold_place(
        project=project,
        placed_by=maintainer,
        artifact=project.artifacts.get(name="model"),
        reason="Regulator's model-risk review 2026-Q4: keep every version of the fraud model until it closes.",
    )
    _storage_history(project)


#: The demo's storage history: on each of these days before today, the kinds stored then (a made-up history, as
#: every demo version is published at load time: the datasets came first, then the runs' artifacts).
DEMO_HISTORY = ((2, ("dataset",)), (1, ("dataset", "model", "preprocessor")))


def _storage_history(project) -> None:
    """Today's snapshot of the demo project, taken by the service, and backdated daily ones made from it with only
    the kinds DEMO_HISTORY lists, so "stored bytes by day" grows over three days. Demo data only: a real history is
    the hourly task's snapshots."""
    (today,) = storage_snapshot_take(project=project)
    for days_ago, kinds in DEMO_HISTORY:
        then = today.taken_at - timedelta(days=days_ago)
        kept = {kind: figures for kind, figures in today.by_kind.items() if kind in kinds}
        StorageSnapshot.objects.create(
            project=project,
            taken_at=then,
            day=then.astimezone(UTC).date(),
            daily=True,
            versions_live=sum(figures["versions"] for figures in kept.values()),
            versions_deleted=0,
            # Summed per kind, a blob two kinds share would count twice: never more than today's, though.
            blobs=min(today.blobs, sum(figures["versions"] for figures in kept.values())),
            stored_bytes=min(today.stored_bytes, sum(figures["stored"] for figures in kept.values())),
            logical_bytes=min(today.logical_bytes, sum(figures["logical"] for figures in kept.values())),
            archived_bytes=0,
            by_kind=kept,
        )
