"""The storage accounting routes (governance/lifecycle/api/storage.py), included under the API's root."""

from django.urls import path

from governance.lifecycle.api import storage

urlpatterns = [
    path("storage/", storage.StorageView.as_view(), name="storage"),
    path("projects/<slug:slug>/storage/", storage.ProjectStorageView.as_view(), name="project-storage"),
]
