"""Factories for the supply-chain area: trusted keys and version signatures, made through their services as in
production, on the catalog's factories."""

import factory

from governance.supplychain.models import SigningMethod, TrustedSigningKey, VersionSignature
from governance.supplychain.services.signatures import signature_upload, trusted_key_add
from tests.artifacts.factories import ArtifactVersionFactory, ProjectFactory, PublisherFactory


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
