"""The model registry in the admin: models added and described, policies saved version after version, requests
withdrawn and re-checked and production rolled back (break glass), all through the registry and promotion services
as the logged-in user; requests decided in the portal, not here, each request's page linking there; versions,
requests and the stage history read-only; nothing deleted; each staff member seeing what their roles let them see,
on list pages whose cost does not grow with the rows.

(Just over 600 lines: the tests mirror the code, one file for the registry's admin package, and every section
arranges the same `Registry` below, its people and its models.)"""

import json
from collections.abc import Callable

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.urls import reverse

from artifacts.access.roles import Role
from artifacts.services import artifact_update
from core.models import AuditEntry
from governance.registry.models import (
    ModelVersion,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    StageTransition,
)
from governance.registry.services.promotions import promotion_approve
from governance.registry.services.registry import promotion_policy_set, registered_model_update
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.governance.factories import ModelVersionFactory, PromotionRequestFactory, RegisteredModelFactory
from tests.pages import listed, messages_of, queries_for

pytestmark = pytest.mark.django_db

MODELS = reverse("admin:registry_registeredmodel_changelist")
ADD_MODEL = reverse("admin:registry_registeredmodel_add")
VERSIONS = reverse("admin:registry_modelversion_changelist")
POLICIES = reverse("admin:registry_promotionpolicy_changelist")
ADD_POLICY = reverse("admin:registry_promotionpolicy_add")
REQUESTS = reverse("admin:registry_promotionrequest_changelist")
HISTORY = reverse("admin:registry_stagetransition_changelist")
REGISTRY_MODELS = (RegisteredModel, ModelVersion, PromotionPolicy, PromotionRequest, StageTransition)

# What a staff account working on the registry is given, e.g. through a "registry" group; the roles say the rest.
REGISTRY_PERMISSIONS = (
    "view_registeredmodel",
    "add_registeredmodel",
    "change_registeredmodel",
    "delete_registeredmodel",
    "view_modelversion",
    "view_promotionpolicy",
    "add_promotionpolicy",
    "view_promotionrequest",
    "change_promotionrequest",
    "view_stagetransition",
    "view_project",
)


def url_of(obj, view: str = "change") -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{view}", args=[obj.pk])


def act(client, changelist: str, action: str, objects, **confirmation: str):
    """Choose `action` for `objects` on the list; with `confirmation` (the text asked for), post the page that
    asks for it too, as the browser does."""
    pks = [obj.pk for obj in objects]
    chosen = client.post(changelist, {"action": action, "_selected_action": pks, "index": 0}, follow=True)
    if not confirmation:
        return chosen
    assert chosen.templates[0].name == "admin/registry/action_with_reason.html"
    data = {"action": action, "_selected_action": pks, "confirm": "yes", **confirmation}
    return client.post(changelist, data, follow=True)


class Registry:
    """A project's registry and the people around it: a staff maintainer, two staff reviewers and a staff
    contributor who requests promotions, and a model in another project none of them may see."""

    def __init__(self, staff: Callable[..., AbstractBaseUser]) -> None:
        """`staff` is the fixture of that name: it makes each person a staff member with REGISTRY_PERMISSIONS."""
        self.project = ProjectFactory(slug="churn")

        def member(role: str, username: str) -> AbstractBaseUser:
            person = grant(role, on=self.project, user=UserFactory(username=username)).user
            return staff(person, *REGISTRY_PERMISSIONS)

        self.maintainer = member(Role.MAINTAINER, "mia")
        self.reviewer = member(Role.REVIEWER, "rita")
        self.second_reviewer = member(Role.REVIEWER, "rob")
        self.requester = member(Role.CONTRIBUTOR, "cody")
        self.model = RegisteredModelFactory(project=self.project, name="classifier")
        self.other_model = RegisteredModelFactory(project=ProjectFactory(slug="other"), name="ranker")

    def version(self, model=None, **kwargs) -> ModelVersion:
        return ModelVersionFactory(registered_model=model or self.model, **kwargs)

    def request(self, version: ModelVersion | None = None, stage: str = "production") -> PromotionRequest:
        return PromotionRequestFactory(
            model_version=version or self.version(), target_stage=stage, requested_by=self.requester
        )

    def in_production(self, version: ModelVersion) -> PromotionRequest:
        """Promote `version` to production the ordinary way, through the services (in another project, by people
        of that project)."""
        if version.registered_model.project == self.project:
            request, reviewers = self.request(version), [self.reviewer, self.second_reviewer]
        else:
            request = PromotionRequestFactory(model_version=version)
            reviewers = [grant(Role.REVIEWER, on=version.registered_model.project).user for _ in range(2)]
        for reviewer in reviewers:
            request = promotion_approve(request=request, reviewer=reviewer)
        return request


