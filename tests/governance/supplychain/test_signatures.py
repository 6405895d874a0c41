"""Model signatures checked by the server with the model_signing library: real bundles made by the library over
real files, a version's real stored bytes, and the project's trusted keys; nothing mocked.

Good signatures verify (key-based and certificate-based, a single file or a one-file directory); tampered bytes,
an untrusted key or an untrusted CA do not, each with a sentence saying why; trust added later verifies what was
waiting, and trust revoked un-verifies what it had verified."""

import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from core.errors import InvalidInput
from core.events import payload_schema
from core.models import AuditEntry, Event
from governance.supplychain.models import VersionSignature
from governance.supplychain.selectors.signatures import version_trusted_signatures
from governance.supplychain.services.signatures import trusted_key_revoke
from governance.supplychain.tasks import verify_signature
from tests.artifacts.factories import ArtifactFactory, ArtifactVersionFactory, ProjectFactory
from tests.governance.supplychain import signing
from tests.governance.supplychain.factories import TrustedSigningKeyFactory, VersionSignatureFactory

pytestmark = pytest.mark.django_db

MODEL = b"\x80\x04\x95model weights " + bytes(range(256)) * 64


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model" / "model.safetensors"
    path.parent.mkdir()
    path.write_bytes(MODEL)
    return path


@pytest.fixture
def key(tmp_path: Path) -> signing.KeyPair:
    return signing.ec_key(tmp_path / "keys", "release-ci")


@pytest.fixture
def checked(django_capture_on_commit_callbacks):
    """`checked(make)`: run `make()` and the checks it queues (the worker's task, eagerly), then re-read."""

    def run(make):
        with django_capture_on_commit_callbacks(execute=True):
            result = make()
        result.refresh_from_db()
        return result

    return run


def version_of(content: bytes, project=None):
    artifact = ArtifactFactory(project=project or ProjectFactory())
    return ArtifactVersionFactory(artifact=artifact, content=content)


def test_a_key_signature_over_the_versions_bytes_verifies(checked, model_file, key):
    version = version_of(MODEL)
    trusted = TrustedSigningKeyFactory(project=version.artifact.project, name="release-ci", pem=key.public_pem)
    bundle = signing.sign_with_key(model_file, key)

    signature = checked(lambda: VersionSignatureFactory(artifact_version=version, bundle=bundle))

    assert (signature.verified, signature.trusted_key, signature.method) == (True, trusted, "key")
    assert signature.detail == "Signed by trusted key 'release-ci' over these exact bytes."
    assert signature.verified_at is not None
    assert signature.bundle == bundle
    assert version_trusted_signatures(version) == [signature]
    checked_entry = AuditEntry.objects.get(action="version_signature.checked")
    assert json.loads(checked_entry.changes)["verified"] == [False, True]
    assert checked_entry.project_id == version.artifact.project_id
    assert AuditEntry.objects.filter(action="version_signature.uploaded").count() == 1
    events = {event.type: json.loads(event.body) for event in Event.objects.all()}
    assert events["version_signature.checked"]["data"]["signature"]["trusted_key"]["name"] == "release-ci"
    assert events["version_signature.uploaded"]["data"]["artifact_version"]["id"] == version.pk
    for event_type, body in events.items():
        if event_type.startswith("version_signature."):
            jsonschema.validate(body, payload_schema(event_type))


def test_tampered_bytes_do_not_verify(checked, model_file, key):
    """Signed, then one byte changed before publishing: the signature is genuine, the bytes are not its."""
    bundle = signing.sign_with_key(model_file, key)
    tampered = bytearray(MODEL)
    tampered[100] ^= 1
    version = version_of(bytes(tampered))
    TrustedSigningKeyFactory(project=version.artifact.project, name="release-ci", pem=key.public_pem)

    signature = checked(lambda: VersionSignatureFactory(artifact_version=version, bundle=bundle))

    assert (signature.verified, signature.trusted_key) == (False, None)
    assert "is genuine, but the version's bytes are not the ones it signed" in signature.detail
    assert version_trusted_signatures(version) == []


def test_tampered_bundle_does_not_verify(checked, model_file, key):
    """The statement edited to claim other bytes: the signature no longer matches it."""
    bundle = signing.sign_with_key(model_file, key)
    other = model_file.parent / "other.bin"
    other.write_bytes(b"other bytes")
    forged = signing.sign_with_key(other, signing.ec_key(model_file.parent / "forger"))
    bundle["dsseEnvelope"]["payload"] = forged["dsseEnvelope"]["payload"]
    version = version_of(b"other bytes")
    TrustedSigningKeyFactory(project=version.artifact.project, name="release-ci", pem=key.public_pem)

    signature = checked(lambda: VersionSignatureFactory(artifact_version=version, bundle=bundle))

    assert signature.verified is False
    assert signature.detail.startswith("No trusted key of the project made this signature (tried 'release-ci')")


