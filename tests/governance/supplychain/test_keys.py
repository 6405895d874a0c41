"""The attestation key: generated on first use, rotated by the command or by configuration, and every key kept
published, so an envelope signed before a rotation still verifies; a retired key never signs again."""

import base64
import copy
import json
from io import StringIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from core.errors import Conflict
from core.models import AuditEntry
from governance.supplychain.models import AttestationKey
from governance.supplychain.services.attestations import provenance_attestation_get
from tests.artifacts.factories import ArtifactVersionFactory


def private_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


def sslib_keys(listed: list[dict]) -> list[SSlibKey]:
    return [
        SSlibKey(key["keyid"], "ed25519", "ed25519", {"public": base64.b64decode(key["public_key"]).hex()})
        for key in listed
    ]


def rotate() -> dict:
    out = StringIO()
    call_command("rotate_attestation_key", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_a_key_is_generated_owner_readable_on_first_use_and_recorded(db, attestation_key_file):
    attestation = provenance_attestation_get(version=ArtifactVersionFactory())

    assert attestation_key_file.stat().st_mode & 0o777 == 0o600
    key = AttestationKey.objects.get()
    assert attestation.envelope["signatures"][0]["keyid"] == key.keyid
    assert key.first_used_at is not None
    assert key.retired_at is None


def test_rotation_signs_new_versions_with_the_new_key_and_old_envelopes_still_verify(api):
    old = provenance_attestation_get(version=ArtifactVersionFactory())

    rotated = rotate()
    new = provenance_attestation_get(version=ArtifactVersionFactory())

    assert rotated["retired"] == old.key.keyid
    assert new.envelope["signatures"][0]["keyid"] == rotated["keyid"] != old.key.keyid
    listed = api.get("/api/v1/attestations/keys/").json()
    assert [key["keyid"] for key in listed] == [rotated["keyid"], old.key.keyid]
    assert listed[0]["retired_at"] is None
    assert listed[1]["retired_at"] is not None
    assert listed[0]["pem"] == rotated["pem"]
    for attestation in (old, new):  # each verifies with the published list, by an independent implementation
        # (from_dict empties the signatures of the dict it is given: a copy)
        Envelope.from_dict(copy.deepcopy(attestation.envelope)).verify(sslib_keys(listed), 1)
    # The old statement is handed out as it was signed.
    assert api.get(f"/api/v1/artifact-versions/{old.artifact_version_id}/attestation/").json() == old.envelope
    rotation = AuditEntry.objects.get(action="attestation_key.rotated")
    assert json.loads(rotation.changes)["retired"] == old.key.keyid
    assert rotation.actor_kind == "system"


def test_a_key_rotated_by_configuration_retires_the_previous_one(db, settings):
    first = provenance_attestation_get(version=ArtifactVersionFactory())
    settings.PROVENANT_ATTESTATION_SIGNING_KEY = private_pem()

    second = provenance_attestation_get(version=ArtifactVersionFactory())

    first.key.refresh_from_db()
    assert first.key.retired_at is not None
    assert second.key.retired_at is None
    assert second.key != first.key
    entry = AuditEntry.objects.get(action="attestation_key.rotated")
    assert json.loads(entry.changes)["how"] == "configuration"


def test_a_retired_key_put_back_signs_no_more(db, settings):
    settings.PROVENANT_ATTESTATION_SIGNING_KEY = old = private_pem()
    provenance_attestation_get(version=ArtifactVersionFactory())
    settings.PROVENANT_ATTESTATION_SIGNING_KEY = private_pem()
    provenance_attestation_get(version=ArtifactVersionFactory())
    settings.PROVENANT_ATTESTATION_SIGNING_KEY = old

    with pytest.raises(Conflict, match="retired"):
        provenance_attestation_get(version=ArtifactVersionFactory())


def test_the_command_refuses_a_key_given_as_the_variables_text(db, settings):
    settings.PROVENANT_ATTESTATION_SIGNING_KEY = private_pem()

    with pytest.raises(CommandError, match="PROVENANT_ATTESTATION_SIGNING_KEY"):
        call_command("rotate_attestation_key")
    assert not AttestationKey.objects.exists()


def test_the_database_keeps_one_current_key_and_retired_keys_retired(db):
    provenance_attestation_get(version=ArtifactVersionFactory())
    rotate()
    retired = AttestationKey.objects.get(retired_at__isnull=False)

    with pytest.raises(IntegrityError), transaction.atomic():
        AttestationKey.objects.filter(pk=retired.pk).update(retired_at=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        AttestationKey.objects.filter(pk=retired.pk).delete()
    current = AttestationKey.objects.get(retired_at__isnull=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        AttestationKey.objects.filter(pk=current.pk).update(public_key="A" * 44)


def test_the_keys_command_prints_the_list_the_api_answers(api):
    provenance_attestation_get(version=ArtifactVersionFactory())
    rotate()
    out = StringIO()

    call_command("attestation_keys", stdout=out)

    assert json.loads(out.getvalue()) == api.get("/api/v1/attestations/keys/").json()
