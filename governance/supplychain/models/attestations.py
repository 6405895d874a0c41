"""Provenance attestations: the signed statement of where a version's bytes came from, and every key that signed."""

from django.db import models

from artifacts.models import ArtifactScopedQuerySet
from core.models.base import WriteOnceModel


class AttestationKey(models.Model):
    """A public key that signs, or once signed, provenance attestations.

    Every key ever used is kept, retired or not, so an envelope signed before a rotation still verifies: verifiers
    fetch the list (GET /api/v1/attestations/keys/) and trust the key an envelope names. One key at most is current
    (the database holds it), and a retired key never signs again.
    """

    ALGORITHM = "ed25519"

    keyid = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the raw public key, in hex.")
    algorithm = models.CharField(max_length=16, default=ALGORITHM, editable=False)
    public_key = models.CharField(max_length=64, unique=True, help_text="The 32 raw bytes of the key, in base64.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When Provenant first saw the key.")
    first_used_at = models.DateTimeField(null=True, blank=True, help_text="When it first signed an attestation.")
    retired_at = models.DateTimeField(null=True, blank=True, help_text="When a newer key took over; it signs no more.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["algorithm"], condition=models.Q(retired_at__isnull=True), name="attestation_key_one_current"
            ),
            models.CheckConstraint(condition=models.Q(algorithm="ed25519"), name="attestation_key_ed25519"),
            models.CheckConstraint(condition=models.Q(keyid__regex=r"^[0-9a-f]{64}$"), name="attestation_keyid_shape"),
        ]

    def __str__(self) -> str:
        return f"attestation key {self.keyid[:16]}"


class ProvenanceAttestationQuerySet(ArtifactScopedQuerySet):
    artifact_path = "artifact_version__artifact_id"


class ProvenanceAttestation(WriteOnceModel):
    """The DSSE envelope of one artifact version's in-toto provenance statement, signed once and kept as signed.

    Made the first time someone asks for it, then never changed (the model refuses, and so does a trigger): a
    verifier who kept an earlier copy must find the same bytes and the same signature later.
    """

    artifact_version = models.OneToOneField(
        "artifacts.ArtifactVersion", on_delete=models.PROTECT, related_name="provenance_attestation"
    )
    envelope = models.JSONField(help_text="The DSSE envelope: payload (base64 statement), payloadType, signatures.")
    key = models.ForeignKey(AttestationKey, on_delete=models.PROTECT, related_name="attestations")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProvenanceAttestationQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"provenance of artifact version {self.artifact_version_id}"
