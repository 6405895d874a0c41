"""Sign-in and sign-out. Signing in is django-allauth's (config/settings/accounts.py): a password, then a second
factor for those who have one (core/accounts.py); sessions, CSRF and `next` checked against this host as before.
django-axes throttles failed attempts (config/settings/portal.py) and the audit log records each
(core/audit/signals.py). Signing out is Django's own view: a POST, no confirmation page."""

from allauth.account import views as account_views
from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path("accounts/login/", account_views.login, name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
