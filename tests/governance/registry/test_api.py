"""The model registry and promotions over the API (governance/registry/api/views.py): a pipeline registers and asks, two
reviewers decide and the version moves; the history answers what served when; reviewers see what awaits them and
what each gate and approval weighs; refusals say what is wrong; the break-glass rollback; restricted artifacts stay
hidden; and every list costs the same queries for one row as for ten.

(Over 600 lines on purpose: the tests mirror the code, one file for the registry's API, and every section arranges
with the helpers below. The promotion rules themselves are tested by topic in test_promotions_*.py.)"""

import json
from datetime import datetime

import pytest
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.access.services import role_revoke
from artifacts.models import Project
from artifacts.services.integrity import blob_verify
from core.models import AuditEntry
from governance.registry.models import ModelVersion, PromotionRequest, RegisteredModel
from governance.registry.services.promotions import promotion_approve, promotion_withdraw
from governance.registry.services.registry import model_alias_set
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    PublisherFactory,
    RunFactory,
    UserFactory,
    grant,
)
from tests.governance.factories import (
    ModelVersionFactory,
    PromotionRequestFactory,
    RegisteredModelFactory,
    artifact_version_with_lineage,
)
from tests.pages import queries_for

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
VERSIONS = "/api/v1/model-versions/"
PROMOTIONS = "/api/v1/promotions/"
AWAITING = "/api/v1/promotions/awaiting-me/"
POLICIES = "/api/v1/promotion-policies/"
CARD = "# Churn classifier\n\nIntended use: ranking accounts for retention calls."
JUSTIFICATION = "Beats the current model on last month's holdout."


def model_url(model: RegisteredModel | int, action: str = "") -> str:
    pk = model if isinstance(model, int) else model.pk
    return f"{MODELS}{pk}/{action + '/' if action else ''}"


def request_url(request: PromotionRequest | int, action: str = "") -> str:
    pk = request if isinstance(request, int) else request.pk
    return f"{PROMOTIONS}{pk}/{action + '/' if action else ''}"


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def role(name: str, on, user=None):
    """A user (new unless given) holding role `name` on a project or an artifact."""
    return grant(name, on=on, user=user).user


def stages_at(client, model: RegisteredModel, at: datetime) -> dict:
    response = client.get(model_url(model, "stages"), {"at": at.isoformat()})
    assert response.status_code == 200, response.content
    return response.json()


def gates(body: dict, key: str = "gates_now") -> dict[str, tuple[bool, str]]:
    return {gate["gate"]: (gate["passed"], gate["detail"]) for gate in body[key]}


def in_production(version: ModelVersion) -> None:
    """Put `version` into production through a request and the two approvals the default policy asks (superusers
    ask and decide, so a version of a restricted artifact goes too)."""
    request = PromotionRequestFactory(model_version=version, requested_by=UserFactory(is_superuser=True))
    for _ in range(2):
        promotion_approve(request=request, reviewer=UserFactory(is_superuser=True))


@pytest.fixture
def project() -> Project:
    return ProjectFactory()


# A pipeline and its reviewers ---------------------------------------------------------------------------------------


