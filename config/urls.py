from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from governance import urls as governance_portal

api_patterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (?script), so the page needs no inline script.
    path(
        "docs/",
        csp_update(settings.API_DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api:schema")),
        name="docs",
    ),
    path("audit/", include("governance.api.urls")),
    path("webhooks/", include("governance.api.webhook_urls")),
    path("", include("governance.api.registry_urls")),
    path("", include("artifacts.api.urls")),
]

# The portal for reviewers and auditors: server-rendered pages over the same services and access rule as the API.
portal_patterns = governance_portal.urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_patterns, "api"))),
    path("", include((portal_patterns, "portal"))),
]
