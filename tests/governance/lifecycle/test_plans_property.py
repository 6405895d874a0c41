"""Whatever the history, applying plans never deletes or collects bytes a protected version needs.

Hypothesis draws histories: versions published (some sharing bytes, some produced by runs reading earlier versions,
some in a second project with the same bytes), model versions put in production or staging, aliases set, legal holds
placed and released, and rules run into plans that are applied, with more of the same happening between planning
and applying. After each application, every version protected at that moment, judged by a naive reference written
here (not by the planner's own selectors), still has its row untombstoned and its bytes in storage.
"""

import contextlib
import hashlib
import os
import random

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artifacts.models import ArtifactVersion, DatasetVersion, Run
from artifacts.services import run_update
from governance.lifecycle.models import LegalHold
from governance.lifecycle.services.holds import legal_hold_place, legal_hold_release
from governance.lifecycle.services.plans import retention_plan_apply, retention_plan_create
from governance.registry.models import ModelAlias, ModelVersion, PromotionRequest
from governance.registry.services.registry import model_alias_set, model_version_register
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    RunFactory,
    UserFactory,
)
from tests.governance.factories import RegisteredModelFactory
from tests.governance.lifecycle.retention import rules_in_force

pytestmark = pytest.mark.django_db

STEPS = ["publish", "publish", "publish", "dataset", "register", "serve", "alias", "hold", "release", "plan"]
#: What happens between planning and applying: mostly what protects versions the plan selected.
BETWEEN = ["register", "serve", "alias", "alias", "hold", "hold", "release", "publish"]
RULES = [
    {"name": "old", "older_than_days": 0, "keep_last_versions": 1},
    {"name": "keep-two", "keep_last_versions": 2},
    {"name": "failed", "run_statuses": ["failed", "none"]},
    {"name": "cold", "action": "archive", "keep_last_runs": 1},
    {"name": "checkpoints", "kinds": ["checkpoint", "dataset"], "keep_last_versions": 1},
    {"name": "sweep"},
]


class Rollback(Exception):
    """Undo one drawn history, so the next starts from an empty store."""


