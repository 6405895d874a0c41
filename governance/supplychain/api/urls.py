"""The supply-chain area's API routes, under /api/v1/ (config/urls.py)."""

from django.urls import path

from governance.supplychain.api import scans

urlpatterns: list = [
    path("artifact-versions/<int:pk>/scan/", scans.ArtifactVersionScanView.as_view(), name="artifactversion-scan"),
    path("artifact-versions/<int:pk>/scans/", scans.ArtifactVersionScansView.as_view(), name="artifactversion-scans"),
]
