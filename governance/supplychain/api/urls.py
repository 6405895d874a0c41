"""The supply-chain area's API routes, under /api/v1/ (config/urls.py)."""

from django.urls import path

from governance.supplychain.api import attestations

urlpatterns: list = [
    path(
        "artifact-versions/<int:pk>/attestation/",
        attestations.VersionAttestationView.as_view(),
        name="artifactversion-attestation",
    ),
    path("attestations/keys/", attestations.AttestationKeysView.as_view(), name="attestation-keys"),
]
