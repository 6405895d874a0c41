from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.audit.api import views

# A SimpleRouter: the API's root view is artifacts' DefaultRouter's; a second one would shadow it.
router = SimpleRouter(trailing_slash=True)
router.register("entries", views.AuditEntryViewSet, basename="auditentry")
router.register("tree-heads", views.TreeHeadViewSet, basename="treehead")

urlpatterns = [
    path("export/", views.AuditExportView.as_view(), name="audit-export"),
    path("public-key/", views.AuditPublicKeyView.as_view(), name="audit-public-key"),
    *router.urls,
]