def test_a_pipeline_registers_a_version_and_two_reviewers_put_it_into_production(api_as, project):
    pipeline = api_as(role(Role.CONTRIBUTOR, project))
    first_reviewer, second_reviewer = (api_as(role(Role.REVIEWER, project)) for _ in range(2))

    created = pipeline.post(
        MODELS, {"project": project.slug, "name": "churn-classifier", "model_card": CARD}, format="json"
    )
    assert created.status_code == 201, created.content
    model = created.json()
    assert (model["project"], model["name"], model["production_version"]) == (project.slug, "churn-classifier", None)

    artifact_version = artifact_version_with_lineage(project)
    registered = pipeline.post(VERSIONS, {"model": model["id"], "artifact_version": artifact_version.pk}, format="json")
    assert registered.status_code == 201, registered.content
    version = registered.json()
    assert (version["number"], version["stage"]) == (1, "none")
    assert version["digest"] == artifact_version.blob.prefixed_digest

    asked = pipeline.post(
        PROMOTIONS,
        {"model_version": version["id"], "target_stage": "production", "justification": JUSTIFICATION},
        format="json",
    )
    assert asked.status_code == 201, asked.content
    request = asked.json()
    assert (request["state"], request["approvals_required"], request["approvals_counted"]) == ("open", 2, 0)
    assert all(gate["passed"] for gate in request["gates_at_request"]), request["gates_at_request"]
    assert request["blocked_by"] == "0 of 2 required approvals count."

    once = first_reviewer.post(request_url(request["id"], "approve"), {"comment": "Holdout looks clean."})
    assert once.status_code == 200, once.content
    assert (once.json()["state"], once.json()["approvals_counted"]) == ("open", 1)
    assert once.json()["blocked_by"] == "1 of 2 required approvals count."
    assert pipeline.get(f"{VERSIONS}{version['id']}/").json()["stage"] == "none"

    before = timezone.now()
    twice = second_reviewer.post(request_url(request["id"], "approve"), {}, format="json")
    after = timezone.now()

    assert twice.status_code == 200, twice.content
    assert (twice.json()["state"], twice.json()["approvals_counted"], twice.json()["blocked_by"]) == ("approved", 2, "")
    assert pipeline.get(f"{VERSIONS}{version['id']}/").json()["stage"] == "production"
    assert pipeline.get(model_url(model["id"])).json()["production_version"] == 1
    history = results(pipeline.get(model_url(model["id"], "stage-history")))
    assert [(move["version"], move["from_stage"], move["to_stage"], move["cause"]) for move in history] == [
        (1, "none", "production", "promotion")
    ]
    assert history[0]["promotion_request"] == request["id"]
    assert history[0]["changed_by"] == second_reviewer.user.username
    assert history[0]["break_glass"] is False
    registered_model = RegisteredModel.objects.get(pk=model["id"])
    assert stages_at(pipeline, registered_model, before)["production"] is None
    assert stages_at(pipeline, registered_model, after)["production"] == 1


def test_stages_at_answers_what_served_before_and_after_a_replacement(api, project):
    model = RegisteredModelFactory(project=project)
    first = ModelVersionFactory(registered_model=model)
    in_production(first)
    while_first_served = timezone.now()
    second = ModelVersionFactory(registered_model=model)
    in_production(second)

    then, now = stages_at(api, model, while_first_served), stages_at(api, model, timezone.now())

    assert (then["production"], then["archived"]) == (1, [])
    assert (now["production"], now["archived"]) == (2, [1])
    assert [move["version"] for move in results(api.get(model_url(model, "stage-history"), {"version": 1}))] == [1, 1]


# What awaits a reviewer, and what they weigh -----------------------------------------------------------------------


def test_awaiting_me_lists_only_the_open_requests_the_caller_may_decide(api_as, project):
    reviewer = role(Role.REVIEWER, project)
    model = RegisteredModelFactory(project=project)
    waiting = PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=model))
    # The reviewer also contributes to one artifact, and asked for its promotion: their own is not theirs to decide.
    own_version = ModelVersionFactory(registered_model=model)
    role(Role.CONTRIBUTOR, own_version.artifact_version.artifact, user=reviewer)
    PromotionRequestFactory(model_version=own_version, requested_by=reviewer)
    decided = PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=model))
    promotion_approve(request=decided, reviewer=reviewer)
    withdrawn = PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=model))
    promotion_withdraw(request=withdrawn, withdrawn_by=withdrawn.requested_by)
    # Another project, where the reviewer only reads: no REVIEW there.
    elsewhere = RegisteredModelFactory()
    role(Role.VIEWER, elsewhere.project, user=reviewer)
    PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=elsewhere))

    awaiting = results(api_as(reviewer).get(AWAITING))

    assert [request["id"] for request in awaiting] == [waiting.pk]
    assert results(api_as(role(Role.VIEWER, project)).get(AWAITING)) == []
    assert results(api_as(role(Role.CONTRIBUTOR, project)).get(AWAITING)) == []


