"""The supply-chain area's API routes, under /api/v1/ (config/urls.py)."""

from django.urls import path

from governance.supplychain.api import attestations, scans, signatures

urlpatterns: list = [
    path("projects/<slug:slug>/trusted-keys/", signatures.TrustedKeyListView.as_view(), name="trusted-key-list"),
    path(
        "projects/<slug:slug>/trusted-keys/<int:pk>/revoke/",
        signatures.TrustedKeyRevokeView.as_view(),
        name="trusted-key-revoke",
    ),
    path(
        "artifact-versions/<int:pk>/signatures/",
        signatures.VersionSignatureListView.as_view(),
        name="artifactversion-signatures",
    ),
    path(
        "artifact-versions/<int:pk>/attestation/",
        attestations.VersionAttestationView.as_view(),
        name="artifactversion-attestation",
    ),
    path("attestations/keys/", attestations.AttestationKeysView.as_view(), name="attestation-keys"),
    path("artifact-versions/<int:pk>/scan/", scans.ArtifactVersionScanView.as_view(), name="artifactversion-scan"),
    path("artifact-versions/<int:pk>/scans/", scans.ArtifactVersionScansView.as_view(), name="artifactversion-scans"),
]
