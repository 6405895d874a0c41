"""The staff console for governance: API tokens can be looked at and revoked, never added or edited here.

Tokens are issued with `manage.py issue_token`, which shows the secret once; the admin never sees it.
"""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from governance.errors import DomainError
from governance.models import ApiToken
from governance.services import api_token_revoke


def yes_no_filter(title: str, condition: Callable[[], Q]) -> type[admin.SimpleListFilter]:
    """A list filter offering Yes (rows matching `condition()`, evaluated per request) and No (the others)."""

    class YesNoFilter(admin.SimpleListFilter):
        parameter_name = title

        def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
            return [("yes", "Yes"), ("no", "No")]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            if self.value() == "yes":
                return queryset.filter(condition())
            if self.value() == "no":
                return queryset.exclude(condition())
            return queryset

    YesNoFilter.title = title
    return YesNoFilter


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
            self.message_user(request, f"Skipped {len(refusals)}: " + " ".join(refusals), level=messages.WARNING)

    @admin.display(ordering="prefix")
    def token(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.display(boolean=True, ordering="expires_at")
    def expired(self, token: ApiToken) -> bool:
        return token.is_expired
