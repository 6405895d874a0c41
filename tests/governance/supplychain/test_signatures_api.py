"""Model signatures over the API: maintainers manage the trusted keys, publishers attach bundles, readers see the
verdicts; refusals say why, and nothing is half-written."""

from pathlib import Path

import pytest

from artifacts.access.roles import Role
from governance.supplychain.models import TrustedSigningKey, VersionSignature
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory, UserFactory, grant
from tests.governance.supplychain import signing
from tests.governance.supplychain.factories import TrustedSigningKeyFactory

pytestmark = pytest.mark.django_db

MODEL = b"ONNX-ish bytes " * 500


@pytest.fixture
def project():
    return ProjectFactory(slug="vision")


@pytest.fixture
def version(project):
    return ArtifactVersionFactory(artifact=ArtifactFactory(project=project, name="detector"), content=MODEL)


@pytest.fixture
def key(tmp_path: Path) -> signing.KeyPair:
    return signing.ec_key(tmp_path / "keys")


@pytest.fixture
def bundle(tmp_path: Path, key) -> dict:
    model = tmp_path / "detector.onnx"
    model.write_bytes(MODEL)
    return signing.sign_with_key(model, key)


def member(role: str, project) -> object:
    user = UserFactory()
    grant(role, on=project, user=user)
    return user


def test_a_maintainer_trusts_a_key_and_revokes_it(api_as, project, key):
    api = api_as(member(Role.MAINTAINER, project))

    created = api.post(
        "/api/v1/projects/vision/trusted-keys/", {"name": "release-ci", "method": "key", "pem": key.public_pem}
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["method"], body["project"], body["revoked_at"]) == ("release-ci", "key", "vision", None)
    assert len(body["fingerprint"]) == 64

    listed = api.get("/api/v1/projects/vision/trusted-keys/").json()
    assert [k["name"] for k in listed] == ["release-ci"]

    revoked = api.post(f"/api/v1/projects/vision/trusted-keys/{body['id']}/revoke/")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    again = api.post(f"/api/v1/projects/vision/trusted-keys/{body['id']}/revoke/")
    assert again.status_code == 400
    assert "already revoked" in again.json()["detail"]


def test_only_maintainers_manage_trusted_keys(api_as, project, key):
    api = api_as(member(Role.CONTRIBUTOR, project))

    refused = api.post(
        "/api/v1/projects/vision/trusted-keys/", {"name": "mine", "method": "key", "pem": key.public_pem}
    )

    assert refused.status_code == 403
    assert "manage" in refused.json()["detail"]
    assert not TrustedSigningKey.objects.exists()
    assert api_as(UserFactory()).get("/api/v1/projects/vision/trusted-keys/").status_code == 404


def test_a_grantee_of_one_artifact_sees_the_project_but_not_its_keys(api_as, project, key):
    TrustedSigningKeyFactory(project=project, name="release-ci", pem=key.public_pem)
    grantee = grant(Role.VIEWER, on=ArtifactFactory(project=project)).user

    listed = api_as(grantee).get("/api/v1/projects/vision/trusted-keys/")

    assert listed.status_code == 200
    assert listed.json() == []
    assert len(api_as(member(Role.VIEWER, project)).get("/api/v1/projects/vision/trusted-keys/").json()) == 1


def test_a_bad_pem_is_a_400_naming_the_field(api_as, project):
    api = api_as(member(Role.MAINTAINER, project))

    refused = api.post("/api/v1/projects/vision/trusted-keys/", {"name": "x", "method": "key", "pem": "hello"})

    assert refused.status_code == 400
    assert "Not a PEM public key" in str(refused.json())


def test_a_publisher_attaches_a_signature_and_readers_see_the_verdict(
    api_as, project, version, key, bundle, django_capture_on_commit_callbacks
):
    TrustedSigningKeyFactory(project=project, name="release-ci", pem=key.public_pem)
    publisher = api_as(member(Role.CONTRIBUTOR, project))

    with django_capture_on_commit_callbacks(execute=True):
        created = publisher.post(f"/api/v1/artifact-versions/{version.pk}/signatures/", {"bundle": bundle})
    assert created.status_code == 201, created.json()
    assert created.json()["verified_at"] is None  # checked after the commit, by the worker

    listed = api_as(member(Role.VIEWER, project)).get(f"/api/v1/artifact-versions/{version.pk}/signatures/")
    assert listed.status_code == 200
    [signature] = listed.json()
    assert (signature["verified"], signature["trusted"], signature["trusted_key"]["name"]) == (
        True,
        True,
        "release-ci",
    )
    assert signature["bundle"] == bundle
    assert signature["detail"] == "Signed by trusted key 'release-ci' over these exact bytes."


def test_readers_may_not_attach_signatures(api_as, project, version, bundle):
    refused = api_as(member(Role.VIEWER, project)).post(
        f"/api/v1/artifact-versions/{version.pk}/signatures/", {"bundle": bundle}
    )

    assert refused.status_code == 403
    assert not VersionSignature.objects.exists()


def test_a_bundle_that_is_not_one_is_a_400(api_as, project, version):
    publisher = api_as(member(Role.CONTRIBUTOR, project))

    refused = publisher.post(f"/api/v1/artifact-versions/{version.pk}/signatures/", {"bundle": {"hello": 1}})
    unknown = publisher.post(f"/api/v1/artifact-versions/{version.pk}/signatures/", {"signature": {}})

    assert refused.status_code == 400
    assert "Not a Sigstore bundle" in refused.json()["detail"]
    assert unknown.status_code == 400
    assert not VersionSignature.objects.exists()


def test_an_unseen_version_is_a_404(api_as, version, bundle):
    answer = api_as(UserFactory()).get(f"/api/v1/artifact-versions/{version.pk}/signatures/")

    assert answer.status_code == 404
