"""Reads of model signatures and trusted keys: for the API, the portal, and the promotion gate."""

from django.db.models import QuerySet

from artifacts.models import ArtifactVersion, Project
from governance.supplychain.models import TrustedSigningKey, VersionSignature


def version_trusted_signatures(artifact_version: ArtifactVersion) -> list[VersionSignature]:
    """The version's signatures verified, at their last check, by a key its project still trusts: what the
    promotion gate "signed by a trusted key" reads. A key revoked since counts no more, even before the re-check
    its revocation queues has run."""
    return list(
        VersionSignature.objects.filter(
            artifact_version=artifact_version, verified=True, trusted_key__revoked_at__isnull=True
        )
        .select_related("trusted_key")
        .order_by("id")
    )


def version_signatures(artifact_version: ArtifactVersion) -> list[VersionSignature]:
    """Every signature of a version with its verdict, oldest first (the portal's version page, the API's list)."""
    return list(
        VersionSignature.objects.filter(artifact_version=artifact_version)
        .select_related("trusted_key", "uploaded_by")
        .order_by("id")
    )


def trusted_keys(project: Project) -> QuerySet[TrustedSigningKey]:
    """The keys a project trusts now."""
    return TrustedSigningKey.objects.filter(project=project, revoked_at__isnull=True).order_by("name", "id")


def signatures_to_recheck(project: Project, *, method: str) -> QuerySet[VersionSignature]:
    """The project's signatures of `method` not verified at their last check: a key added now may verify them."""
    return VersionSignature.objects.filter(
        artifact_version__artifact__project=project, method=method, verified=False
    ).order_by("id")
