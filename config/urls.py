from allauth.account.decorators import secure_admin_login
from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import include, path, re_path

from config import health, metrics
from core.api.docs import DocsView, SchemaView
from governance.portal import urls as governance_portal

api_patterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path(
        "docs/",
        csp_update(settings.API_DOCS_CSP)(DocsView.as_view(url_name="api:schema")),
        name="docs",
    ),
    path("audit/", include("governance.audit.api.urls")),
    path("webhooks/", include("governance.webhooks.api.urls")),
    path("", include("governance.access.api.urls")),
    path("", include("governance.lifecycle.api.urls")),
    path("", include("governance.registry.api.urls")),
    path("", include("governance.lifecycle.api.storage_urls")),
    path("", include("governance.supplychain.api.urls")),
    path("", include("artifacts.api.urls")),
]

# The portal for reviewers and auditors: server-rendered pages over the same services and access rule as the API.
portal_patterns = governance_portal.urlpatterns

# Errors Django answers itself (an unknown address, a body too big, an unexpected exception): JSON under /api/, the
# portal's own pages elsewhere.
handler400 = "core.api.exceptions.bad_request"
handler403 = "core.api.exceptions.permission_denied"
handler404 = "core.api.exceptions.page_not_found"
handler500 = "core.api.exceptions.server_error"

# The admin signs in through the portal's sign-in (a password, a second factor, the lockouts), never a form of its own:
# an anonymous visitor is sent there with `next`, a signed-in person who is not staff is refused.
admin.site.login = secure_admin_login(admin.site.login)


def not_offered(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    raise Http404("Accounts are made by an administrator; passwords are reset by one, not by e-mail.")


#: allauth's pages Provenant does not offer: self-signup, e-mail addresses and their confirmation, resetting or
#: setting a password by e-mail, sign-in and re-authentication by a code sent by e-mail. Their names stay
#: reversible (allauth's own templates may name them); the addresses answer 404 before allauth sees them.
NOT_OFFERED = r"^accounts/(signup|email|confirm-email|password/set|password/reset|login/code|reauthenticate/code)/"

urlpatterns = [
    # For load balancers and Prometheus (config/health.py, config/metrics.py): outside /api/ and its schema.
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_patterns, "api"))),
    path("", include((portal_patterns, "portal"))),
    # django-allauth's pages: second factors (/accounts/2fa/), re-authentication, password change. The portal's own
    # sign-in and sign-out above come first at their addresses.
    re_path(NOT_OFFERED, not_offered),
    path("accounts/", include("allauth.urls")),
]
