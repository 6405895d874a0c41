"""Factories for the governance areas: API tokens, access-review campaigns, webhook endpoints, the registry's
models, versions and promotion requests, and lifecycle's retention policies and legal holds, each made through its
service as in production, on top of the catalog's factories (tests/artifacts/factories.py)."""

from datetime import timedelta

import factory
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.services.integrity import blob_verify
from governance.access.models import AccessReviewCampaign, ApiToken
from governance.access.services import api_token_issue, campaign_open
from governance.lifecycle.models import LegalHold, RetentionPolicy
from governance.lifecycle.services.holds import legal_hold_place
from governance.lifecycle.services.policies import retention_policy_set
from governance.registry.models import ModelVersion, PromotionRequest, RegisteredModel
from governance.registry.services.promotions import promotion_request_create
from governance.registry.services.registry import model_version_register, registered_model_create
from governance.webhooks.models import WebhookEndpoint
from governance.webhooks.services import webhook_endpoint_create
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


def token_for(user, *, lifetime: timedelta = timedelta(days=1)) -> str:
    return api_token_issue(user=user, name="tests", lifetime=lifetime)[1]


def auditor_of(target) -> AbstractBaseUser:
    """A new user holding the auditor role on a project or an artifact."""
    return grant(Role.AUDITOR, on=target).user


def global_auditor() -> AbstractBaseUser:
    """A new user with no role who may read the whole audit log (the `view_auditentry` permission)."""
    person = UserFactory()
    person.user_permissions.add(Permission.objects.get(codename="view_auditentry"))
    return person


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """Issues a token through the service. The plaintext, shown once in production, is kept on the
    returned token as `plaintext` so tests can authenticate with it."""

    class Meta:
        model = ApiToken

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"token-{n}")
    lifetime = timedelta(days=30)

    @classmethod
    def _create(cls, model_class, user, name, lifetime, **kwargs):
        token, plaintext = api_token_issue(user=user, name=name, lifetime=lifetime)
        token.plaintext = plaintext
        return token


class AccessReviewCampaignFactory(factory.django.DjangoModelFactory):
    """Opens a campaign through the service over every grant on `project` (every project when None), due in two
    weeks, opened by a new superuser unless `opened_by` is given."""

    class Meta:
        model = AccessReviewCampaign

    project = None
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))
    opened_by = factory.SubFactory(UserFactory, is_superuser=True)
    reviewers = None

    @classmethod
    def _create(cls, model_class, **kwargs):
        return campaign_open(**kwargs)


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """Registers an endpoint through the service (so its URL passes the address guard: give a receiver's URL with
    loopback allowed), subscribed to `artifact_version.published` unless told. The secret, shown once, is kept as
    `secret`."""

    class Meta:
        model = WebhookEndpoint

    project = factory.SubFactory(ProjectFactory)
    url = "https://hooks.invalid/"
    event_types = factory.LazyFunction(lambda: ["artifact_version.published"])
    created_by = None

    @classmethod
    def _create(cls, model_class, **kwargs):
        endpoint, secret = webhook_endpoint_create(**kwargs)
        endpoint.secret = secret
        return endpoint


class RegisteredModelFactory(factory.django.DjangoModelFactory):
    """Registers a model through the service, with a model card unless told (production's default policy asks one)."""

    class Meta:
        model = RegisteredModel

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"model-{n}")
    model_card = "# Churn classifier\n\nIntended use: ranking accounts for retention calls."
    created_by = factory.SubFactory(PublisherFactory)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return registered_model_create(**kwargs)


def artifact_version_with_lineage(
    project,
    *,
    created_by=None,
    verified: bool = True,
    metrics=None,
    environment=None,
    license: str = "",
    content: bytes | None = None,
):
    """An artifact version that passes every default gate: produced by a run with a commit and an input dataset
    version, its bytes verified (unless `verified` is False: they stay pending). `environment` is the run's (the
    factory's numpy==2.1.0 unless given), `license` the SPDX expression the version declares, `content` its bytes
    (random unless given)."""
    created_by = created_by or PublisherFactory()
    dataset_version = DatasetVersionFactory(dataset=DatasetFactory(project=project), created_by=created_by)
    run = RunFactory(
        project=project,
        created_by=created_by,
        input_dataset_versions=[dataset_version],
        **({"metrics": metrics} if metrics is not None else {}),
        **({"environment": environment} if environment is not None else {}),
    )
    version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project),
        created_by=created_by,
        run=run,
        license=license,
        **({"content": content} if content is not None else {}),
    )
    if verified:
        blob_verify(blob=version.blob)
        version.blob.refresh_from_db()
    return version


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """Registers an artifact version (one that passes every default gate unless `artifact_version` is given) as the
    next version of `registered_model`."""

    class Meta:
        model = ModelVersion

    registered_model = factory.SubFactory(RegisteredModelFactory)
    artifact_version = factory.LazyAttribute(lambda o: artifact_version_with_lineage(o.registered_model.project))
    created_by = factory.SubFactory(PublisherFactory)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return model_version_register(**kwargs)[0]


class PromotionRequestFactory(factory.django.DjangoModelFactory):
    """Requests a promotion through the service, by a new contributor to the project unless `requested_by` is
    given (who must then be allowed to ask)."""

    class Meta:
        model = PromotionRequest

    model_version = factory.SubFactory(ModelVersionFactory)
    target_stage = "production"
    justification = "Beats the current model on last month's holdout."
    requested_by = factory.LazyAttribute(
        lambda o: grant("contributor", on=o.model_version.registered_model.project).user
    )

    @classmethod
    def _create(cls, model_class, **kwargs):
        return promotion_request_create(**kwargs)


class RetentionPolicyFactory(factory.django.DjangoModelFactory):
    """Saves the next version of a project's retention rules through the service, as a maintainer of the project
    (one made for it unless told): archive what is older than 30 days, unless told."""

    class Meta:
        model = RetentionPolicy

    project = factory.SubFactory(ProjectFactory)
    rules = factory.LazyFunction(lambda: [{"name": "cold-after-30-days", "action": "archive", "older_than_days": 30}])
    auto_apply = False
    note = ""
    changed_by = factory.LazyAttribute(lambda policy: grant(Role.MAINTAINER, on=policy.project).user)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return retention_policy_set(**kwargs)[0]


class LegalHoldFactory(factory.django.DjangoModelFactory):
    """Places a hold through the service, as an auditor of the project (one made for it unless told): on the whole
    project unless an artifact, dataset or version of it is named."""

    class Meta:
        model = LegalHold

    project = factory.SubFactory(ProjectFactory)
    reason = factory.Sequence(lambda n: f"Litigation hold, case {n}.")
    placed_by = factory.LazyAttribute(lambda hold: grant(Role.AUDITOR, on=hold.project).user)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return legal_hold_place(**kwargs)
