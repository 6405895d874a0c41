"""API tokens and service accounts in the admin: looked at and revoked, never added or edited here. Tokens are
issued through the API, the portal or `manage.py issue_token`, which show the secret once; the admin never sees
it. Staff who are not superusers see the tokens they manage (their own, their projects' service accounts')."""

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from core.admin import skipped, yes_no_filter
from core.errors import DomainError
from governance.access.models import ApiToken, ServiceAccount
from governance.access.selectors import tokens_manageable_by
from governance.access.services import api_token_revoke

RevokedFilter = yes_no_filter("revoked", lambda: Q(revoked_at__isnull=False))
ExpiredFilter = yes_no_filter("expired", lambda: Q(expires_at__lte=timezone.now()))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "token",
        "name",
        "user",
        "scope",
        "project",
        "created_at",
        "expires_at",
        "expired",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    )
    list_filter = ("scope", RevokedFilter, ExpiredFilter)
    list_select_related = ("user", "project")
    search_fields = ("^prefix", "name", "user__username")
    date_hierarchy = "created_at"
    # The hash identifies nothing a person can use, so it is not shown.
    fields = (
        "prefix",
        "name",
        "user",
        "scope",
        "project",
        "created_at",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
    )
    actions = ["revoke_tokens"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        """Superusers see every token; other staff those they manage, by the same rule as the API's list."""
        tokens = super().get_queryset(request)
        if request.user.is_superuser:
            return tokens
        return tokens.filter(pk__in=tokens_manageable_by(request.user).values("pk"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Revoking is the one change a token admits, so it takes the model's change permission."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked, refusals = [], []
        for token in queryset:
            try:
                api_token_revoke(token=token, revoked_by=request.user)
            except DomainError as error:
                refusals.append(error.message)
            else:
                revoked.append(f"{token.prefix}…")
                self.log_change(request, token, "Revoked.")
        if revoked:
            self.message_user(
                request, f"Revoked {len(revoked)} token(s): {', '.join(revoked)}.", level=messages.SUCCESS
            )
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.WARNING)

    @admin.display(ordering="prefix")
    def token(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.display(boolean=True, ordering="expires_at")
    def expired(self, token: ApiToken) -> bool:
        return token.is_expired


@admin.register(ServiceAccount)
class ServiceAccountAdmin(admin.ModelAdmin):
    """Service accounts are made with `manage.py create_user --service-account --owner <project>`; here they are
    looked at. Their roles are role grants, listed and reviewed with everyone's."""

    list_display = ("user", "project", "created_at")
    list_select_related = ("user", "project")
    search_fields = ("user__username", "project__slug")
    fields = ("user", "project", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ServiceAccount | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ServiceAccount | None = None) -> bool:
        return False
