"""The supply-chain area's API routes, under /api/v1/ (config/urls.py)."""

from django.urls import path

from governance.supplychain.api import signatures

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
]
