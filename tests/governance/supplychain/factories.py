"""Factories for the supply-chain area: trusted keys and version signatures, made through their services as in
production, and a produced version with everything a provenance statement names (a finished run with its code, an
input dataset version and an upstream artifact version, a base model), on the catalog's factories."""

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import factory

from artifacts import services
from artifacts.models import ArtifactVersion, DatasetVersion, Run
from governance.supplychain.models import SigningMethod, TrustedSigningKey, VersionSignature
from governance.supplychain.services.signatures import signature_upload, trusted_key_add
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetVersionFactory,
    ProjectFactory,
    PublisherFactory,
    RunFactory,
)

STARTED = datetime(2026, 11, 2, 9, 30, 0, 250000, tzinfo=UTC)
ENDED = datetime(2026, 11, 2, 11, 45, 12, tzinfo=UTC)


@dataclass
class Produced:
    version: ArtifactVersion
    content: bytes
    run: Run
    dataset_version: DatasetVersion
    base_model: ArtifactVersion


def produced_version(*, finished: bool = True, project=None, content: bytes | None = None) -> Produced:
    project = project or ProjectFactory(slug="churn")
    dataset_version = DatasetVersionFactory(dataset__project=project, dataset__name="customers")
    base_model = ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="base-model"))
    run = RunFactory(
        project=project,
        external_id="train-42",
        entry_point="python -m churn.train",
        parameters={"learning_rate": 0.05, "epochs": 12},
        started_at=STARTED,
        input_dataset_versions=[dataset_version],
        input_artifact_versions=[base_model],
    )
    if finished:
        run = services.run_update(run=run, status=Run.Status.COMPLETED, ended_at=ENDED)
    content = content if content is not None else os.urandom(512)
    version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=project, name="classifier"), content=content, run=run
    )
    return Produced(version, content, run, dataset_version, base_model)


class TrustedSigningKeyFactory(factory.django.DjangoModelFactory):
    """Trusts `pem` (required: a real key or CA made by tests/governance/supplychain/signing.py) in `project`."""

    class Meta:
        model = TrustedSigningKey

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"key-{n}")
    method = SigningMethod.KEY
    added_by = factory.SubFactory(PublisherFactory)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return trusted_key_add(**kwargs)


class VersionSignatureFactory(factory.django.DjangoModelFactory):
    """Attaches `bundle` (required: made by the model_signing library) to `artifact_version`."""

    class Meta:
        model = VersionSignature

    artifact_version = factory.SubFactory(ArtifactVersionFactory)
    uploaded_by = factory.SubFactory(PublisherFactory)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return signature_upload(**kwargs)