def test_a_signature_by_an_untrusted_key_does_not_verify(checked, model_file, key, tmp_path):
    version = version_of(MODEL)
    TrustedSigningKeyFactory(project=version.artifact.project, name="release-ci", pem=key.public_pem)
    stranger = signing.ec_key(tmp_path / "stranger", "stranger")
    bundle = signing.sign_with_key(model_file, stranger)

    signature = checked(lambda: VersionSignatureFactory(artifact_version=version, bundle=bundle))

    assert (signature.verified, signature.trusted_key) == (False, None)
    assert "No trusted key of the project made this signature" in signature.detail


def test_a_key_trusted_by_another_project_does_not_count(checked, model_file, key):
    version = version_of(MODEL)
    TrustedSigningKeyFactory(project=ProjectFactory(), pem=key.public_pem)
    bundle = signing.sign_with_key(model_file, key)

    signature = checked(lambda: VersionSignatureFactory(artifact_version=version, bundle=bundle))

    assert signature.verified is False
    assert signature.detail.startswith("The project trusts no public key yet")


def test_a_key_added_later_verifies_what_was_waiting_and_revoking_it_undoes_that(checked, model_file, key):
    version = version_of(MODEL)
    project = version.artifact.project
    bundle = signing.sign_with_key(model_file, key)
    signature = checked(lambda: VersionSignatureFactory(artifact_version=version, bundle=bundle))
    assert signature.verified is False

    trusted = checked(lambda: TrustedSigningKeyFactory(project=project, name="release-ci", pem=key.public_pem))
    signature.refresh_from_db()
    assert (signature.verified, signature.trusted_key) == (True, trusted)

    checked(lambda: trusted_key_revoke(key=trusted, revoked_by=trusted.added_by))
    signature.refresh_from_db()
    assert (signature.verified, signature.trusted_key) == (False, None)
    assert version_trusted_signatures(version) == []
    assert AuditEntry.objects.filter(action="trusted_signing_key.revoked").count() == 1
    with pytest.raises(InvalidInput, match="already revoked"):
        trusted_key_revoke(key=trusted, revoked_by=trusted.added_by)


def test_a_revoked_key_stops_counting_before_the_recheck_runs(checked, model_file, key):
    version = version_of(MODEL)
    trusted = TrustedSigningKeyFactory(project=version.artifact.project, pem=key.public_pem)
    signature = checked(
        lambda: VersionSignatureFactory(artifact_version=version, bundle=signing.sign_with_key(model_file, key))
    )
    assert version_trusted_signatures(version) == [signature]

    trusted_key_revoke(key=trusted, revoked_by=trusted.added_by)  # its re-check is never run here

    assert VersionSignature.objects.get(pk=signature.pk).verified is True
    assert version_trusted_signatures(version) == []


def test_a_certificate_signature_chaining_to_a_trusted_ca_verifies(checked, model_file, tmp_path):
    signer = signing.certificate_signer(tmp_path / "pki")
    version = version_of(MODEL)
    trusted = TrustedSigningKeyFactory(
        project=version.artifact.project, name="corporate-ca", method="certificate", pem=signer.ca_pem
    )
    bundle = signing.sign_with_certificate(model_file, signer)

    signature = checked(lambda: VersionSignatureFactory(artifact_version=version, bundle=bundle))

    assert (signature.method, signature.verified, signature.trusted_key) == ("certificate", True, trusted)


def test_a_certificate_from_another_ca_does_not_verify(checked, model_file, tmp_path):
    ours = signing.certificate_signer(tmp_path / "ours", "ours")
    theirs = signing.certificate_signer(tmp_path / "theirs", "theirs")
    version = version_of(MODEL)
    TrustedSigningKeyFactory(project=version.artifact.project, name="ours", method="certificate", pem=ours.ca_pem)

    signature = checked(
        lambda: VersionSignatureFactory(
            artifact_version=version, bundle=signing.sign_with_certificate(model_file, theirs)
        )
    )

    assert signature.verified is False
    assert "No trusted certificate chain of the project made this signature (tried 'ours')" in signature.detail


