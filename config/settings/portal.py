"""The reviewer and auditor portal: sign-in and its throttling (django-axes), where people land."""

from datetime import timedelta

from config.settings.env import env_positive_int

LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:dashboard"
LOGOUT_REDIRECT_URL = "portal:login"

# Sign-in throttling: after PROVENANT_LOGIN_FAILURE_LIMIT failures for one username from one address, that pair
# is locked out for PROVENANT_LOGIN_LOCKOUT_MINUTES (the portal's and the admin's sign-in alike). A success resets
# the count. The address is the one the audit log records (PROVENANT_TRUSTED_PROXY_HOPS).
AXES_FAILURE_LIMIT = env_positive_int("PROVENANT_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_positive_int("PROVENANT_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "portal/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "core.audit.context.client_address"
# Failed sign-ins are already in the audit log (core/audit/signals.py); axes keeps only what throttling needs.
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_VERBOSE = False
# django-allauth's sign-in form names the username `login`; the credentials Django's auth signals carry say `username`.
AXES_USERNAME_CALLABLE = "core.accounts.attempted_username"
