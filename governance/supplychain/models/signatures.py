"""Model signatures in the OpenSSF model-signing format, and the keys a project trusts to make them.

A signature is a Sigstore bundle (a DSSE envelope over an in-toto statement listing the model's files and their
hashes) as `model_signing sign` writes it. It is stored as uploaded and checked by the server against the bytes
of the version's blob and the project's trusted keys (governance/supplychain/services/signatures.py).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.models import ArtifactScopedQuerySet

#: Bundles are small (a manifest of one file's digest plus a signature and maybe a certificate chain); anything
#: much larger is not one.
MAX_BUNDLE_BYTES = 256 * 1024
MAX_PEM_CHARS = 64 * 1024


class SigningMethod(models.TextChoices):
    KEY = "key", "Elliptic-curve public key"
    CERTIFICATE = "certificate", "Certificate chain (CA or root certificates)"


class TrustedSigningKey(models.Model):
    """A public key or a certificate chain whose signatures a project trusts. Revoked, never deleted: the
    signatures it verified keep naming it, and the audit log says when trust ended."""

    project = models.ForeignKey("artifacts.Project", on_delete=models.PROTECT, related_name="trusted_signing_keys")
    name = models.CharField(max_length=128, help_text="Who or what holds the private key, e.g. 'release-ci'.")
    method = models.CharField(max_length=16, choices=SigningMethod.choices)
    pem = models.TextField(
        help_text="key: the signer's public key (PEM). certificate: the CA or root certificates (PEM, one or more)."
    )
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the PEM's DER contents, hex.")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name", "id"]
        constraints = [
            # Two live keys of one name would make "signed by release-ci" ambiguous.
            models.UniqueConstraint(
                fields=["project", "name"], condition=Q(revoked_at__isnull=True), name="trusted_key_live_name_once"
            ),
            models.CheckConstraint(condition=Q(method__in=SigningMethod.values), name="trusted_key_method_known"),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_by__isnull=False), name="trusted_key_revoked_by_whom"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"

    @property
    def is_trusted(self) -> bool:
        return self.revoked_at is None


class VersionSignatureQuerySet(ArtifactScopedQuerySet):
    """Signatures are seen as the artifact versions they sign."""

    artifact_path = "artifact_version__artifact_id"


class VersionSignature(models.Model):
    """One signature bundle attached to an artifact version, with the server's last verdict on it.

    The bundle never changes; `verified`, `trusted_key`, `detail` and `verified_at` are the result of the latest
    check (none yet while `verified_at` is null)."""

    artifact_version = models.ForeignKey(
        "artifacts.ArtifactVersion", on_delete=models.PROTECT, related_name="signatures"
    )
    bundle = models.JSONField(help_text="The Sigstore bundle as uploaded (model_signing's .sig file).")
    method = models.CharField(max_length=16, choices=SigningMethod.choices)
    verified = models.BooleanField(default=False)
    trusted_key = models.ForeignKey(
        TrustedSigningKey, on_delete=models.PROTECT, null=True, blank=True, related_name="verified_signatures"
    )
    detail = models.CharField(max_length=1000, default="Not checked yet.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True, help_text="When the last check began.")

    objects = VersionSignatureQuerySet.as_manager()

    class Meta:
        ordering = ["artifact_version", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(method__in=SigningMethod.values), name="version_signature_method_known"),
            # A verified signature names the key that verified it, and was checked.
            models.CheckConstraint(
                condition=Q(verified=False) | (Q(trusted_key__isnull=False) & Q(verified_at__isnull=False)),
                name="version_signature_verified_by_key",
            ),
        ]

    def __str__(self) -> str:
        return f"signature {self.pk} of {self.artifact_version}"