def test_a_certificate_signature_is_not_checked_against_public_keys(checked, model_file, key, tmp_path):
    signer = signing.certificate_signer(tmp_path / "pki")
    version = version_of(MODEL)
    TrustedSigningKeyFactory(project=version.artifact.project, pem=key.public_pem)

    signature = checked(
        lambda: VersionSignatureFactory(
            artifact_version=version, bundle=signing.sign_with_certificate(model_file, signer)
        )
    )

    assert signature.verified is False
    assert signature.detail.startswith("The project trusts no certificate chain yet")


def test_a_directory_signed_with_only_the_file_in_it_verifies(checked, model_file, key):
    """`model_signing sign key model/`: the manifest names the file inside the directory."""
    version = version_of(MODEL)
    TrustedSigningKeyFactory(project=version.artifact.project, pem=key.public_pem)
    bundle = signing.sign_with_key(model_file.parent, key)

    signature = checked(lambda: VersionSignatureFactory(artifact_version=version, bundle=bundle))

    assert signature.verified is True


def test_a_signature_over_several_files_is_refused_at_upload(model_file, key):
    (model_file.parent / "config.json").write_text("{}")
    bundle = signing.sign_with_key(model_file.parent, key)

    with pytest.raises(InvalidInput, match="The signature covers 2 files, and a version is one file"):
        VersionSignatureFactory(bundle=bundle)
    assert not VersionSignature.objects.exists()


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ([], "not a list or text"),
        ({"mediaType": "text/plain"}, "Not a Sigstore bundle"),
        (
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {"certificate": {"rawBytes": "AA=="}, "tlogEntries": [{"logIndex": "1"}]},
            },
            "Sigstore keyless signature",
        ),
        (
            {
                "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
                "verificationMaterial": {"publicKey": {"hint": "x"}},
                "dsseEnvelope": {"payload": "not base64!", "signatures": [{"sig": "AA=="}]},
            },
            "not base64-encoded JSON",
        ),
    ],
)
def test_what_is_not_a_usable_bundle_is_refused_saying_why(bundle, message):
    with pytest.raises(InvalidInput, match=message):
        VersionSignatureFactory(bundle=bundle)


def test_trusted_keys_must_be_elliptic_curve_public_keys_or_certificates(key):
    project = ProjectFactory()
    with pytest.raises(InvalidInput, match="Not a PEM public key"):
        TrustedSigningKeyFactory(project=project, pem="-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InvalidInput, match="Not PEM certificates"):
        TrustedSigningKeyFactory(project=project, method="certificate", pem=key.public_pem)
    TrustedSigningKeyFactory(project=project, name="ci", pem=key.public_pem)
    with pytest.raises(InvalidInput, match="already trusts a key named 'ci'"):
        TrustedSigningKeyFactory(project=project, name="ci", pem=key.public_pem)
    assert AuditEntry.objects.filter(action="trusted_signing_key.added").count() == 1


def test_bytes_changed_in_storage_after_publishing_do_not_verify(checked, model_file, key, isolated_blob_folder):
    """The check reads the stored bytes, not the digest recorded at upload: bytes altered on disk since (the blob
    not yet re-proved by the integrity check) fail it."""
    version = version_of(MODEL)
    TrustedSigningKeyFactory(project=version.artifact.project, pem=key.public_pem)
    stored = isolated_blob_folder / version.blob.storage_key
    altered = bytearray(stored.read_bytes())
    altered[-1] ^= 0xFF
    stored.write_bytes(bytes(altered))

    signature = checked(
        lambda: VersionSignatureFactory(artifact_version=version, bundle=signing.sign_with_key(model_file, key))
    )

    assert signature.verified is False
    assert "the version's bytes are not the ones it signed" in signature.detail


def test_a_check_asked_for_before_the_last_one_does_nothing(checked, model_file, key):
    """A redelivered task, or one queued before a later check ran, leaves the newer verdict alone."""
    version = version_of(MODEL)
    TrustedSigningKeyFactory(project=version.artifact.project, pem=key.public_pem)
    signature = checked(
        lambda: VersionSignatureFactory(artifact_version=version, bundle=signing.sign_with_key(model_file, key))
    )
    entries = AuditEntry.objects.filter(action="version_signature.checked").count()

    assert verify_signature(signature.pk, (signature.verified_at - timedelta(seconds=1)).isoformat()) is True
    assert verify_signature(signature.pk + 1000) is None
    assert AuditEntry.objects.filter(action="version_signature.checked").count() == entries
