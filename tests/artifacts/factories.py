"""Factories for the domain. Blobs and versions are made through the services, so their bytes really
exist in storage and their numbers are assigned as in production."""

import hashlib
import io
import os
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from artifacts import services
from artifacts.models import Artifact, ArtifactVersion, Blob, Dataset, DatasetVersion, Project, Run
from artifacts.services.integrity import blob_verify
from governance.models import (
    AccessReviewCampaign,
    ApiToken,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    RoleGrant,
    WebhookEndpoint,
)
from governance.services import api_token_issue, campaign_open, role_grant
from governance.services.promotions import promotion_request_create
from governance.services.registry import model_version_register, registered_model_create
from governance.services.webhooks import webhook_endpoint_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class PublisherFactory(UserFactory):
    """Who publishes a version when a test does not say: publishing needs read access to the project's bytes
    (services.require_project_blob), and a superuser has it without adding role grants to the project."""

    is_superuser = True


def sha256(data: bytes) -> str:
    """The digest string clients send: `sha256:<hex>`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def token_for(user, *, lifetime: timedelta = timedelta(days=1)) -> str:
    return api_token_issue(user=user, name="tests", lifetime=lifetime)[1]


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda p: p.slug.replace("-", " ").title())


class BlobFactory(factory.django.DjangoModelFactory):
    """Uploads `content` (random bytes by default) to `project` through the blob service."""

    class Meta:
        model = Blob

    content = factory.LazyFunction(lambda: os.urandom(256))
    project = factory.SubFactory(ProjectFactory)
    uploaded_by = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class, content, project, uploaded_by, **kwargs):
        blob, _ = services.blob_store(
            project=project,
            stream=io.BytesIO(content),
            expected_digest=hashlib.sha256(content).hexdigest(),
            uploaded_by=uploaded_by,
            declared_length=len(content),
        )
        return blob


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"dataset-{n}")


class DatasetVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DatasetVersion

    content = factory.LazyFunction(lambda: os.urandom(256))
    dataset = factory.SubFactory(DatasetFactory)
    created_by = factory.SubFactory(PublisherFactory)

    @classmethod
    def _create(cls, model_class, dataset, created_by, content, **kwargs):
        blob = BlobFactory(content=content, project=dataset.project, uploaded_by=created_by)
        version, _ = services.dataset_version_create(
            dataset=dataset, created_by=created_by, digest=blob.prefixed_digest, **kwargs
        )
        return version


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"run-{n}")
    code_repository = "https://git.example.com/ml/churn.git"
    code_commit = factory.Sequence(lambda n: hashlib.sha1(str(n).encode()).hexdigest())  # noqa: S324
    entry_point = "train.py"
    parameters = factory.LazyFunction(lambda: {"learning_rate": 0.1, "epochs": 20})
    metrics = factory.LazyFunction(lambda: {"accuracy": 0.93})
    environment = factory.LazyFunction(lambda: {"python_version": "3.11.7", "dependencies": ["numpy==2.1.0"]})
    created_by = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return services.run_create(**kwargs)


class ArtifactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Artifact

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"artifact-{n}")
    kind = Artifact.Kind.MODEL


class ArtifactVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ArtifactVersion

    content = factory.LazyFunction(lambda: os.urandom(256))
    artifact = factory.SubFactory(ArtifactFactory)
    created_by = factory.SubFactory(PublisherFactory)

    @classmethod
    def _create(cls, model_class, artifact, created_by, content, **kwargs):
        blob = BlobFactory(content=content, project=artifact.project, uploaded_by=created_by)
        version, _ = services.artifact_version_publish(
            artifact=artifact, created_by=created_by, digest=blob.prefixed_digest, **kwargs
        )
        return version


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


def grant(role: str, *, on, user=None, group=None, granted_by=None) -> RoleGrant:
    """Give `role` on a project or artifact through the service, to `group`, or to `user` (a new user if
    neither is named)."""
    if user is None and group is None:
        user = UserFactory()
    return role_grant(obj=on, role=role, user=user, group=group, granted_by=granted_by)[0]


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group{n}")


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


def artifact_version_with_lineage(project, *, created_by=None, verified: bool = True, metrics=None):
    """An artifact version that passes every default gate: produced by a run with a commit and an input dataset
    version, its bytes verified (unless `verified` is False: they stay pending)."""
    created_by = created_by or PublisherFactory()
    dataset_version = DatasetVersionFactory(dataset=DatasetFactory(project=project), created_by=created_by)
    run = RunFactory(
        project=project,
        created_by=created_by,
        input_dataset_versions=[dataset_version],
        **({"metrics": metrics} if metrics is not None else {}),
    )
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), created_by=created_by, run=run)
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
