"""Factories for the catalog (projects, blobs, datasets, runs, artifacts and their versions), its people and
groups, and the role grants of its access rule. Blobs and versions are made through the services, so their bytes
really exist in storage and their numbers are assigned as in production. The governance areas' factories build on
these in tests/governance/factories.py."""

import hashlib
import io
import os

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from artifacts import services
from artifacts.access.services import role_grant
from artifacts.models import Artifact, ArtifactVersion, Blob, Dataset, DatasetVersion, Project, RoleGrant, Run


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