@pytest.fixture
def registry(staff) -> Registry:
    return Registry(staff)


# Who sees what -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.REVIEWER, Role.MAINTAINER, Role.AUDITOR])
def test_staff_see_the_registry_of_their_projects_only(client, registry, role, staff, client_as):
    promoted = registry.in_production(registry.version())
    waiting = registry.request()
    policy, _ = promotion_policy_set(project=registry.project, stage="staging", changed_by=registry.maintainer)
    registry.in_production(registry.version(registry.other_model))
    promotion_policy_set(
        project=registry.other_model.project, stage="staging", changed_by=UserFactory(is_superuser=True)
    )
    client_as(staff(grant(role, on=registry.project).user, *REGISTRY_PERMISSIONS))

    assert listed(client.get(MODELS)) == [registry.model]
    assert listed(client.get(VERSIONS)) == [waiting.model_version, promoted.model_version]
    assert listed(client.get(REQUESTS)) == [waiting, promoted]
    assert listed(client.get(HISTORY)) == [StageTransition.objects.get(model_version=promoted.model_version)]
    assert listed(client.get(POLICIES)) == [policy]
    assert client.get(url_of(registry.other_model)).status_code == 302  # the admin's answer for what is out of sight
    other_version = registry.other_model.versions.get()
    assert client.get(url_of(other_version)).status_code == 302
    assert client.get(url_of(other_version.promotion_requests.get())).status_code == 302


def test_a_version_of_a_restricted_artifact_is_hidden_from_project_viewers(client, registry, staff, client_as):
    shown, hidden = registry.version(), registry.version()
    registry.in_production(hidden)
    artifact_update(artifact=hidden.artifact_version.artifact, restricted=True, changed_by=None)
    client_as(staff(grant(Role.VIEWER, on=registry.project).user, *REGISTRY_PERMISSIONS))

    page = client.get(url_of(registry.model))
    models = client.get(MODELS)

    assert listed(client.get(VERSIONS)) == [shown]
    assert [form.instance for form in page.context["inline_admin_formsets"][0].formset.forms] == [shown]
    assert client.get(url_of(hidden)).status_code == 302
    assert listed(client.get(REQUESTS)) == []
    assert listed(client.get(HISTORY)) == []
    assert 'class="field-production_version">-</td>' in models.content.decode()  # v2 is not named


def test_the_model_page_shows_its_versions_with_their_stage(admin_client, registry):
    first = registry.version()
    registry.in_production(first)
    registry.version()

    page = admin_client.get(url_of(registry.model))

    assert page.status_code == 200
    body = page.content.decode()
    formset = page.context["inline_admin_formsets"][0].formset
    assert [(form.instance.number, form.instance.stage) for form in formset.forms] == [(2, "none"), (1, "production")]
    assert 'name="versions-0-stage"' not in body  # shown, never an input
    assert listed(admin_client.get(MODELS)) == [registry.model, registry.other_model]


# Models ------------------------------------------------------------------------------------------------------------


def test_a_contributor_registers_a_model_through_the_service(client, registry, client_as):
    client_as(registry.requester)
    UserFactory(username="owen")

    form = client.get(ADD_MODEL).context["adminform"].form
    response = client.post(
        ADD_MODEL,
        {
            "project": registry.project.pk,
            "name": "forecaster",
            "description": "Weekly demand.",
            "model_card": "  # Forecaster",
            "owner_usernames": "owen, cody",
        },
    )

    assert list(form.fields["project"].queryset) == [registry.project]
    assert response.status_code == 302
    model = RegisteredModel.objects.get(name="forecaster")
    assert (model.created_by, model.model_card) == (registry.requester, "  # Forecaster")
    assert sorted(owner.username for owner in model.owners.all()) == ["cody", "owen"]
    entry = AuditEntry.objects.get(action="registered_model.created", object_label__endswith="forecaster")
    assert json.loads(entry.changes)["owners"] == ["cody", "owen"]


