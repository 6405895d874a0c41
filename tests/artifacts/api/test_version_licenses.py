"""The SPDX license an artifact version declares when it is published (ArtifactVersion.license): checked against the
SPDX list and stored normalized, refused by name when unknown, and as fixed as the rest of the version."""

import pytest
from django.db import DatabaseError, transaction

from artifacts.models import ArtifactVersion
from tests.artifacts.api.test_versions import publish, upload
from tests.artifacts.factories import ArtifactFactory
from tests.schema_contract import assert_conforms

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("declared", "stored"),
    [
        ("mit OR GPL-3.0", "MIT OR GPL-3.0-only"),
        ("Apache-2.0 with LLVM-exception", "Apache-2.0 WITH LLVM-exception"),
        # SPDX's identifiers for licenses off its list are taken as they are.
        ("LicenseRef-acme-internal AND mit", "LicenseRef-acme-internal AND MIT"),
    ],
)
def test_a_declared_license_is_stored_normalized_and_shown(api, declared, stored):
    artifact = ArtifactFactory()

    published = publish(api, artifact, upload(api, artifact.project, b"weights"), license=declared)

    assert published.status_code == 201, published.content
    assert published.json()["license"] == stored
    assert ArtifactVersion.objects.get().license == stored
    assert_conforms(published, "POST", "/api/v1/artifact-versions/")


@pytest.mark.parametrize(
    ("declared", "said"),
    [
        ("MIT AND Frobnicate-1.0", "Unknown SPDX license identifier(s): Frobnicate-1.0. Use identifiers from"),
        ("MIT OR", "'MIT OR' is not an SPDX license expression"),
        ("MIT AND (", "'MIT AND (' is not an SPDX license expression"),
    ],
)
def test_an_unknown_license_is_a_400_naming_it_and_nothing_is_published(api, declared, said):
    artifact = ArtifactFactory()

    refused = publish(api, artifact, upload(api, artifact.project, b"weights"), license=declared)

    assert refused.status_code == 400, refused.content
    assert said in refused.json()["detail"]
    assert refused.json()["field"] == "license"
    assert not ArtifactVersion.objects.exists()


def test_the_same_bytes_published_again_under_another_license_are_refused(api):
    artifact = ArtifactFactory()
    digest = upload(api, artifact.project, b"weights")
    publish(api, artifact, digest, license="MIT")

    again = publish(api, artifact, digest, license="mit")
    other = publish(api, artifact, digest, license="Apache-2.0")

    assert again.status_code == 200  # the same license, spelled otherwise
    assert other.status_code == 409
    assert "This request differs (license)" in other.json()["detail"]


def test_the_database_refuses_to_change_a_declared_license(api):
    artifact = ArtifactFactory()
    publish(api, artifact, upload(api, artifact.project, b"weights"), license="MIT")

    with pytest.raises(DatabaseError, match="artifact versions are immutable"), transaction.atomic():
        ArtifactVersion.objects.update(license="Apache-2.0")
    assert ArtifactVersion.objects.get().license == "MIT"
