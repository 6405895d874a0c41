"""The portal's governance pages, under the `portal` namespace (see config/urls.py)."""

from governance.views import audit, auth, dashboard, registry, reviews

urlpatterns = [
    *auth.urlpatterns,
    *dashboard.urlpatterns,
    *registry.urlpatterns,
    *audit.urlpatterns,
    *reviews.urlpatterns,
]
