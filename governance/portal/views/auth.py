"""Sign-in and sign-out. Django's own views: sessions, CSRF, `next` checked against this host; django-axes throttles
failed attempts (config/settings/portal.py) and the audit log records each (core/audit/signals.py)."""

from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