class History:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.root = UserFactory(is_superuser=True)
        self.project, self.other = ProjectFactory(), ProjectFactory()
        self.artifacts = [ArtifactFactory(project=self.project, kind=kind) for kind in ("model", "checkpoint")]
        self.series = DatasetFactory(project=self.project)
        self.model = RegisteredModelFactory(project=self.project, created_by=self.root)
        self.contents: list[bytes] = []

    def live(self, model):
        scope = {"artifact__project": self.project} if model is ArtifactVersion else {"dataset__project": self.project}
        return list(model.objects.filter(tombstone__isnull=True, **scope).order_by("pk"))

    def pick(self, items):
        return self.rng.choice(items) if items else None

    def content(self) -> bytes:
        if self.contents and self.rng.random() < 0.3:
            return self.rng.choice(self.contents)  # the same bytes again, under another artifact or project
        fresh = os.urandom(64)
        self.contents.append(fresh)
        return fresh

    def run(self) -> Run | None:
        if self.rng.random() < 0.3:
            return None
        inputs = [v for v in self.live(ArtifactVersion) if self.rng.random() < 0.3]
        data = [v for v in self.live(DatasetVersion) if self.rng.random() < 0.4]
        run = RunFactory(project=self.project, input_artifact_versions=inputs, input_dataset_versions=data)
        if self.rng.random() < 0.3:
            run_update(run=run, status=Run.Status.FAILED, failure_reason="Diverged.")
        return run

    def step(self, name: str) -> None:
        getattr(self, name)()

    def publish(self) -> None:
        content = self.content()
        if self.rng.random() < 0.15:
            ArtifactVersionFactory(artifact=ArtifactFactory(project=self.other), content=content)
            return
        artifact = self.pick(self.artifacts)
        if ArtifactVersion.objects.filter(artifact=artifact, blob__digest=_digest(content)).exists():
            return  # the same bytes under the same artifact are the same version
        ArtifactVersionFactory(artifact=artifact, content=content, run=self.run())

    def dataset(self) -> None:
        DatasetVersionFactory(dataset=self.series, run=self.run())

    def register(self) -> None:
        version = self.pick([v for v in self.live(ArtifactVersion) if v.blob.collected_at is None])
        if version is not None:
            model_version_register(registered_model=self.model, artifact_version=version, created_by=self.root)

    def serve(self) -> None:
        """Put a registered version in production or staging. The registry's gates are tested elsewhere: here the
        stage is set as a promotion's last step sets it."""
        version = self.pick(self.registered())
        if version is None:
            return
        stage = self.rng.choice(["production", "staging", "archived"])
        if stage == "production":
            ModelVersion.objects.filter(registered_model=self.model, stage="production").update(stage="archived")
        ModelVersion.objects.filter(pk=version.pk).update(stage=stage)

    def registered(self) -> list[ModelVersion]:
        """Model versions whose bytes are not deleted (a deleted version is not served or aliased again)."""
        return list(ModelVersion.objects.filter(registered_model=self.model, artifact_version__tombstone__isnull=True))

    def alias(self) -> None:
        version = self.pick(self.registered())
        if version is not None:
            name = self.rng.choice(["champion", "candidate"])
            model_alias_set(registered_model=self.model, name=name, model_version=version, set_by=self.root)

    def hold(self) -> None:
        scope = self.rng.choice(["artifact_version", "dataset_version", "artifact", "project"])
        target = {
            "artifact_version": lambda: self.pick(self.live(ArtifactVersion)),
            "dataset_version": lambda: self.pick(self.live(DatasetVersion)),
            "artifact": lambda: self.pick(self.artifacts),
            "project": lambda: None,
        }[scope]()
        if target is None and scope != "project":
            return
        named = {scope: target} if scope != "project" else {}
        legal_hold_place(project=self.project, placed_by=self.root, reason="Matter 12.", **named)

    def release(self) -> None:
        hold = self.pick(list(LegalHold.objects.active()))
        if hold is not None:
            legal_hold_release(hold=hold, released_by=self.root, reason="Matter closed.")

    def plan(self) -> None:
        rules = self.rng.sample(RULES, self.rng.randint(1, 3))
        rules_in_force(self.project, *rules)
        plan = retention_plan_create(project=self.project, created_by=self.root)
        for name in self.rng.choices(BETWEEN, k=self.rng.randint(0, 3)):
            self.step(name)  # the world moves on between planning and applying
        retention_plan_apply(plan=plan, applied_by=self.root)
        assert_protected_bytes_kept(self.project, plan)


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def naively_protected(project) -> tuple[set[int], set[int]]:
    """Artifact and dataset version ids a protection covers, found the slow, obvious way."""
    seeds = set(
        ModelVersion.objects.filter(stage__in=["production", "staging"]).values_list("artifact_version", flat=True)
    )
    seeds |= set(ModelAlias.objects.values_list("model_version__artifact_version", flat=True))
    seeds |= set(
        PromotionRequest.objects.filter(state="open").values_list("model_version__artifact_version", flat=True)
    )
    artifacts, datasets = set(seeds), set()
    holds = list(LegalHold.objects.active())
    for version in ArtifactVersion.objects.filter(artifact__project=project):
        for hold in holds:
            if (
                hold.artifact_version_id == version.pk
                or hold.artifact_id == version.artifact_id
                or (
                    hold.project_id == project.pk
                    and not (hold.artifact_id or hold.artifact_version_id or hold.dataset_id or hold.dataset_version_id)
                )
            ):
                artifacts.add(version.pk)
                if ModelVersion.objects.filter(artifact_version=version).exists():
                    seeds.add(version.pk)
    for version in DatasetVersion.objects.filter(dataset__project=project):
        for hold in holds:
            if (
                hold.dataset_version_id == version.pk
                or hold.dataset_id == version.dataset_id
                or (
                    hold.project_id == project.pk
                    and not (hold.artifact_id or hold.artifact_version_id or hold.dataset_id or hold.dataset_version_id)
                )
            ):
                datasets.add(version.pk)
    frontier = [ArtifactVersion.objects.get(pk=pk) for pk in seeds]
    while frontier:
        version = frontier.pop()
        if version.run is None:
            continue
        for upstream in version.run.input_artifact_versions.all():
            if upstream.pk not in artifacts:
                artifacts.add(upstream.pk)
                frontier.append(upstream)
        for upstream in version.run.input_dataset_versions.all():
            if upstream.pk not in datasets:
                datasets.add(upstream.pk)
                frontier.append(upstream)
    return artifacts, datasets


def assert_protected_bytes_kept(project, plan) -> None:
    """No version protected now was deleted by `plan`, and no live protected version lost its bytes. (A version
    deleted by an earlier plan may be covered since, by a hold on its artifact say: that was no mistake.)"""
    artifacts, datasets = naively_protected(project)
    for model, ids in ((ArtifactVersion, artifacts), (DatasetVersion, datasets)):
        for version in model.objects.filter(pk__in=ids).select_related("blob", "tombstone"):
            tombstone = getattr(version, "tombstone", None)
            assert tombstone is None or tombstone.plan_id != plan.pk, f"protected {version} was deleted"
            if tombstone is None and version.blob_id:
                assert version.blob.collected_at is None, f"the bytes of protected {version} were collected"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1), steps=st.lists(st.sampled_from(STEPS), min_size=6, max_size=30)
)
def test_applied_plans_never_take_bytes_a_protected_version_needs(seed, steps):
    with contextlib.suppress(Rollback), transaction.atomic():
        history = History(random.Random(seed))
        for name in [*steps, "plan"]:
            history.step(name)
        raise Rollback
