"""Role grants in the admin: given and revoked through the grant services, like everywhere else. A grant is never
edited (revoke it and grant again) and its row is never deleted directly. django-guardian's own object-permission
admin is not used: it writes permission rows behind the grants' back."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.safestring import SafeString

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.access.services import role_grant, role_revoke
from artifacts.models import RoleGrant
from core.accounts import require_step_up
from core.admin import ServiceWrittenAdmin, VisibleChoicesMixin, changelist_link, skipped
from core.errors import DomainError
from governance.access.models import AccessReviewItem


class RoleGrantForm(forms.ModelForm):
    """Grant a role on a project, or on one artifact of it, to a user or a group named as people know them.

    Names rather than pickers for the grantee: staff who manage a project's members need not be allowed to
    browse every user account, and a name typed wrong says so.
    """

    username = forms.CharField(required=False, max_length=150, help_text="The user to grant the role to…")
    group_name = forms.CharField(required=False, max_length=150, label="Group", help_text="…or the group.")

    request: HttpRequest  # set by RoleGrantAdmin.get_form: who may grant on what depends on who asks

    class Meta:
        model = RoleGrant
        fields = ("project", "artifact", "role")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "project" in self.fields:  # the add form; a grant's own page shows it read-only
            self.fields["project"].required = False
            self.fields["project"].help_text = "The project to grant the role on; it may stay empty for an artifact."
            self.fields["artifact"].help_text = "Only this artifact; leave empty for a project-wide grant."

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        project, artifact = data.get("project"), data.get("artifact")
        if project is not None and artifact is not None and artifact.project_id != project.pk:
            self.add_error("artifact", f"Artifact {artifact} is not in project {project.slug}.")
        elif (target := artifact or project) is None:
            if "project" not in self.errors and "artifact" not in self.errors:
                self.add_error("project", "Choose the project, or the artifact, to grant the role on.")
        elif not can(self.request.user, Verb.MANAGE, target):
            field = "artifact" if artifact is not None else "project"
            self.add_error(field, f"Granting roles on {target} takes the maintainer role on it.")
        else:
            data["target"] = target
        username, group_name = data.get("username", "").strip(), data.get("group_name", "").strip()
        if bool(username) == bool(group_name):
            self.add_error("username", "Name one user or one group.")
        elif username:
            data["user"] = get_user_model().objects.filter(username=username).first()
            if data["user"] is None:
                self.add_error("username", f"There is no user named '{username}'.")
        else:
            data["group"] = Group.objects.filter(name=group_name).first()
            if data["group"] is None:
                self.add_error("group_name", f"There is no group named '{group_name}'.")
        return data


class NullSplitFilter(admin.SimpleListFilter):
    """Two choices splitting the rows on whether `field` is empty: `when_empty` or the other one."""

    field = ""
    options: tuple[tuple[str, str], ...] = ()
    when_empty = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return list(self.options)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in dict(self.options):
            return queryset.filter(**{f"{self.field}__isnull": self.value() == self.when_empty})
        return queryset


class GrantScopeFilter(NullSplitFilter):
    title = parameter_name = "scope"
    field, when_empty = "artifact", "project"
    options = (("project", "Project-wide"), ("artifact", "One artifact"))


class GranteeKindFilter(NullSplitFilter):
    title = parameter_name = "grantee"
    field, when_empty = "user", "group"
    options = (("user", "Users"), ("group", "Groups"))


@admin.register(RoleGrant)
class RoleGrantAdmin(VisibleChoicesMixin, ServiceWrittenAdmin):
    """Who holds which role, thousands of rows a page at a time: every row's grantee, project, artifact and
    granter come in the page's one query, and nothing on the page lists every user, group or project."""

    form = RoleGrantForm
    list_display = ("grant", "grantee", "role", "scope", "project", "granted_by", "granted_at")
    list_filter = ("role", GrantScopeFilter, GranteeKindFilter)
    list_select_related = ("user", "group", "project", "artifact__project", "granted_by")
    list_per_page = 100
    show_full_result_count = False  # one COUNT(*) of every grant per page is not worth it
    search_fields = ("user__username", "group__name", "project__slug", "artifact__name")
    date_hierarchy = "granted_at"
    autocomplete_fields = ("project", "artifact")
    fields = ("project", "artifact", "username", "group_name", "role")
    detail_fields = ("project", "artifact", "user", "group", "role", "granted_by", "granted_at", "review_items")
    actions = ["revoke_grants"]

    def get_form(self, request: HttpRequest, obj: RoleGrant | None = None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_fields(self, request: HttpRequest, obj: RoleGrant | None = None) -> tuple[str, ...]:
        return self.detail_fields if obj else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: RoleGrant | None = None) -> tuple[str, ...]:
        return self.detail_fields if obj else ()

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it deletes rows; revoke_grants goes through the service
        return actions

    def has_change_permission(self, request: HttpRequest, obj: RoleGrant | None = None) -> bool:
        """A grant is never edited: revoke it and grant what is wanted instead, so each change is on record."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RoleGrant | None = None) -> bool:
        """Deleting is revoking: it takes the model's delete permission and the maintainer role on the object."""
        allowed = admin.ModelAdmin.has_delete_permission(self, request, obj)
        return allowed and (obj is None or can(request.user, Verb.MANAGE, obj.artifact or obj.project))

    def create(self, request: HttpRequest, data: dict[str, Any]) -> RoleGrant:
        grant, created = role_grant(
            obj=data["target"],
            role=data["role"],
            user=data.get("user"),
            group=data.get("group"),
            granted_by=request.user,
        )
        if not created:
            self.message_user(request, f"{grant} was already granted; nothing changed.", level=messages.WARNING)
        return grant

    def delete_model(self, request: HttpRequest, obj: RoleGrant) -> None:
        role_revoke(grant=obj, revoked_by=request.user)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            # The last maintainer of a project, say: the admin's transaction rolled back, log entry included.
            self.message_user(request, error.message, level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:artifacts_rolegrant_change", args=[object_id]))

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        self.message_user(request, f"Revoked {obj_display}.", level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:artifacts_rolegrant_changelist"))

    @admin.action(description="Revoke selected grants", permissions=["delete"])
    def revoke_grants(self, request: HttpRequest, queryset: QuerySet[RoleGrant]) -> None:
        require_step_up(request)  # revoking grants in bulk: a fresh authentication first (core/accounts.py)
        revoked, refusals = [], []
        for grant in queryset.select_related("user", "group", "project", "artifact__project"):
            if not self.has_delete_permission(request, grant):
                refusals.append(f"Revoking {grant} takes the maintainer role on its {grant.scope_label}.")
                continue
            try:
                role_revoke(grant=grant, revoked_by=request.user)
            except DomainError as error:
                refusals.append(error.message)
            else:
                revoked.append(grant)
        if revoked:
            self.log_deletions(request, revoked)
            self.message_user(request, f"Revoked {len(revoked)} grant(s).", level=messages.SUCCESS)
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.WARNING)

    @admin.display(description="grant", ordering="pk")
    def grant(self, grant: RoleGrant) -> str:
        return f"#{grant.pk}"

    @admin.display(ordering="user__username")
    def grantee(self, grant: RoleGrant) -> str:
        return grant.grantee_label

    @admin.display(ordering="artifact__name")
    def scope(self, grant: RoleGrant) -> str:
        return f"artifact {grant.artifact.name}" if grant.artifact_id else "project-wide"

    @admin.display(description="reviewed in")
    def review_items(self, grant: RoleGrant) -> SafeString:
        return changelist_link(AccessReviewItem, "access reviews of this grant", grant__id__exact=grant.pk)
