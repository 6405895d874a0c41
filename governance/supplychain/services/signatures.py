"""Trusting signing keys, attaching model signatures to versions, and checking them against the version's bytes.

Checks run in a worker (governance/supplychain/tasks.py) once the upload commits, and again when trust changes:
a key added re-checks the project's unverified signatures of its method (one uploaded before its key was
registered then verifies with no new upload), and a key revoked re-checks the signatures it had verified (they
turn unverified unless another trusted key made them). So `verified` always means "by a key trusted at the last
check", and the gate's selector also ignores revoked keys in the meantime.
"""

import logging
import tempfile
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from artifacts.models import ArtifactVersion, Blob, Project
from artifacts.storage.reads import iter_blob
from core.audit.actions import AuditAction
from core.changes import ChangeSet
from core.errors import InvalidInput
from core.events import EventType
from core.jobs import enqueue_on_commit
from governance.supplychain import modelsigning
from governance.supplychain.events import signature_events
from governance.supplychain.jobs import VERIFY_SIGNATURE
from governance.supplychain.models import TrustedSigningKey, VersionSignature
from governance.supplychain.models.signatures import MAX_BUNDLE_BYTES, MAX_PEM_CHARS
from governance.supplychain.selectors.signatures import signatures_to_recheck, trusted_keys

logger = logging.getLogger(__name__)


def trusted_key_add(
    *, project: Project, name: str, method: str, pem: str, added_by: AbstractBaseUser
) -> TrustedSigningKey:
    """Trust `pem` (a public key, or CA/root certificates) for `method` signatures in `project`; re-check the
    project's unverified signatures of that method once this commits."""
    if len(pem) > MAX_PEM_CHARS:
        raise InvalidInput(
            f"The PEM is over {MAX_PEM_CHARS} characters: send only the key or the CA chain.", field="pem"
        )
    try:
        fingerprint = modelsigning.pem_fingerprint(method, pem)
    except modelsigning.BundleError as error:
        raise InvalidInput(str(error), field="pem") from None
    with transaction.atomic(), ChangeSet() as changes:
        if TrustedSigningKey.objects.filter(project=project, name=name, revoked_at__isnull=True).exists():
            raise InvalidInput(
                f"Project '{project.slug}' already trusts a key named '{name}': revoke it or pick another name.",
                field="name",
            )
        try:
            with transaction.atomic():
                key = TrustedSigningKey.objects.create(
                    project=project, name=name, method=method, pem=pem, fingerprint=fingerprint, added_by=added_by
                )
        except IntegrityError:
            raise InvalidInput(f"Project '{project.slug}' already trusts a key named '{name}'.", field="name") from None
        changes.audit(
            AuditAction.TRUSTED_SIGNING_KEY_ADDED,
            obj=key,
            actor=added_by,
            changes={"name": name, "method": method, "fingerprint": fingerprint},
        )
        _recheck(signatures_to_recheck(project, method=method).values_list("id", flat=True))
    return key


def trusted_key_revoke(*, key: TrustedSigningKey, revoked_by: AbstractBaseUser) -> TrustedSigningKey:
    """Stop trusting `key`; re-check the signatures it verified once this commits. Revoking twice is refused."""
    with transaction.atomic(), ChangeSet() as changes:
        key = TrustedSigningKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is not None:
            raise InvalidInput(f"Key '{key.name}' was already revoked on {key.revoked_at:%Y-%m-%d}.")
        changed = changes.update(key, revoked_at=timezone.now(), revoked_by=revoked_by)
        changes.audit(AuditAction.TRUSTED_SIGNING_KEY_REVOKED, obj=key, actor=revoked_by, changes=changed)
        _recheck(key.verified_signatures.values_list("id", flat=True))
    return key


