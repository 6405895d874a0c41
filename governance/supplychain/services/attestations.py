"""Provenance attestations: signing a version's statement (once, on the first request) and rotating the key."""

import importlib.metadata

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from artifacts.models import ArtifactVersion, Run
from core.audit.actions import AuditAction
from core.audit.recorder import AuditObject, audit_object
from core.changes import ChangeSet
from core.crypto.dsse import IN_TOTO_PAYLOAD_TYPE, sign_envelope
from core.crypto.merkle import canonical_json
from core.errors import Conflict
from governance.supplychain import keys
from governance.supplychain.models import AttestationKey, ProvenanceAttestation
from governance.supplychain.provenance import Installation, provenance_statement
from governance.supplychain.selectors.attestations import version_attestation, version_facts


def installation() -> Installation:
    """The builder every statement names: this installation, by its public address, and its version."""
    try:
        version = importlib.metadata.version("provenant")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return Installation(url=settings.PROVENANT_PUBLIC_URL + "/", version=version)


def _read_object(attestation: ProvenanceAttestation, version: ArtifactVersion) -> AuditObject:
    """The log names the attestation with its version's project and artifact, so the artifact's history shows who
    fetched its provenance."""
    project = version.artifact.project
    return AuditObject(
        type="provenance_attestation",
        id=str(attestation.pk),
        label=f"{version} provenance",
        project_id=project.pk,
        project_label=project.slug,
        artifact_id=version.artifact_id,
    )


def _key_in_use(key: keys.SigningKey, changes: ChangeSet) -> AttestationKey:
    """The row of the configured key, recorded on its first use. A key that is new to Provenant retires the current
    one (an operator who changed PROVENANT_ATTESTATION_SIGNING_KEY rotated by configuration); a retired key is
    refused, so putting an old key back cannot make it sign again."""
    now = timezone.now()
    row = AttestationKey.objects.select_for_update().filter(keyid=key.keyid).first()
    if row is not None and row.retired_at is not None:
        raise Conflict(
            f"The configured attestation key {key.keyid} was retired on {row.retired_at:%Y-%m-%d %H:%M} UTC and signs "
            "no more. Configure the current key, or a new one (manage.py rotate_attestation_key).",
            code="attestation_key_retired",
        )
    if row is None:
        for current in AttestationKey.objects.select_for_update().filter(retired_at__isnull=True):
            changes.update(current, retired_at=now)
            changes.audit(
                AuditAction.ATTESTATION_KEY_ROTATED,
                obj=audit_object(current),
                changes={"retired_at": [None, now], "successor": key.keyid, "how": "configuration"},
            )
        row, _ = AttestationKey.objects.get_or_create(keyid=key.keyid, defaults={"public_key": key.public_base64})
    if row.first_used_at is None:
        changes.update(row, first_used_at=now)
    return row


def _sign(version: ArtifactVersion) -> tuple[dict, keys.SigningKey]:
    """The envelope of `version`'s statement, signed by the configured key: the statement's bytes are its
    canonical JSON, so the same facts always give the same payload."""
    payload = canonical_json(provenance_statement(version_facts(version), installation()))
    key = keys.signing_key()
    return sign_envelope(payload, payload_type=IN_TOTO_PAYLOAD_TYPE, sign=key.private.sign, keyid=key.keyid), key


def provenance_attestation_get(*, version: ArtifactVersion) -> ProvenanceAttestation:
    """The signed attestation of `version` (artifact and project loaded), made and signed on the first request and
    handed out unchanged ever after; every hand-out is logged as a read, the first with the key that signed.

    Made on demand rather than at publish: versions published before attestations existed get one too, and a
    version published while its run is still going gets one once the run has ended, so its statement is final (the
    run's end time and status move until then; what the run was, its code, inputs and environment, never do). The
    caller checked that the user may read the version.
    """
    if (attestation := version_attestation(version)) is None:
        if version.run_id is not None:
            run = Run.objects.only("status", "external_id").get(pk=version.run_id)
            if not run.is_finished:
                raise Conflict(
                    f"{version} was produced by run '{run.external_id}', which is still {run.status}: its provenance "
                    "is signed once the run has ended, since its statement never changes after. Ask again when the "
                    "run is completed, failed or cancelled.",
                    code="run_not_finished",
                )
        envelope, key = _sign(version)
    with transaction.atomic(), ChangeSet() as changes:
        made = False
        if attestation is None:
            # The version's row lock makes two first requests sign one statement between them.
            ArtifactVersion.objects.select_for_update(no_key=True).filter(pk=version.pk).first()
            attestation = version_attestation(version)
            if attestation is None:
                row = _key_in_use(key, changes)
                attestation = ProvenanceAttestation.objects.create(artifact_version=version, envelope=envelope, key=row)
                made = True
        summary: dict = {"artifact_version": version.pk, "keyid": attestation.key.keyid}
        if made:
            summary["made"] = True
        changes.audit(AuditAction.PROVENANCE_ATTESTATION_READ, obj=_read_object(attestation, version), changes=summary)
    return attestation


def attestation_key_rotate() -> tuple[AttestationKey | None, AttestationKey]:
    """Replace the key file's key with a new one and retire the current key; answer (retired, new).

    The new public key is recorded at once, so it can be published before it signs anything; the retired one stays
    listed, and every envelope it signed still verifies. A key given as PROVENANT_ATTESTATION_SIGNING_KEY's text is
    rotated by changing that variable: this refuses, saying so.
    """
    if keys.key_from_settings():
        raise Conflict(
            "The attestation key is the text of PROVENANT_ATTESTATION_SIGNING_KEY: rotate it by setting that variable "
            "to a new Ed25519 key (openssl genpkey -algorithm ed25519) in every process; the new key is recorded and "
            "the old one retired when the new one first signs.",
            code="attestation_key_in_settings",
        )
    pem = keys.new_private_pem()
    new_key = keys.parse_private_pem(pem, "the new key")
    now = timezone.now()
    with transaction.atomic(), ChangeSet() as changes:
        retired = None
        for current in AttestationKey.objects.select_for_update().filter(retired_at__isnull=True):
            changes.update(current, retired_at=now)
            retired = current
        row = AttestationKey.objects.create(keyid=new_key.keyid, public_key=new_key.public_base64)
        changes.audit(
            AuditAction.ATTESTATION_KEY_ROTATED,
            obj=audit_object(row),
            changes={
                "retired": retired.keyid if retired else None,
                "keyid": row.keyid,
                "public_key": row.public_key,
                "how": "rotate_attestation_key",
            },
        )
        # Last: a failure to write the file undoes the records above; once it is written, every process signs
        # with the new key (keys.signing_key re-reads a replaced file).
        keys.write_key_file(keys.key_file(), pem, replace=True)
    return retired, row
