"""Promotions raced on the real database: however approvals, requests and rollbacks interleave, a model ends with
exactly one production version, a stage history whose moves chain, and an answer for everyone that is a success or
a clear refusal, never a 500 or a deadlock.

Each race starts from committed data and sends every call from its own thread, API client and database connection,
released together by a barrier. Each test repeats its race on a fresh model a few times, because one lucky
interleaving proves little.
"""

import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from artifacts.services.integrity import blob_verify
from governance.registry.models import ModelVersion, PromotionDecision, PromotionRequest, Stage, StageTransition
from governance.registry.selectors import model_stages_at
from governance.registry.services.promotions import promotion_approve
from governance.registry.services.registry import promotion_policy_set
from tests.artifacts.factories import ArtifactVersionFactory, grant
from tests.governance.factories import (
    ModelVersionFactory,
    PromotionRequestFactory,
    RegisteredModelFactory,
    artifact_version_with_lineage,
    token_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUNDS = 3
THREADS = 8
# Far above what one promotion takes, far below the suite's patience: a thread still waiting then is stuck on a lock.
JOIN_TIMEOUT = 30.0


@dataclass(frozen=True)
class Answer:
    """What one racer got back: `who` names the caller and the call for failure messages; `error` is the traceback
    when the view raised (a 500 in production)."""

    who: str
    status: int | None = None
    body: dict | None = None
    error: str = ""

    @property
    def code(self) -> str | None:
        return (self.body or {}).get("code")


def race(calls: list[tuple[str, Callable]]) -> list[Answer]:
    """Send each `(who, call)` from its own thread and connection, all released at once; fail on a 500 or a thread
    that never returns.

    Unlike test_races.race this keeps each answer's body (the refusals' codes are part of what is proved) and the
    traceback of a view that raised, which is the bug report. Django's test client learns of a view's exception
    through a process-wide signal, so one 500 may be re-raised in several threads: read the first traceback.
    """
    barrier = threading.Barrier(len(calls))
    answers: list[Answer] = []

    def send(who: str, call: Callable) -> None:
        try:
            barrier.wait(JOIN_TIMEOUT)
            response = call()
            body = response.json() if response.get("Content-Type", "").startswith("application/json") else None
            answers.append(Answer(who, response.status_code, body))
        except Exception:
            answers.append(Answer(who, error=traceback.format_exc()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=call, name=call[0]) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"Still waiting after {JOIN_TIMEOUT:.0f} s (a lock that is never released?): {stuck}"
    failed = [answer for answer in answers if answer.error or answer.status >= 500]
    assert not failed, "\n\n".join(f"{answer.who}: {answer.status}\n{answer.error or answer.body}" for answer in failed)
    return answers


def statuses(answers: list[Answer]) -> list[int]:
    return sorted(answer.status for answer in answers)


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


def post(who: str, user, url: str, body: dict) -> tuple[str, Callable]:
    """A racer for race(): `user` POSTs `body` to `url`."""
    client = api(user)
    return who, lambda: client.post(url, body, format="json")


def approve(reviewer, request: PromotionRequest) -> tuple[str, Callable]:
    url = f"/api/v1/promotions/{request.pk}/approve/"
    return post(f"{reviewer.username} approves #{request.pk}", reviewer, url, {"comment": "Looks good."})


def reviewers_of(project, count: int) -> list:
    return [grant(Role.REVIEWER, on=project).user for _ in range(count)]


def model_with_policy(approvals_required: int):
    """A new model whose project's production policy asks `approvals_required` approvals (else the defaults), and a
    maintainer of the project."""
    model = RegisteredModelFactory()
    maintainer = grant(Role.MAINTAINER, on=model.project).user
    promotion_policy_set(
        project=model.project, stage=Stage.PRODUCTION, changed_by=maintainer, approvals_required=approvals_required
    )
    return model, maintainer


def versions_of(model, count: int) -> list[ModelVersion]:
    """`count` new versions of `model` that pass every default gate. They share one run's lineage: each needs bytes
    of its own, but a dataset and a run per version would double the uploads that dominate these tests' time."""
    first = artifact_version_with_lineage(model.project)
    artifact_versions = [first]
    for _ in range(count - 1):
        artifact_version = ArtifactVersionFactory(artifact=first.artifact, created_by=first.created_by, run=first.run)
        blob_verify(blob=artifact_version.blob)
        artifact_versions.append(artifact_version)
    return [ModelVersionFactory(registered_model=model, artifact_version=version) for version in artifact_versions]


def requests_for(versions: list[ModelVersion]) -> list[PromotionRequest]:
    return [PromotionRequestFactory(model_version=version) for version in versions]


def promoted(version: ModelVersion, approvers: list) -> ModelVersion:
    """`version` put in production by `approvers` one after the other (before any race)."""
    request = PromotionRequestFactory(model_version=version)
    for reviewer in approvers:
        promotion_approve(request=request, reviewer=reviewer)
    version = ModelVersion.objects.get(pk=request.model_version_id)
    assert version.stage == Stage.PRODUCTION
    return version


def assert_one_production(model) -> ModelVersion:
    """Exactly one version of `model` is in production, every other version that ever was is archived, and the
    stage history replays to the stages stored: each move starts where the version's previous move ended, no moment
    of the history has two versions in production, and the history read by time names the same production version.
    Answers the production version."""
    stored = dict(ModelVersion.objects.filter(registered_model=model).values_list("pk", "stage"))
    in_production = [pk for pk, stage in stored.items() if stage == Stage.PRODUCTION]
    assert len(in_production) == 1, f"Versions in production: {in_production} (stages {stored})"

    replayed = dict.fromkeys(stored, Stage.NONE)
    ever_in_production = set()
    last_moved_at = None
    for move in StageTransition.objects.filter(registered_model=model).order_by("pk"):
        where = replayed[move.model_version_id]
        assert move.from_stage == where, (
            f"Transition #{move.pk} moves version {move.model_version_id} from {move.from_stage}, but its previous "
            f"move left it in {where}."
        )
        replayed[move.model_version_id] = move.to_stage
        if move.to_stage == Stage.PRODUCTION:
            ever_in_production.add(move.model_version_id)
        assert list(replayed.values()).count(Stage.PRODUCTION) <= 1, f"Two in production after transition #{move.pk}"
        # "What was in production at time T" reads the history by time: time must agree with commit order.
        assert last_moved_at is None or move.changed_at >= last_moved_at, f"Transition #{move.pk} goes back in time"
        last_moved_at = move.changed_at
    assert replayed == stored

    production = ModelVersion.objects.get(pk=in_production[0])
    assert {stored[pk] for pk in ever_in_production - {production.pk}} <= {Stage.ARCHIVED}
    assert model_stages_at(model, timezone.now())["production"] == production.number
    return production


@pytest.mark.parametrize(("approvals_required", "requests"), [(1, THREADS), (2, THREADS // 2)])
def test_approvals_of_rival_requests_leave_one_production_version(approvals_required, requests):
    """Eight reviewers approve rival requests at once (each alone, or in pairs where two approvals are needed):
    every request is applied in turn under the model's lock, and the last one applied holds production."""
    for _ in range(ROUNDS):
        model, _ = model_with_policy(approvals_required)
        reviewers = reviewers_of(model.project, THREADS)
        first, *contenders = versions_of(model, 1 + requests)
        promoted(first, reviewers[:approvals_required])
        rivals = requests_for(contenders)

        answers = race([approve(reviewer, rivals[i // approvals_required]) for i, reviewer in enumerate(reviewers)])

        assert statuses(answers) == [200] * THREADS
        production = assert_one_production(model)
        for rival in rivals:
            rival.refresh_from_db()
            assert rival.state == PromotionRequest.State.APPROVED
            assert rival.decisions.count() == approvals_required
        promotions = StageTransition.objects.filter(
            model_version__in=[rival.model_version_id for rival in rivals], cause=StageTransition.Cause.PROMOTION
        )
        assert promotions.count() == requests
        assert promotions.latest("pk").model_version_id == production.pk
        first.refresh_from_db()
        assert first.stage == Stage.ARCHIVED


def test_reviewers_approving_one_request_at_once_count_once_each_and_move_it_once():
    """Six reviewers approve one request (two needed) at the same instant, two of them twice (a double click):
    the first two approvals apply it, everyone after is told it is closed or that they decided already."""
    for _ in range(ROUNDS):
        model, _ = model_with_policy(2)
        reviewers = reviewers_of(model.project, 6)
        first, contender = versions_of(model, 2)
        promoted(first, reviewers[:2])
        request = PromotionRequestFactory(model_version=contender)

        answers = race([approve(reviewer, request) for reviewer in [*reviewers, *reviewers[:2]]])

        assert statuses(answers) == [200, 200] + [409] * (THREADS - 2)
        assert {answer.code for answer in answers if answer.status == 409} <= {"request_approved", "already_decided"}
        decisions = PromotionDecision.objects.filter(request=request)
        assert decisions.count() == 2
        assert len({decision.reviewer_id for decision in decisions}) == 2
        assert {decision.decision for decision in decisions} == {PromotionDecision.Decision.APPROVE}
        request.refresh_from_db()
        assert request.state == PromotionRequest.State.APPROVED
        assert request.model_version_id == assert_one_production(model).pk
        moves = StageTransition.objects.filter(promotion_request=request)
        assert sorted(moves.values_list("model_version_id", "cause")) == sorted(
            [(request.model_version_id, StageTransition.Cause.PROMOTION), (first.pk, StageTransition.Cause.REPLACED)]
        )


def test_concurrent_requests_for_one_version_and_stage_open_one():
    """Eight contributors ask at once, half for production and half for staging, for the same version: each stage
    gets one request (201) and everyone else is pointed at it (409)."""
    for _ in range(ROUNDS):
        version = ModelVersionFactory()
        project = version.registered_model.project
        body = {"model_version": version.pk, "justification": "Beats the current model on last month's holdout."}

        answers = race(
            [
                post(
                    f"request #{i} for {stage}",
                    grant(Role.CONTRIBUTOR, on=project).user,
                    "/api/v1/promotions/",
                    {**body, "target_stage": stage},
                )
                for i, stage in enumerate([Stage.PRODUCTION, Stage.STAGING] * (THREADS // 2))
            ]
        )

        for stage in (Stage.PRODUCTION, Stage.STAGING):
            answered = [answer for answer in answers if answer.who.endswith(stage)]
            assert statuses(answered) == [201] + [409] * (THREADS // 2 - 1)
            assert {answer.body["field"] for answer in answered if answer.status == 409} == {"target_stage"}
            open_requests = PromotionRequest.objects.filter(
                model_version=version, target_stage=stage, state=PromotionRequest.State.OPEN
            )
            assert list(open_requests.values_list("pk", flat=True)) == [
                answer.body["id"] for answer in answered if answer.status == 201
            ]


def test_rollbacks_racing_approvals_leave_one_production_version():
    """Two maintainers break glass while six reviewers approve rival requests: whatever order the model's lock
    gives them, each approval promotes its version, each rollback restores an earlier production version or says
    there is none left to restore, and one version ends in production."""
    for _ in range(ROUNDS):
        model, maintainer = model_with_policy(1)
        reviewers = reviewers_of(model.project, THREADS - 2)
        earlier, current, *contenders = versions_of(model, 2 + len(reviewers))
        promoted(earlier, reviewers[:1])
        promoted(current, reviewers[:1])
        rivals = requests_for(contenders)
        rollbacks = [
            post(
                f"{person.username} rolls back",
                person,
                f"/api/v1/models/{model.pk}/rollback/",
                {"justification": "Error rate doubled."},
            )
            for person in (maintainer, grant(Role.MAINTAINER, on=model.project).user)
        ]

        answers = race([*rollbacks, *map(approve, reviewers, rivals)])

        approvals = [answer for answer in answers if "approves" in answer.who]
        assert statuses(approvals) == [200] * len(rivals)
        # The first rollback to take the lock always finds the version the one in production replaced. A later one
        # may find only versions a rollback took out, which are never restored: a clear 409 then.
        restored = [answer for answer in answers if "rolls back" in answer.who]
        assert statuses(restored)[0] == 201
        assert {(answer.status, answer.code) for answer in restored} <= {(201, None), (409, "conflict")}
        assert_one_production(model)
        made = statuses(restored).count(201)
        assert (
            PromotionRequest.objects.filter(registered_model=model, kind=PromotionRequest.Kind.ROLLBACK_REVIEW).count()
            == made
        )
        rollback_moves = StageTransition.objects.filter(registered_model=model, cause=StageTransition.Cause.ROLLBACK)
        # Each rollback archives the version it found in production and restores another.
        assert rollback_moves.count() == 2 * made
        assert not rollback_moves.filter(break_glass=False).exists()
        for rival in rivals:
            rival.refresh_from_db()
            assert rival.state == PromotionRequest.State.APPROVED