def test_a_reviewer_of_one_artifact_is_awaited_on_its_requests_alone(api_as, project):
    model = RegisteredModelFactory(project=project)
    theirs = PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=model))
    PromotionRequestFactory(model_version=ModelVersionFactory(registered_model=model))
    reviewer = api_as(role(Role.REVIEWER, theirs.model_version.artifact_version.artifact))

    assert [request["id"] for request in results(reviewer.get(AWAITING))] == [theirs.pk]
    assert reviewer.post(request_url(theirs, "approve")).status_code == 200


def test_the_detail_shows_each_gate_with_its_reason_and_the_approvals_counted_against_required(api, project):
    model = RegisteredModelFactory(project=project, model_card="")
    version = ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(project, verified=False)
    )
    request = PromotionRequestFactory(model_version=version)
    counted = role(Role.REVIEWER, project)
    lapsed = grant(Role.REVIEWER, on=project)
    for reviewer in (counted, lapsed.user):
        promotion_approve(request=request, reviewer=reviewer, comment="Fine by me.")
    role_revoke(grant=lapsed, revoked_by=None)

    body = api.get(request_url(request)).json()

    now = gates(body)
    assert now["integrity"][0] is False
    assert "is not verified yet" in now["integrity"][1]
    assert now["lineage"][0] is True
    assert now["model_card"] == (False, f"Model '{model.name}' has no model card: write one.")
    assert gates(body, "gates_at_request") == now
    assert (body["approvals_required"], body["approvals_counted"]) == (2, 1)
    assert [(a["reviewer"], a["counts"], a["reason"]) for a in body["approvals"]] == [
        (counted.username, True, ""),
        (lapsed.user.username, False, "no longer holds the reviewer role on this artifact or its project"),
    ]
    assert body["blocked_by"] == "1 of 2 required approvals count."
    assert [decision["decision"] for decision in body["decisions"]] == ["approve", "approve"]


def test_an_approved_request_whose_gates_fail_says_so(api, project):
    model = RegisteredModelFactory(project=project)
    version = ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(project, verified=False)
    )
    request = PromotionRequestFactory(model_version=version)
    for _ in range(2):
        promotion_approve(request=request, reviewer=role(Role.REVIEWER, project))

    body = api.get(request_url(request)).json()
    reapplied = api.post(request_url(request, "apply"))

    assert (body["state"], body["approvals_counted"]) == ("open", 2)
    assert body["blocked_by"].startswith("Gates fail:")
    assert reapplied.status_code == 409
    assert reapplied.json()["code"] == "not_ready"
    assert reapplied.json()["detail"].startswith("Not applied: Approved, but gates fail:")


# Refusals that say what is wrong ------------------------------------------------------------------------------------


def test_an_unknown_field_is_refused_by_name(api, project):
    response = api.post(MODELS, {"project": project.slug, "name": "churn", "stage": "production"}, format="json")

    assert response.status_code == 400
    accepted = "Unknown field. Fields accepted here: description, metric_directions, model_card"
    assert response.json()["stage"][0].startswith(accepted)
    assert not RegisteredModel.objects.exists()