def test_a_model_name_taken_in_the_project_is_an_error_on_the_name(admin_client, registry):
    response = admin_client.post(ADD_MODEL, {"project": registry.project.pk, "name": "classifier"})

    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert RegisteredModel.objects.filter(project=registry.project).count() == 1


def test_describing_a_model_goes_through_the_service_and_is_audited(client, registry, client_as):
    client_as(registry.requester)

    response = client.post(
        url_of(registry.model),
        {
            "description": "Ranks accounts.",
            "model_card": registry.model.model_card,
            "owner_usernames": "rita",
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 302
    registry.model.refresh_from_db()
    assert registry.model.description == "Ranks accounts."
    assert [owner.username for owner in registry.model.owners.all()] == ["rita"]
    entry = AuditEntry.objects.get(action="registered_model.updated")
    assert entry.actor_label == "cody"
    assert json.loads(entry.changes) == {"description": ["", "Ranks accounts."], "owners": [[], ["rita"]]}


def test_an_unknown_owner_is_an_error_on_the_form(admin_client, registry):
    response = admin_client.post(
        url_of(registry.model),
        {
            "description": "",
            "model_card": "",
            "owner_usernames": "nobody",
            "versions-TOTAL_FORMS": 0,
            "versions-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["owner_usernames"] == ["There is no active user named nobody."]
    assert not AuditEntry.objects.filter(action="registered_model.updated").exists()


def test_a_reviewer_reads_a_model_and_changes_nothing(client, registry, client_as):
    registered_model_update(registered_model=registry.model, changed_by=None, owners=[registry.maintainer])
    client_as(registry.reviewer)

    page = client.get(url_of(registry.model))
    refused = client.post(url_of(registry.model), {"description": "Mine now", "owner_usernames": "rita"})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert "mia" in page.content.decode()  # the owners, shown read-only
    assert refused.status_code == 403
    registry.model.refresh_from_db()
    assert registry.model.description == ""


# Policies ----------------------------------------------------------------------------------------------------------


def policy_form(project, stage: str = "production", **changes) -> dict:
    """The add form as a maintainer posts it: production's default policy, with `changes`."""
    data = {
        "project": project.pk,
        "stage": stage,
        "approvals_required": 2,
        "require_verified_blob": "on",
        "require_complete_lineage": "on",
        "require_model_card": "on",
        "metric_thresholds": "[]",
        "request_ttl_hours": 168,
        "previous_production_to": "archived",
        "note": "",
    }
    return {key: value for key, value in {**data, **changes}.items() if value is not None}


def test_a_maintainer_saves_the_next_policy_version_and_it_is_audited(client, registry, client_as):
    client_as(registry.maintainer)

    first = client.post(ADD_POLICY, policy_form(registry.project, approvals_required=3, note="Three eyes."))
    second = client.post(
        ADD_POLICY,
        policy_form(
            registry.project,
            approvals_required=3,
            metric_thresholds='[{"metric": "accuracy", "operator": ">=", "value": 0.9}]',
            note="And accurate.",
        ),
    )

    assert (first.status_code, second.status_code) == (302, 302)
    versions = PromotionPolicy.objects.filter(project=registry.project, stage="production").order_by("version")
    assert [(p.version, p.approvals_required, p.changed_by) for p in versions] == [
        (1, 3, registry.maintainer),
        (2, 3, registry.maintainer),
    ]
    assert versions[1].metric_thresholds == [{"metric": "accuracy", "operator": ">=", "value": 0.9}]
    entries = AuditEntry.objects.filter(action="promotion_policy.changed").order_by("seq")
    assert [json.loads(entry.changes)["version"] for entry in entries] == [[0, 1], [1, 2]]
    assert json.loads(entries[1].changes)["metric_thresholds"] == [
        [],
        [{"metric": "accuracy", "operator": ">=", "value": 0.9}],
    ]
    assert listed(client.get(POLICIES)) == [versions[1], versions[0]]


def test_the_next_version_form_starts_from_the_policy_in_force(client, registry, client_as):
    promotion_policy_set(
        project=registry.project, stage="production", changed_by=registry.maintainer, approvals_required=4
    )
    client_as(registry.maintainer)

    form = client.get(ADD_POLICY, {"project": registry.project.pk, "stage": "production"}).context["adminform"].form

    assert (form.initial["approvals_required"], form.initial["require_model_card"]) == (4, True)


def test_saving_the_policy_in_force_again_saves_nothing(client, registry, client_as):
    promotion_policy_set(project=registry.project, stage="production", changed_by=registry.maintainer)
    client_as(registry.maintainer)

    response = client.post(ADD_POLICY, policy_form(registry.project), follow=True)

    assert "nothing changed" in " ".join(messages_of(response))
    assert PromotionPolicy.objects.count() == 1


def test_a_malformed_threshold_is_an_error_on_its_field(client, registry, client_as):
    client_as(registry.maintainer)

    response = client.post(ADD_POLICY, policy_form(registry.project, metric_thresholds='[{"metric": "accuracy"}]'))

    assert response.status_code == 200
    assert "exactly" in " ".join(response.context["adminform"].form.errors["metric_thresholds"])
    assert not PromotionPolicy.objects.exists()


def test_a_minimum_time_in_production_on_the_staging_policy_is_an_error_on_its_field(client, registry, client_as):
    client_as(registry.maintainer)

    response = client.post(ADD_POLICY, policy_form(registry.project, stage="staging", min_hours_in_production=24))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["min_hours_in_production"]
    assert errors == ["Only the production policy keeps a minimum time in production."]
    assert not PromotionPolicy.objects.exists()


def test_only_projects_one_maintains_are_offered_for_policies(client, registry, client_as):
    client_as(registry.reviewer)

    form = client.get(ADD_POLICY).context["adminform"].form
    refused = client.post(ADD_POLICY, policy_form(registry.project, approvals_required=1))

    assert list(form.fields["project"].queryset) == []
    assert "Select a valid choice" in refused.content.decode()
    assert not PromotionPolicy.objects.exists()


def test_a_saved_policy_version_is_never_edited(client, registry, client_as):
    policy, _ = promotion_policy_set(project=registry.project, stage="production", changed_by=registry.maintainer)
    client_as(registry.maintainer)

    page = client.get(url_of(policy))
    refused = client.post(url_of(policy), policy_form(registry.project, approvals_required=1))

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert refused.status_code == 403
    policy.refresh_from_db()
    assert policy.approvals_required == 2


# Requests: decided in the portal, withdrawn and re-checked here -----------------------------------------------------
#
# Approving and rejecting are the portal's (tests/governance/portal/test_registry.py) and the API's
# (test_api.py); the rules behind them are the services' (test_promotions_*.py).


def test_the_admin_offers_no_decision_and_links_each_request_to_the_portal(client, registry, client_as):
    request = registry.request()
    client_as(registry.reviewer)

    listing = client.get(REQUESTS).content.decode()
    page = client.get(url_of(request)).content.decode()
    posted = client.post(REQUESTS, {"action": "approve", "_selected_action": [request.pk], "index": 0}, follow=True)

    assert 'value="withdraw"' in listing
    assert 'value="approve"' not in listing
    assert 'value="reject"' not in listing
    portal_page = reverse("portal:promotion", args=[request.pk])
    assert f'<a href="{portal_page}">Approve or reject it in the portal</a>' in page
    assert "No action selected." in messages_of(posted)
    assert not PromotionDecision.objects.exists()


def test_a_closed_requests_page_still_links_to_the_portal(admin_client, registry):
    request = registry.in_production(registry.version())

    page = admin_client.get(url_of(request)).content.decode()

    assert f'<a href="{reverse("portal:promotion", args=[request.pk])}">Its page in the portal</a>' in page
    assert "Approve or reject" not in page


def test_withdrawing_is_the_requesters_or_a_maintainers(client, registry, client_as):
    request = registry.request()

    refused = act(client_as(registry.reviewer), REQUESTS, "withdraw", [request])
    request.refresh_from_db()
    assert request.state == PromotionRequest.State.OPEN
    withdrawn = act(client_as(registry.requester), REQUESTS, "withdraw", [request])

    assert "Only the requester or a maintainer of the project may withdraw a request." in " ".join(messages_of(refused))
    assert f"Withdrew {request}." in messages_of(withdrawn)
    request.refresh_from_db()
    assert (request.state, request.closed_by) == ("withdrawn", registry.requester)


def test_re_checking_applies_a_request_once_its_gates_pass(client, registry, client_as):
    registered_model_update(registered_model=registry.model, changed_by=None, model_card="")
    request = registry.request()
    promotion_approve(request=request, reviewer=registry.reviewer)
    promotion_approve(request=request, reviewer=registry.second_reviewer)
    client_as(registry.maintainer)

    blocked = act(client, REQUESTS, "recheck_and_apply", [request])
    registered_model_update(registered_model=registry.model, changed_by=None, model_card="# Classifier")
    applied = act(client, REQUESTS, "recheck_and_apply", [request])

    assert "Not applied: Approved, but gates fail" in " ".join(messages_of(blocked))
    assert f"Applied {request}: Moved to production." in messages_of(applied)
    assert ModelVersion.objects.get(pk=request.model_version.pk).stage == "production"


def test_a_request_page_shows_gates_decisions_and_what_counts(admin_client, registry):
    request = registry.request()
    promotion_approve(request=request, reviewer=registry.reviewer, comment="Holdout checked.")

    page = admin_client.get(url_of(request))

    assert page.status_code == 200
    body = page.content.decode()
    assert "Gates at request" in body
    assert "Gates at the last decision" in body
    assert "1 of 2 required" in body
    assert "rita: counts" in body
    assert "Holdout checked." in body
    assert 'name="_save"' not in body


# Rollback ----------------------------------------------------------------------------------------------------------


def test_a_maintainer_rolls_production_back_with_a_justification(client, registry, client_as):
    first, second = registry.version(), registry.version()
    registry.in_production(first)
    registry.in_production(second)
    client_as(registry.maintainer)

    unjustified = client.post(
        MODELS, {"action": "roll_back", "_selected_action": [registry.model.pk], "confirm": "yes", "text": ""}
    )
    response = act(client, MODELS, "roll_back", [registry.model], text="v2 mislabels every churned account.")

    assert unjustified.context["form"].errors["text"] == ["This field is required."]
    review = PromotionRequest.objects.get(kind=PromotionRequest.Kind.ROLLBACK_REVIEW)
    assert (
        f"Rolled {registry.model} back: v1 is in production again. Review request #{review.pk} now awaits its "
        "reviewers."
    ) in messages_of(response)
    assert ModelVersion.objects.get(pk=first.pk).stage == "production"
    assert ModelVersion.objects.get(pk=second.pk).stage == "archived"
    assert StageTransition.objects.filter(break_glass=True, changed_by=registry.maintainer).count() == 2
    assert review.justification == "v2 mislabels every churned account."
    assert AuditEntry.objects.filter(action="registered_model.rolled_back").count() == 1


def test_a_rollback_by_a_non_maintainer_is_refused_in_the_services_words(client, registry, client_as):
    first = registry.version()
    registry.in_production(first)
    registry.in_production(registry.version())
    client_as(registry.requester)

    response = act(client, MODELS, "roll_back", [registry.model], text="Panic.")

    assert "An emergency rollback of 'classifier' needs the maintainer role on its project." in " ".join(
        messages_of(response)
    )
    assert ModelVersion.objects.get(pk=first.pk).stage == "archived"
    assert not StageTransition.objects.filter(break_glass=True).exists()


def test_staff_without_the_change_permission_are_not_offered_the_actions(client, registry, staff, client_as):
    request = registry.request()
    reviewer = staff(grant(Role.REVIEWER, on=registry.project).user, "view_promotionrequest", "view_registeredmodel")
    client_as(reviewer)

    page = client.get(REQUESTS).content.decode()
    posted = client.post(REQUESTS, {"action": "withdraw", "_selected_action": [request.pk], "index": 0})

    assert 'value="withdraw"' not in page
    assert 'value="recheck_and_apply"' not in page
    assert 'value="roll_back"' not in client.get(MODELS).content.decode()
    assert posted.status_code == 200
    request.refresh_from_db()
    assert request.state == PromotionRequest.State.OPEN


def test_the_stage_history_is_filtered_by_model_cause_and_break_glass(admin_client, registry):
    first, second = registry.version(), registry.version()
    registry.in_production(first)
    registry.in_production(second)
    act(admin_client, MODELS, "roll_back", [registry.model], text="Bad release.")
    registry.in_production(registry.version(registry.other_model))

    assert len(listed(admin_client.get(HISTORY))) == 6
    assert len(listed(admin_client.get(HISTORY, {"registered_model__id__exact": registry.model.pk}))) == 5
    assert len(listed(admin_client.get(HISTORY, {"cause__exact": "replaced"}))) == 1
    assert len(listed(admin_client.get(HISTORY, {"break_glass__exact": "1"}))) == 2


# Nothing deleted, records not rewritten ----------------------------------------------------------------------------


@pytest.fixture
def every_record(registry):
    version = registry.version()
    request = registry.in_production(version)
    policy, _ = promotion_policy_set(project=registry.project, stage="staging", changed_by=registry.maintainer)
    return {
        RegisteredModel: registry.model,
        ModelVersion: version,
        PromotionPolicy: policy,
        PromotionRequest: request,
        StageTransition: StageTransition.objects.get(),
    }


@pytest.mark.parametrize("model", REGISTRY_MODELS, ids=lambda model: model.__name__)
def test_nothing_in_the_registry_is_deleted_from_the_admin(admin_client, every_record, model):
    obj = every_record[model]
    changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    refused = admin_client.post(url_of(obj, "delete"), {"post": "yes"})
    bulk = admin_client.post(
        changelist, {"action": "delete_selected", "_selected_action": [obj.pk], "index": 0, "post": "yes"}, follow=True
    )

    assert refused.status_code == 403
    assert "delete_selected" not in admin_client.get(changelist).content.decode()
    assert bulk.status_code == 200
    assert model.objects.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", [ModelVersion, PromotionRequest, StageTransition], ids=lambda model: model.__name__)
def test_read_only_records_cannot_be_added_or_changed_by_post(admin_client, every_record, model):
    obj = every_record[model]
    before = model.objects.filter(pk=obj.pk).values().get()

    page = admin_client.get(url_of(obj))
    changed = admin_client.post(url_of(obj), {"stage": "archived", "state": "rejected", "to_stage": "archived"})
    added = admin_client.post(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add"), {})

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (changed.status_code, added.status_code) == (403, 403)
    assert model.objects.filter(pk=obj.pk).values().get() == before


# Cost --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [MODELS, VERSIONS, POLICIES, REQUESTS, HISTORY])
@pytest.mark.parametrize("superuser", [False, True], ids=["staff maintainer", "superuser"])
def test_the_lists_cost_the_same_queries_for_1_row_as_for_5(client, url, superuser, staff, client_as):
    project = ProjectFactory()
    user = staff(UserFactory(is_superuser=superuser), *REGISTRY_PERMISSIONS)
    grant(Role.MAINTAINER, on=project, user=user)
    reviewers = [grant(Role.REVIEWER, on=project).user for _ in range(2)]
    client_as(user)

    def add_row() -> None:
        """One more row on every list: a model with an owner and a version promoted to production, a policy."""
        model = RegisteredModelFactory(project=project)
        registered_model_update(registered_model=model, changed_by=None, owners=[user, *reviewers])
        version = ModelVersionFactory(registered_model=model)
        request = PromotionRequestFactory(model_version=version)
        for reviewer in reviewers:
            promotion_approve(request=request, reviewer=reviewer)
        promotion_policy_set(
            project=project,
            stage="staging",
            changed_by=user,
            approvals_required=PromotionPolicy.objects.filter(stage="staging").count() + 1,
        )

    add_row()
    few = queries_for(client, url)
    for _ in range(4):
        add_row()
    many = queries_for(client, url)

    assert len(listed(client.get(url))) == 5
    assert many == few
