"""The portal's governance pages, under the `portal` namespace (see config/urls.py)."""

from governance.portal.views import (
    audit,
    auth,
    catalog,
    dashboard,
    datasets,
    inbox,
    lifecycle,
    projects,
    promotions,
    registry,
    reviews,
    runs,
    tokens,
)

urlpatterns = [
    *auth.urlpatterns,
    *dashboard.urlpatterns,
    *registry.urlpatterns,
    *promotions.urlpatterns,
    *catalog.urlpatterns,
    *runs.urlpatterns,
    *datasets.urlpatterns,
    *projects.urlpatterns,
    *audit.urlpatterns,
    *reviews.urlpatterns,
    *lifecycle.urlpatterns,
    *inbox.urlpatterns,
    *tokens.urlpatterns,
]