def signature_upload(
    *, artifact_version: ArtifactVersion, bundle: object, uploaded_by: AbstractBaseUser
) -> VersionSignature:
    """Attach a model-signing bundle to a version, as uploaded; its check is queued for when this commits.

    The bundle's shape is checked now (a clear 400 rather than a signature that can never verify); its signature
    and the bytes are checked by the worker, since reading a multi-GB blob does not fit in a request."""
    try:
        facts = modelsigning.read_bundle(bundle)
    except modelsigning.BundleError as error:
        raise InvalidInput(str(error), field="bundle") from None
    with transaction.atomic(), ChangeSet() as changes:
        signature = VersionSignature.objects.create(
            artifact_version=artifact_version, bundle=bundle, method=facts.method, uploaded_by=uploaded_by
        )
        signature_events(changes, signature, EventType.VERSION_SIGNATURE_UPLOADED, actor=uploaded_by)
        changes.audit(
            AuditAction.VERSION_SIGNATURE_UPLOADED,
            obj=signature,
            actor=uploaded_by,
            changes={"method": facts.method, "signed_file": facts.resource, "signed_digest": facts.digest},
        )
        _recheck([signature.pk])
    return signature


def bundle_size_problem(size: int) -> str | None:
    """Why a body of `size` bytes cannot be a bundle, for the API to refuse before parsing it."""
    if size > MAX_BUNDLE_BYTES:
        return f"A signature bundle is at most {MAX_BUNDLE_BYTES // 1024} KiB; this body is {size} bytes."
    return None


def signature_verify(*, signature: VersionSignature) -> VersionSignature:
    """Check a signature against the version's stored bytes and the project's trusted keys; record the verdict.

    Call it outside any transaction: the bytes are streamed from storage to a temporary file (the library hashes
    paths), so a 1 GiB version costs 1 GiB of temporary disk and one read and one hash of it (benchmarks/signing.py);
    nothing is locked meanwhile. The verdict is written under the signature's row lock, unless a check that began
    later has already written one. A storage read error propagates with nothing recorded, so the task retries.
    """
    started_at = timezone.now()
    version = signature.artifact_version
    blob = version.blob
    keys = [
        modelsigning.TrustedKey(id=key.pk, name=key.name, method=key.method, pem=key.pem)
        for key in trusted_keys(version.artifact.project)
    ]
    facts = modelsigning.read_bundle(signature.bundle)
    if blob.state == Blob.State.CORRUPT or blob.is_collected:
        verdict = modelsigning.Verdict(
            False, None, f"The version's bytes are {'corrupt' if blob.state == Blob.State.CORRUPT else 'gone'}."
        )
    elif not any(key.method == facts.method for key in keys):
        # Nothing to read: no key could verify it whatever the bytes.
        verdict = modelsigning.Verdict(False, None, modelsigning.no_key_sentence(facts.method))
    else:
        verdict = _verify_stored(signature, facts, blob, keys)
    with transaction.atomic(), ChangeSet() as changes:
        signature = VersionSignature.objects.select_for_update(no_key=True).get(pk=signature.pk)
        if signature.verified_at is not None and signature.verified_at > started_at:
            return signature
        before = signature.verified
        changes.update(
            signature,
            verified=verdict.verified,
            trusted_key_id=verdict.key_id,
            detail=verdict.detail[:1000],
            verified_at=started_at,
        )
        signature_events(changes, signature, EventType.VERSION_SIGNATURE_CHECKED)
        changes.audit(
            AuditAction.VERSION_SIGNATURE_CHECKED,
            obj=signature,
            changes={
                "verified": [before, signature.verified],
                "trusted_key": verdict.key_id,
                "detail": signature.detail,
                "checked_digest": blob.prefixed_digest,
            },
        )
    logger.info("Signature %s of %s: %s", signature.pk, version, verdict.detail)
    return signature


def _verify_stored(
    signature: VersionSignature, facts: modelsigning.BundleFacts, blob: Blob, keys: list[modelsigning.TrustedKey]
) -> modelsigning.Verdict:
    with tempfile.TemporaryDirectory(prefix="provenant-model-") as scratch:
        with iter_blob(blob.storage_key) as chunks:
            model_path = modelsigning.lay_out(facts, Path(scratch), chunks)
        return modelsigning.verify(signature.bundle, facts, model_path, keys)


def _recheck(signature_ids) -> None:
    for signature_id in signature_ids:
        enqueue_on_commit(VERIFY_SIGNATURE, signature_id, timezone.now().isoformat())
