"""The planner's set-based selection (one statement per kind of version) agrees with rules.py's reference meaning
(`rule_selecting` over each version's Candidate), for random stores and random rules."""

import contextlib
import random
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from artifacts.models import ArtifactVersion, DatasetVersion, Run
from artifacts.services import run_update
from artifacts.services.lifecycle import version_delete
from governance.lifecycle.rules import Candidate, rule_selecting, rules_clean
from governance.lifecycle.selectors import artifact_versions_selected, dataset_versions_selected
from governance.registry.models import ModelVersion
from governance.registry.services.registry import model_version_register
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
from tests.governance.lifecycle.retention import days_ago

pytestmark = pytest.mark.django_db


class Rollback(Exception):
    """Raised to undo a drawn history once it is checked, so the next draw starts from the same database."""


def random_rule(rng: random.Random, index: int) -> dict:
    rule: dict = {"name": f"rule-{index}", "action": rng.choice(["archive", "delete"])}
    if rng.random() < 0.4:
        rule["kinds"] = rng.sample(["model", "checkpoint", "dataset"], rng.randint(1, 2))
    if rng.random() < 0.4:
        rule["run_statuses"] = rng.sample(["none", "running", "completed", "failed"], rng.randint(1, 3))
    if rng.random() < 0.5:
        rule["older_than_days"] = rng.choice([1, 10, 30])
    if rng.random() < 0.5:
        rule["keep_last_versions"] = rng.randint(1, 3)
    if rng.random() < 0.4:
        rule["keep_last_runs"] = rng.randint(1, 3)
    if rng.random() < 0.3:
        rule["stages"] = rng.sample(["none", "archived"], rng.randint(1, 2))
    if rule["action"] == "delete" and not (
        rule.get("older_than_days") or rule.get("keep_last_versions") or rule.get("keep_last_runs")
    ):
        rule["keep_last_versions"] = 1
    return rule


def build_store(rng: random.Random):
    project = ProjectFactory()
    root = UserFactory(is_superuser=True)
    artifacts = [ArtifactFactory(project=project, kind=kind) for kind in ("model", "checkpoint", "checkpoint")]
    series = DatasetFactory(project=project)
    model = RegisteredModelFactory(project=project, created_by=root)
    runs: list[Run | None] = [None]
    for _ in range(rng.randint(8, 16)):
        if rng.random() < 0.3:
            run = RunFactory(project=project)
            if rng.random() < 0.5:
                status = rng.choice([Run.Status.COMPLETED, Run.Status.FAILED])
                run_update(run=run, status=status, **({"failure_reason": "x"} if status == "failed" else {}))
            runs.append(run)
        with days_ago(rng.choice([0, 5, 15, 45])):
            if rng.random() < 0.75:
                version = ArtifactVersionFactory(artifact=rng.choice(artifacts), run=rng.choice(runs))
                if rng.random() < 0.3:
                    registered, _ = model_version_register(
                        registered_model=model, artifact_version=version, created_by=root
                    )
                    stage = rng.choice(["none", "archived", "production", "staging"])
                    if stage == "production":
                        ModelVersion.objects.filter(registered_model=model, stage="production").update(stage="archived")
                    ModelVersion.objects.filter(pk=registered.pk).update(stage=stage)
            else:
                version = DatasetVersionFactory(dataset=series, run=rng.choice(runs))
        if rng.random() < 0.1:
            version_delete(version=version, deleted_by=None, reason="Test: deleted before planning.")
    return project


def reference(project, rules, now) -> dict[tuple[str, int], str]:
    """What rules.py says each live version's first matching rule is."""
    run_rank = {
        pk: rank
        for rank, pk in enumerate(Run.objects.filter(project=project).order_by("-pk").values_list("pk", flat=True), 1)
    }
    chosen = {}
    for model, parent in ((ArtifactVersion, "artifact"), (DatasetVersion, "dataset")):
        live = model.objects.filter(**{f"{parent}__project": project}, tombstone__isnull=True).select_related("run")
        if model is DatasetVersion:
            live = live.filter(blob__isnull=False)
        for version in live:
            siblings = model.objects.filter(**{parent: getattr(version, parent)}, tombstone__isnull=True)
            candidate = Candidate(
                kind=version.artifact.kind if model is ArtifactVersion else "dataset",
                run_status=version.run.status if version.run else None,
                age_days=(now - version.created_at) / timedelta(days=1),
                version_rank=siblings.filter(number__gte=version.number).count(),
                run_rank=run_rank.get(version.run_id),
                stages=frozenset(ModelVersion.objects.filter(artifact_version=version).values_list("stage", flat=True))
                if model is ArtifactVersion
                else frozenset(),
            )
            rule = rule_selecting(rules, candidate)
            if rule is not None:
                chosen[(parent, version.pk)] = rule.name
    return chosen


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_the_planners_selection_is_the_rules_reference_meaning(seed):
    rng = random.Random(seed)
    with contextlib.suppress(Rollback), transaction.atomic():
        project = build_store(rng)
        rules = rules_clean([random_rule(rng, index) for index in range(rng.randint(1, 3))])
        now = timezone.now()
        planned = {
            ("artifact", row[0]): rules[row[1]].name for row in artifact_versions_selected(project, rules, now=now)
        } | {("dataset", row[0]): rules[row[1]].name for row in dataset_versions_selected(project, rules, now=now)}
        assert planned == reference(project, rules, now), [rule.as_json() for rule in rules]
        raise Rollback