def test_a_model_declares_which_way_its_metrics_are_better_and_the_change_is_logged(api, project):
    response = api.post(
        MODELS, {"project": project.slug, "name": "churn", "metric_directions": {"auc": "higher"}}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["metric_directions"] == {"auc": "higher"}

    model = RegisteredModel.objects.get(name="churn")
    changed = api.patch(f"{MODELS}{model.pk}/", {"metric_directions": {"latency_ms": "lower"}}, format="json")

    assert changed.status_code == 200, changed.json()
    assert changed.json()["metric_directions"] == {"latency_ms": "lower"}
    entry = AuditEntry.objects.filter(action="registered_model.updated").latest("seq")
    assert json.loads(entry.changes)["metric_directions"] == [{"auc": "higher"}, {"latency_ms": "lower"}]


@pytest.mark.parametrize(
    ("directions", "fault"),
    [
        ({"auc": "up"}, '"up" is not a valid choice.'),
        (["auc"], 'Expected a dictionary of items but got type "list".'),
    ],
)
def test_a_direction_that_is_not_higher_or_lower_is_refused(api, project, directions, fault):
    model = RegisteredModelFactory(project=project)

    response = api.patch(f"{MODELS}{model.pk}/", {"metric_directions": directions}, format="json")

    assert response.status_code == 400
    assert fault in str(response.json()["metric_directions"])
    model.refresh_from_db()
    assert model.metric_directions == {}


def test_a_server_assigned_field_is_refused(api, project):
    model = RegisteredModelFactory(project=project)
    response = api.post(
        VERSIONS,
        {"model": model.pk, "artifact_version": artifact_version_with_lineage(project).pk, "number": 7},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {"number": ["Assigned by the server; it cannot be given or changed."]}


def test_a_model_name_is_unique_in_its_project(api, project):
    RegisteredModelFactory(project=project, name="churn")

    response = api.post(MODELS, {"project": project.slug, "name": "churn"}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Project '{project.slug}' already has a model named 'churn'.",
        "code": "conflict",
        "field": "name",
    }


@pytest.mark.parametrize("stage", ["prod", "none", ""])
def test_a_promotion_names_a_stage_a_version_can_be_moved_into(api, stage):
    version = ModelVersionFactory()

    response = api.post(
        PROMOTIONS, {"model_version": version.pk, "target_stage": stage, "justification": JUSTIFICATION}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["target_stage"]
    assert f'"{stage}" is not a valid choice.' in response.json()["target_stage"][0]
    assert not PromotionRequest.objects.exists()


def test_a_second_open_request_for_the_same_stage_names_the_first(api):
    first = PromotionRequestFactory()

    response = api.post(
        PROMOTIONS,
        {"model_version": first.model_version.pk, "target_stage": "production", "justification": JUSTIFICATION},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["detail"].startswith(f"Request #{first.pk} to move v1 to production is open already")


@pytest.mark.parametrize("at", ["yesterday", "2026-13-01T00:00:00Z", "1700000000"])
def test_stages_at_a_moment_that_is_not_one_is_refused(api, at):
    model = RegisteredModelFactory()

    response = api.get(model_url(model, "stages"), {"at": at})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "`at` is a date and time like 2026-11-01T12:00:00Z.",
        "code": "invalid",
        "field": "at",
    }


@pytest.mark.parametrize("version", ["v1", "-1", "1.0", pytest.param("²", id="superscript-2")])
def test_stage_history_of_a_version_that_is_not_a_number_is_refused(api, version):
    model = RegisteredModelFactory()

    response = api.get(model_url(model, "stage-history"), {"version": version})

    assert response.status_code == 400
    assert response.json() == {"detail": "`version` is a version number.", "code": "invalid", "field": "version"}


def test_a_requester_who_reviews_cannot_approve_their_own_request(api_as, project):
    requester = role(Role.CONTRIBUTOR, project)
    role(Role.REVIEWER, project, user=requester)
    request = PromotionRequestFactory(requested_by=requester, model_version__registered_model__project=project)

    response = api_as(requester).post(request_url(request, "approve"), {"comment": "LGTM"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "separation_of_duties"
    assert "You requested this promotion, so you cannot approve it" in response.json()["detail"]
    assert not request.decisions.exists()


def test_the_versions_creator_cannot_approve_its_promotion_to_production(api_as, project):
    creator = role(Role.CONTRIBUTOR, project)
    role(Role.REVIEWER, project, user=creator)
    model = RegisteredModelFactory(project=project)
    version = ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(project, created_by=creator)
    )
    request = PromotionRequestFactory(model_version=version)

    response = api_as(creator).post(request_url(request, "approve"))

    assert response.status_code == 403
    assert response.json()["code"] == "separation_of_duties"


@pytest.mark.parametrize("action", ["approve", "reject", "withdraw"])
def test_a_closed_request_answers_409(api, action):
    request = PromotionRequestFactory()
    promotion_withdraw(request=request, withdrawn_by=request.requested_by)

    response = api.post(request_url(request, action), {"comment": "Too late."}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "request_withdrawn"
    assert response.json()["detail"].startswith(f"Request #{request.pk} is withdrawn: Withdrawn by ")


def test_one_persons_decision_counts_once(api):
    request = PromotionRequestFactory()
    assert api.post(request_url(request, "approve")).status_code == 200

    again = api.post(request_url(request, "approve"))

    assert again.status_code == 409
    assert again.json()["code"] == "already_decided"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "This field is required."),
        ({"comment": ""}, "This field may not be blank."),
        ({"comment": "   "}, "This field may not be blank."),
    ],
)
def test_a_rejection_says_why(api, body, message):
    request = PromotionRequestFactory()

    response = api.post(request_url(request, "reject"), body, format="json")

    assert response.status_code == 400
    assert response.json() == {"comment": [message]}
    request.refresh_from_db()
    assert request.state == "open"
    assert not request.decisions.exists()


@pytest.mark.parametrize(
    ("thresholds", "fault"),
    [
        ({"metric": "accuracy", "operator": ">=", "value": 0.9}, "Metric thresholds are a list like"),
        ([{"metric": "accuracy", "operator": "=>", "value": 0.9}], "Threshold 1: the operator is one of"),
        ([{"metric": "accuracy", "operator": {}, "value": 0.9}], "Threshold 1: the operator is one of"),
        ([{"metric": "accuracy", "operator": [">="], "value": 0.9}], "Threshold 1: the operator is one of"),
        (
            [{"metric": "accuracy", "operator": ">=", "value": "high"}],
            "Threshold 1: the value must be a finite number.",
        ),
        ([{"metric": "accuracy", "operator": ">="}], 'Threshold 1 must have exactly "metric", "operator" and "value".'),
        (
            [{"metric": "auc", "operator": ">", "value": 0.8}, {"metric": "auc", "operator": ">", "value": 0.9}],
            "Threshold 2 repeats 'auc >'.",
        ),
    ],
)
def test_invalid_policy_thresholds_are_refused_naming_the_fault(api, project, thresholds, fault):
    response = api.post(
        POLICIES, {"project": project.slug, "stage": "production", "metric_thresholds": thresholds}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["field"] == "metric_thresholds"
    assert response.json()["detail"].startswith(fault)
    assert not project.promotion_policies.exists()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"approvals_required": 0}, "approvals_required"),
        ({"request_ttl_hours": 24 * 91}, "request_ttl_hours"),
        ({"previous_production_to": "none"}, "previous_production_to"),
    ],
)
def test_policy_values_out_of_range_are_refused_by_field(api, project, values, field):
    response = api.post(POLICIES, {"project": project.slug, "stage": "production", **values}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_minimum_time_in_production_is_for_the_production_policy_only(api, project):
    response = api.post(
        POLICIES, {"project": project.slug, "stage": "staging", "min_hours_in_production": 24}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["field"] == "min_hours_in_production"


def test_a_saved_policy_is_the_current_one_and_judges_new_requests(api, project):
    saved = api.post(
        POLICIES,
        {"project": project.slug, "stage": "production", "approvals_required": 3, "note": "Three for prod."},
        format="json",
    )
    current = {policy["stage"]: policy for policy in api.get(f"{POLICIES}current/", {"project": project.slug}).json()}
    request = PromotionRequestFactory(model_version__registered_model__project=project)

    assert saved.status_code == 201, saved.content
    assert (saved.json()["version"], saved.json()["is_default"]) == (1, False)
    assert (current["production"]["version"], current["production"]["approvals_required"]) == (1, 3)
    assert (current["staging"]["version"], current["staging"]["is_default"]) == (0, True)
    assert api.get(request_url(request)).json()["approvals_required"] == 3


@pytest.mark.parametrize(
    ("query", "says"),
    [({}, "Name a project: `?project=<slug>`."), ({"project": "nope"}, "No project 'nope'.")],
)
def test_current_policies_need_a_project_and_name_the_one_not_found(api, query, says):
    response = api.get(f"{POLICIES}current/", query)

    assert response.status_code == 400
    assert (response.json()["field"], response.json()["detail"]) == ("project", says)


def test_current_policies_of_a_project_the_caller_cannot_see_answer_as_for_none(api_as, project):
    response = api_as(UserFactory()).get(f"{POLICIES}current/", {"project": project.slug})

    assert response.status_code == 400
    assert response.json()["detail"] == f"No project '{project.slug}'."


def test_an_alias_names_a_version_that_exists(api, project):
    model = RegisteredModelFactory(project=project)
    ModelVersionFactory(registered_model=model)

    missing = api.post(model_url(model, "aliases"), {"name": "champion", "version": 7}, format="json")
    set_ = api.post(model_url(model, "aliases"), {"name": "champion", "version": 1}, format="json")

    assert missing.status_code == 400
    assert missing.json() == {
        "detail": f"Model '{model.name}' has no version 7 you can see.",
        "code": "invalid",
        "field": "version",
    }
    assert set_.status_code == 200, set_.content
    assert [(alias["name"], alias["version"]) for alias in set_.json()["aliases"]] == [("champion", 1)]


def test_an_alias_names_a_version_of_its_own_model(api, project):
    model, other = RegisteredModelFactory(project=project), RegisteredModelFactory(project=project)
    ModelVersionFactory(registered_model=other)

    response = api.post(model_url(model, "aliases"), {"name": "champion", "version": 1}, format="json")

    assert response.status_code == 400
    assert response.json()["field"] == "version"


def test_an_alias_moves_and_is_removed(api, project):
    model = RegisteredModelFactory(project=project)
    first, second = ModelVersionFactory(registered_model=model), ModelVersionFactory(registered_model=model)
    model_alias_set(registered_model=model, name="champion", model_version=first, set_by=api.user)

    moved = api.post(model_url(model, "aliases"), {"name": "champion", "version": second.number}, format="json")
    removed = api.delete(model_url(model, "aliases/champion"))
    gone = api.delete(model_url(model, "aliases/champion"))

    assert moved.json()["aliases"][0]["version"] == 2
    assert removed.status_code == 204
    assert not model.aliases.exists()
    assert gone.status_code == 404
    assert gone.json()["detail"] == f"Model '{model.name}' has no alias 'champion'."


@pytest.mark.parametrize("method", ["put", "delete"])
def test_models_are_never_deleted_or_replaced(api, method):
    model = RegisteredModelFactory()

    response = getattr(api, method)(model_url(model), {}, format="json")

    assert response.status_code == 405
    assert "models are never deleted" in response.json()["detail"]


# Break glass --------------------------------------------------------------------------------------------------------


@pytest.fixture
def replaced_in_production(project) -> RegisteredModel:
    """Version 1 served in production until version 2 replaced it."""
    model = RegisteredModelFactory(project=project)
    for _ in range(2):
        in_production(ModelVersionFactory(registered_model=model))
    return model


def test_a_maintainer_rolls_back_at_once_and_reviewers_review_it_after(api_as, project, replaced_in_production):
    model = replaced_in_production
    maintainer = api_as(role(Role.MAINTAINER, project))
    reviewer = api_as(role(Role.REVIEWER, project))

    response = maintainer.post(model_url(model, "rollback"), {"justification": "v2 mislabels new accounts."})

    assert response.status_code == 201, response.content
    review = response.json()
    assert (review["kind"], review["state"], review["version"], review["target_stage"]) == (
        "rollback_review",
        "open",
        1,
        "production",
    )
    assert review["requested_by"] == maintainer.user.username
    assert maintainer.get(model_url(model)).json()["production_version"] == 1
    latest = results(maintainer.get(model_url(model, "stage-history")))[:2]
    assert {(move["version"], move["to_stage"], move["cause"], move["break_glass"]) for move in latest} == {
        (1, "production", "rollback", True),
        (2, "archived", "rollback", True),
    }
    assert [request["id"] for request in results(reviewer.get(AWAITING))] == [review["id"]]


def test_a_reviewer_cannot_roll_back(api_as, project, replaced_in_production):
    response = api_as(role(Role.REVIEWER, project)).post(
        model_url(replaced_in_production, "rollback"), {"justification": "v2 mislabels new accounts."}
    )

    assert response.status_code == 403
    assert "needs the maintainer role" in response.json()["detail"]
    assert not PromotionRequest.objects.filter(kind="rollback_review").exists()
    assert replaced_in_production.versions.get(stage="production").number == 2


def test_a_rollback_says_why_and_needs_an_earlier_production_version(api, project):
    model = RegisteredModelFactory(project=project)
    in_production(ModelVersionFactory(registered_model=model))

    unexplained = api.post(model_url(model, "rollback"), {"justification": "  "}, format="json")
    nothing_earlier = api.post(model_url(model, "rollback"), {"justification": "Bad."}, format="json")

    assert unexplained.status_code == 400
    assert nothing_earlier.status_code == 409
    assert nothing_earlier.json()["detail"] == f"'{model.name}' has no earlier production version to restore."


# Restricted artifacts -----------------------------------------------------------------------------------------------


def restricted_version(model: RegisteredModel) -> ModelVersion:
    """A version of `model` on a restricted artifact of its project, with complete lineage and verified bytes."""
    project = model.project
    inputs = [DatasetVersionFactory(dataset=DatasetFactory(project=project))]
    artifact_version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project, restricted=True),
        run=RunFactory(project=project, input_dataset_versions=inputs),
    )
    blob_verify(blob=artifact_version.blob)
    return ModelVersionFactory(registered_model=model, artifact_version=artifact_version)


