"""API tokens in the admin: looked at and revoked, never added or edited here. They are issued with
`manage.py issue_token`, which shows the secret once; the admin never sees it."""

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from core.admin import skipped, yes_no_filter
from core.errors import DomainError
from governance.access.models import ApiToken
from governance.access.services import api_token_revoke

RevokedFilter = yes_no_filter("revoked", lambda: Q(revoked_at__isnull=False))
ExpiredFilter = yes_no_filter("expired", lambda: Q(expires_at__lte=timezone.now()))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("token", "name", "user", "created_at", "expires_at", "expired", "last_used_at", "revoked_at")
    list_filter = (RevokedFilter, ExpiredFilter)
    list_select_related = ("user",)
    search_fields = ("^prefix", "name", "user__username")
    date_hierarchy = "created_at"
    # The hash identifies nothing a person can use, so it is not shown.
    fields = ("prefix", "name", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    actions = ["revoke_tokens"]

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
                api_token_revoke(token=token)
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
