"""The portal's governance pages, under the `portal` namespace (see config/urls.py)."""

from governance.portal.views import audit, auth, catalog, dashboard, lifecycle, promotions, registry, reviews

urlpatterns = [
    *auth.urlpatterns,
    *dashboard.urlpatterns,
    *registry.urlpatterns,
    *promotions.urlpatterns,
    *catalog.urlpatterns,
    *audit.urlpatterns,
    *reviews.urlpatterns,
    *lifecycle.urlpatterns,
]