def test_a_project_viewer_does_not_see_versions_or_requests_of_a_restricted_artifact(api_as, project):
    model = RegisteredModelFactory(project=project)
    secret = restricted_version(model)
    request = PromotionRequestFactory(model_version=secret, requested_by=UserFactory(is_superuser=True))
    viewer = api_as(role(Role.VIEWER, project))
    reviewer = api_as(role(Role.REVIEWER, project))

    assert viewer.get(model_url(model)).status_code == 200
    assert viewer.get(f"{VERSIONS}{secret.pk}/").status_code == 404
    assert viewer.get(request_url(request)).status_code == 404
    assert results(viewer.get(VERSIONS)) == []
    assert results(viewer.get(PROMOTIONS)) == []
    # A project's reviewer does not reach it either: deciding needs a grant on the artifact itself.
    assert reviewer.post(request_url(request, "approve")).status_code == 404
    assert results(reviewer.get(AWAITING)) == []


def test_a_contributor_cannot_alias_a_restricted_version_they_do_not_see(api_as, project):
    model = RegisteredModelFactory(project=project)
    secret = restricted_version(model)

    response = api_as(role(Role.CONTRIBUTOR, project)).post(
        model_url(model, "aliases"), {"name": "champion", "version": secret.number}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["detail"] == f"Model '{model.name}' has no version {secret.number} you can see."
    assert not model.aliases.exists()


def test_the_stages_of_a_model_do_not_name_a_restricted_version_to_those_who_cannot_see_it(api_as, project):
    """stage-history leaves out the moves of versions the caller cannot see; the model's production version, its
    aliases and `stages?at=` must not name them either."""
    model = RegisteredModelFactory(project=project)
    secret = restricted_version(model)
    in_production(secret)
    model_alias_set(
        registered_model=model, name="champion", model_version=secret, set_by=UserFactory(is_superuser=True)
    )
    viewer = api_as(role(Role.VIEWER, project))

    shown = viewer.get(model_url(model)).json()
    named = {
        "stage-history": [move["version"] for move in results(viewer.get(model_url(model, "stage-history")))],
        "stages": viewer.get(model_url(model, "stages")).json()["production"],
        "production_version": shown["production_version"],
        "aliases": [alias["version"] for alias in shown["aliases"]],
    }

    assert named == {"stage-history": [], "stages": None, "production_version": None, "aliases": []}


# Cost ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [MODELS, VERSIONS, PROMOTIONS, AWAITING])
def test_the_lists_cost_the_same_queries_for_1_row_as_for_10(api_as, project, url, django_assert_max_num_queries):
    reviewer = role(Role.REVIEWER, project)
    client = api_as(reviewer)

    def add_row() -> None:
        """A model with an owner, a version with an alias, and an open request for it, each a row of one list."""
        model = RegisteredModelFactory(project=project, owners=[UserFactory()])
        version = ModelVersionFactory(registered_model=model)
        model_alias_set(registered_model=model, name="candidate", model_version=version, set_by=PublisherFactory())
        request = PromotionRequestFactory(model_version=version)
        promotion_approve(request=request, reviewer=role(Role.REVIEWER, project))

    add_row()
    one = queries_for(client, url)
    for _ in range(9):
        add_row()

    with django_assert_max_num_queries(one):
        assert len(results(client.get(url))) == 10


# What a review of the feature found ----------------------------------------------------------------------------------


def test_a_rollback_that_would_move_a_restricted_version_the_maintainer_cannot_see_is_refused_without_naming_it(
    api_as, project
):
    model = RegisteredModelFactory(project=project)
    secret = restricted_version(model)
    reviewers = [grant(Role.REVIEWER, on=secret.artifact_version.artifact).user for _ in range(2)]
    for version in (secret, ModelVersionFactory(registered_model=model)):
        request = PromotionRequestFactory(model_version=version, requested_by=UserFactory(is_superuser=True))
        for reviewer in reviewers if version == secret else [grant(Role.REVIEWER, on=project).user for _ in "ab"]:
            promotion_approve(request=request, reviewer=reviewer)
    maintainer = grant(Role.MAINTAINER, on=project).user

    refused = api_as(maintainer).post(model_url(model, "rollback"), {"justification": "Broken."}, format="json")

    assert refused.status_code == 409
    assert secret.artifact_version.blob.digest not in refused.content.decode()
    assert "restricted artifact" in refused.json()["detail"]
    secret.refresh_from_db()
    assert secret.stage == "archived"


def test_an_alias_on_a_restricted_version_cannot_be_moved_or_removed_by_who_cannot_see_it(api_as, project):
    model = RegisteredModelFactory(project=project)
    secret, public = restricted_version(model), ModelVersionFactory(registered_model=model)
    model_alias_set(registered_model=model, name="champion", model_version=secret, set_by=PublisherFactory())
    contributor = api_as(grant(Role.CONTRIBUTOR, on=project).user)

    moved = contributor.post(model_url(model, "aliases"), {"name": "champion", "version": public.number}, format="json")
    removed = contributor.delete(model_url(model, "aliases/champion"))

    assert moved.status_code == 409
    assert (
        moved.json()["detail"] == f"Model '{model.name}' has an alias 'champion' you may not move; choose another name."
    )
    assert removed.status_code == 404
    assert model.aliases.get(name="champion").model_version == secret


def test_numbers_too_large_for_anything_are_400s_not_500s(api, project):
    huge = int("9" * 400)
    policy = api.post(
        "/api/v1/promotion-policies/",
        {
            "project": project.slug,
            "stage": "production",
            "metric_thresholds": [{"metric": "auc", "operator": ">=", "value": huge}],
        },
        format="json",
    )
    model = RegisteredModelFactory(project=project)
    history = api.get(model_url(model, "stage-history"), {"version": "9" * 5000})

    assert policy.status_code == 400
    assert "finite number" in policy.json()["detail"]
    assert history.status_code == 400
