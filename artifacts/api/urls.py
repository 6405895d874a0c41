from django.urls import path
from rest_framework.routers import DefaultRouter

from artifacts.api import uploads, views

router = DefaultRouter(trailing_slash=True)
router.register("projects", views.ProjectViewSet, basename="project")
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("dataset-versions", views.DatasetVersionViewSet, basename="datasetversion")
router.register("runs", views.RunViewSet, basename="run")
router.register("artifacts", views.ArtifactViewSet, basename="artifact")
router.register("artifact-versions", views.ArtifactVersionViewSet, basename="artifactversion")

urlpatterns = [
    path("projects/<slug:slug>/blobs/<str:digest>", views.ProjectBlobView.as_view(), name="project-blob"),
    path(
        "projects/<slug:slug>/blobs/<str:digest>/state/",
        views.ProjectBlobStateView.as_view(),
        name="project-blob-state",
    ),
    path(
        "projects/<slug:slug>/blobs/<str:digest>/restore/",
        views.ProjectBlobRestoreView.as_view(),
        name="project-blob-restore",
    ),
    path("projects/<slug:slug>/uploads/", uploads.ProjectUploadsView.as_view(), name="project-uploads"),
    path("uploads/<uuid:pk>/", uploads.UploadView.as_view(), name="upload-detail"),
    path("lineage/<str:node_type>/<int:node_id>/", views.LineageView.as_view(), name="lineage"),
    *router.urls,
]
