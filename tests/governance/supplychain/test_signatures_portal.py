"""The version page shows its signatures and the server's verdict on each, with the sentence saying why."""

from html import unescape
from pathlib import Path

import pytest
from django.urls import reverse

from artifacts.access.roles import Role
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, UserFactory, grant
from tests.governance.supplychain import signing
from tests.governance.supplychain.factories import TrustedSigningKeyFactory, VersionSignatureFactory

pytestmark = pytest.mark.django_db

MODEL = b"weights" * 300


def test_the_version_page_shows_verified_and_unverified_signatures(
    client_as, tmp_path: Path, django_capture_on_commit_callbacks
):
    project = ProjectFactory()
    version = ArtifactVersionFactory(artifact=ArtifactFactory(project=project), content=MODEL)
    model = tmp_path / "model.bin"
    model.write_bytes(MODEL)
    ours, stranger = signing.ec_key(tmp_path, "ours"), signing.ec_key(tmp_path, "stranger")
    TrustedSigningKeyFactory(project=project, name="release-ci", pem=ours.public_pem)
    with django_capture_on_commit_callbacks(execute=True):
        VersionSignatureFactory(artifact_version=version, bundle=signing.sign_with_key(model, ours))
        VersionSignatureFactory(artifact_version=version, bundle=signing.sign_with_key(model, stranger))
    reader = UserFactory()
    grant(Role.VIEWER, on=project, user=reader)

    page = client_as(reader).get(reverse("portal:artifact-version", args=[version.pk]))

    assert page.status_code == 200
    html = unescape(page.content.decode())
    section = html[html.index('id="signatures"') : html.index('id="verification-heading"')]
    assert section.count("<tr>") == 3  # the header and two signatures
    assert "Verified" in section
    assert "<code>release-ci</code>" in section
    assert "Signed by trusted key 'release-ci' over these exact bytes." in section
    assert "Not verified" in section
    assert "No trusted key of the project made this signature" in section


def test_a_version_without_signatures_says_how_to_attach_one(client_as):
    version = ArtifactVersionFactory()
    reader = UserFactory()
    grant(Role.VIEWER, on=version.artifact.project, user=reader)

    html = client_as(reader).get(reverse("portal:artifact-version", args=[version.pk])).content.decode()

    assert "No model signature is attached to this version." in html
    assert f"/api/v1/artifact-versions/{version.pk}/signatures/" in html
