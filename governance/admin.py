"""The staff console for governance.

API tokens can be looked at and revoked, never added or edited here: they are issued with
`manage.py issue_token`, which shows the secret once; the admin never sees it.

Role grants are given and revoked here through the grant services, like everywhere else; a grant is never
edited (revoke it and grant again) and its row is never deleted directly. django-guardian's own object-permission
admin is not used: it writes permission rows behind the grants' back.

Access reviews are opened, decided (in bulk on the item list, or one by one on an item's page) and reported on
through their services.

The audit log and its signed tree heads are shown read-only, to each auditor as much as they may read.

Webhook endpoints are added, edited, rotated, tested and deleted through the webhook services, by the maintainers
of their project; their deliveries (with every attempt) and the events are a record, shown read-only to the
project's maintainers and auditors, and a delivery is re-sent through its service.

The model registry is for maintainers: models are added and described, and a project's promotion policies saved
version after version, through the registry services; model versions, promotion requests and the stage history are a
record, read-only. Requests are approved, rejected, withdrawn and re-checked, and a model's production rolled back,
only by admin actions that call the promotion services as the logged-in user, each refusal reported in the
service's words.
"""

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename, get_user_model
from django.contrib.auth.models import Group
from django.core import validators
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from artifacts.admin import (
    NamedInProjectForm,
    ServiceWrittenAdmin,
    ViewOnlyMixin,
    VisibleOnlyAdmin,
    admin_link,
    changelist_link,
    json_block,
    short_digest,
)
from artifacts.models import Project
from governance import audit_tree, outbound, selectors
from governance.errors import DomainError
from governance.events import SUBSCRIBABLE_TYPES, EventType
from governance.exports import csv_lines
from governance.models import (
    AccessReviewCampaign,
    AccessReviewItem,
    ApiToken,
    AuditEntry,
    Event,
    ModelVersion,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    RoleGrant,
    SignedTreeHead,
    StageTransition,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from governance.permissions import can, is_unrestricted, projects_where
from governance.roles import Verb
from governance.services import (
    api_token_revoke,
    campaign_open,
    item_decide,
    items_decide,
    role_grant,
    role_revoke,
)
from governance.services.audit import format_time
from governance.services.promotions import (
    MAX_COMMENT_CHARS,
    MAX_JUSTIFICATION_CHARS,
    model_rollback,
    promotion_apply,
    promotion_approve,
    promotion_reject,
    promotion_withdraw,
)
from governance.services.registry import (
    MAX_CARD_CHARS,
    POLICY_FIELDS,
    policy_current,
    promotion_policy_clean,
    promotion_policy_set,
    registered_model_create,
    registered_model_update,
)
from governance.services.webhooks import (
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_test,
    webhook_endpoint_update,
    webhook_secret_rotate,
)


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


def skipped(refusals: list[str], shown: int = 10) -> str:
    """`Skipped N: reason. reason. …`, naming the first `shown` reasons (a bulk action may refuse thousands)."""
    more = f" … and {len(refusals) - shown} more." if len(refusals) > shown else ""
    return f"Skipped {len(refusals)}: " + " ".join(refusals[:shown]) + more


class VisibleChoicesMixin:
    """The projects and artifacts offered (and accepted) in a form are those the user may see: one they may not
    is refused like one that does not exist, and its name is never shown back."""

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name in ("project", "artifact"):
            field.queryset = field.queryset.visible_to(request.user)
        return field


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


# Role grants -------------------------------------------------------------------------------------------


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
            return HttpResponseRedirect(reverse("admin:governance_rolegrant_change", args=[object_id]))

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        self.message_user(request, f"Revoked {obj_display}.", level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:governance_rolegrant_changelist"))

    @admin.action(description="Revoke selected grants", permissions=["delete"])
    def revoke_grants(self, request: HttpRequest, queryset: QuerySet[RoleGrant]) -> None:
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


# Access reviews ----------------------------------------------------------------------------------------


def default_due_at() -> datetime:
    return timezone.now() + timedelta(days=settings.PROVENANT_ACCESS_REVIEW_DUE_DAYS)


class CampaignOpenForm(forms.ModelForm):
    """Open a review of one project's grants, or of every project's (superusers only)."""

    reviewer_usernames = forms.CharField(
        required=False,
        label="Reviewers",
        help_text="Usernames, separated by commas or spaces, to review every grant instead of each project's "
        "maintainers. Leave empty for the maintainers.",
    )

    request: HttpRequest  # set by AccessReviewCampaignAdmin.get_form

    class Meta:
        model = AccessReviewCampaign
        fields = ("project", "title", "due_at")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "title" in self.fields:  # the add form; a campaign's own page shows it read-only
            self.fields["project"].help_text = "Leave empty to review every project's grants."
            self.fields["title"].required = False
            self.fields["title"].help_text = "Leave empty for one that names the scope and the date."
            self.fields["due_at"].initial = default_due_at

    def clean_reviewer_usernames(self) -> list | None:
        names = sorted(set(self.cleaned_data["reviewer_usernames"].replace(",", " ").split()))
        if not names:
            return None
        users = list(get_user_model().objects.filter(username__in=names))
        if unknown := sorted(set(names) - {user.get_username() for user in users}):
            raise forms.ValidationError(f"There is no user named {', '.join(unknown)}.")
        return users

    def clean_project(self):
        """Superusers review any scope; a project's maintainers and auditors review that project."""
        project, user = self.cleaned_data.get("project"), self.request.user
        if is_unrestricted(user):
            return project
        if project is None:
            raise forms.ValidationError("Only a superuser reviews every project at once: choose a project.")
        if not (can(user, Verb.MANAGE, project) or can(user, Verb.AUDIT, project)):
            raise forms.ValidationError(f"Reviewing project {project.slug} takes its maintainer or auditor role.")
        return project


OverdueFilter = yes_no_filter("overdue", AccessReviewCampaign.overdue_condition)

# The report's CSV columns, one row per item.
REPORT_COLUMNS = (
    "project",
    "grantee",
    "role",
    "on",
    "granted_at",
    "granted_by",
    "last_activity_at",
    "unused",
    "reviewer",
    "self_review",
    "decision",
    "comment",
    "decided_by",
    "decided_at",
    "grant_already_revoked",
)


@admin.register(AccessReviewCampaign)
class AccessReviewCampaignAdmin(VisibleChoicesMixin, ServiceWrittenAdmin):
    """Open campaigns and follow them; their items are decided on the item list, and the report is a page of
    its own (printable) and a CSV download."""

    form = CampaignOpenForm
    list_display = ("title", "scope", "state", "progress", "overdue", "due_at", "opened_by", "opened_at", "report")
    list_filter = ("state", OverdueFilter, "scheduled")
    list_select_related = ("project", "opened_by")
    search_fields = ("title", "project__slug")
    autocomplete_fields = ("project",)
    fields = ("project", "title", "due_at", "reviewer_usernames")
    detail_fields = (
        "title",
        "scope",
        "state",
        "due_at",
        "overdue",
        "progress",
        "opened_by",
        "opened_at",
        "scheduled",
        "completed_at",
        "report",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessReviewCampaign]:
        # Progress in the page's one query: one relation counted twice, so one join, no multiplied rows.
        return (
            super()
            .get_queryset(request)
            .annotate(
                item_count=Count("items"),
                decided_count=Count("items", filter=~Q(items__decision=AccessReviewItem.Decision.PENDING)),
            )
        )

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_fields(self, request: HttpRequest, obj: AccessReviewCampaign | None = None) -> tuple[str, ...]:
        return self.detail_fields if obj else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: AccessReviewCampaign | None = None) -> tuple[str, ...]:
        return self.detail_fields if obj else ()

    def has_change_permission(self, request: HttpRequest, obj: AccessReviewCampaign | None = None) -> bool:
        """Nothing about a campaign is edited: its items are decided, and it completes with the last one."""
        return False

    def create(self, request: HttpRequest, data: dict[str, Any]) -> AccessReviewCampaign:
        return campaign_open(
            project=data["project"],
            due_at=data["due_at"],
            opened_by=request.user,
            reviewers=data["reviewer_usernames"],
            title=data["title"],
        )

    def get_urls(self) -> list:
        # Before the model's own URLs, whose `<object_id>/` pattern would take these otherwise.
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/report/", view(self.report_view), name=f"{name}_report"),
            path("<path:object_id>/report.csv", view(self.report_csv_view), name=f"{name}_report_csv"),
            *super().get_urls(),
        ]

    def _reported(self, request: HttpRequest, object_id: str) -> AccessReviewCampaign:
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404("No such access review.")
        return campaign

    def report_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Every item the viewer may see, its decision, reviewer, comment and dates: a page made to print."""
        campaign = self._reported(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Report: {campaign.title}",
            "campaign": campaign,
            "counts": selectors.access_review_counts(
                AccessReviewItem.objects.visible_to(request.user).filter(campaign=campaign)
            ),
            "items": selectors.access_review_report(campaign, request.user),
            "unused_days": settings.PROVENANT_ACCESS_REVIEW_UNUSED_DAYS,
            "csv_url": reverse("admin:governance_accessreviewcampaign_report_csv", args=[campaign.pk]),
        }
        return TemplateResponse(request, "admin/governance/accessreviewcampaign/report.html", context)

    def report_csv_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        campaign = self._reported(request, object_id)
        rows = (
            (
                item.project.slug,
                item.grantee_label,
                item.role,
                item.object_label,
                item.granted_at,
                item.granted_by_label,
                item.last_activity_at,
                item.is_unused,
                item.reviewer.get_username(),
                item.self_review,
                item.decision,
                item.comment,
                item.decided_by.get_username() if item.decided_by_id else "",
                item.decided_at,
                item.grant_already_revoked,
            )
            for item in selectors.access_review_report(campaign, request.user).iterator(chunk_size=1000)
        )
        response = StreamingHttpResponse(csv_lines(REPORT_COLUMNS, rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="access-review-{campaign.pk}.csv"'
        return response

    @admin.display(description="scope", ordering="project__slug")
    def scope(self, campaign: AccessReviewCampaign) -> str:
        return campaign.scope_label

    @admin.display(description="decided", ordering="decided_count")
    def progress(self, campaign: AccessReviewCampaign) -> SafeString:
        label = f"{campaign.decided_count} of {campaign.item_count}"
        return changelist_link(AccessReviewItem, label, campaign__id__exact=campaign.pk)

    @admin.display(boolean=True, ordering="due_at")
    def overdue(self, campaign: AccessReviewCampaign) -> bool:
        return campaign.is_overdue

    @admin.display(description="report")
    def report(self, campaign: AccessReviewCampaign) -> SafeString:
        return format_html(
            '<a href="{}">page</a> · <a href="{}">CSV</a>',
            reverse("admin:governance_accessreviewcampaign_report", args=[campaign.pk]),
            reverse("admin:governance_accessreviewcampaign_report_csv", args=[campaign.pk]),
        )


class ReviewerFilter(admin.SimpleListFilter):
    """Assigned to me, or everyone's: a reviewer starts on their own items, a superuser on all of them."""

    title = "reviewer"
    parameter_name = "reviewer"

    def __init__(self, request: HttpRequest, params, model, model_admin) -> None:
        self.default = "all" if is_unrestricted(request.user) else "mine"
        super().__init__(request, params, model, model_admin)

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("mine", "Assigned to me"), ("all", "Everyone")]

    def value(self) -> str:
        return super().value() or self.default

    def choices(self, changelist):
        # No "All" entry of its own: "Everyone" is it, and an empty value means the default above.
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(reviewer=request.user) if self.value() == "mine" else queryset


UnusedFilter = yes_no_filter("unused", AccessReviewItem.unused_condition)


class DecisionActionForm(helpers.ActionForm):
    comment = forms.CharField(
        required=False,
        label="Comment:",
        widget=forms.TextInput(attrs={"size": 50, "placeholder": "Why (required to revoke)"}),
    )


class ItemDecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(
        choices=[(AccessReviewItem.Decision.KEEP, "Keep"), (AccessReviewItem.Decision.REVOKE, "Revoke")],
        widget=forms.RadioSelect,
    )

    class Meta:
        model = AccessReviewItem
        fields = ("decision", "comment")
        help_texts = {"comment": "Required to revoke: say why."}


@admin.register(AccessReviewItem)
class AccessReviewItemAdmin(ServiceWrittenAdmin):
    """Each grant under review. Keep or revoke the selected ones with one comment (the actions, with the comment
    box beside them), or one at a time on an item's page; every decision goes through the review services."""

    form = ItemDecisionForm
    action_form = DecisionActionForm
    list_display = (
        "grantee_label",
        "role",
        "object_label",
        "granted_at",
        "last_activity_at",
        "unused",
        "reviewer",
        "decision",
        "comment_excerpt",
        "decided_by",
        "decided_at",
    )
    list_filter = (
        ("campaign", admin.RelatedOnlyFieldListFilter),
        ReviewerFilter,
        "decision",
        UnusedFilter,
        "role",
        "self_review",
    )
    list_select_related = ("campaign", "reviewer", "decided_by")
    list_per_page = 100
    show_full_result_count = False
    search_fields = ("grantee_label", "object_label", "project__slug", "reviewer__username", "comment")
    actions = ["keep_selected", "revoke_selected"]
    snapshot_fields = (
        "campaign_link",
        "grantee_label",
        "role",
        "object_label",
        "granted_at",
        "granted_by_label",
        "last_activity_at",
        "unused",
        "grant_link",
    )
    decided_fields = (
        "reviewer",
        "self_review",
        "decision",
        "comment",
        "decided_by",
        "decided_at",
        "grant_already_revoked",
    )

    def get_fieldsets(self, request: HttpRequest, obj: AccessReviewItem | None = None) -> list:
        review = ("reviewer", "self_review", "decision", "comment")
        if not self._may_decide(request, obj):
            review = (*review, "decided_by", "decided_at", "grant_already_revoked")
        return [("The grant when the review opened", {"fields": self.snapshot_fields}), ("Review", {"fields": review})]

    def get_readonly_fields(self, request: HttpRequest, obj: AccessReviewItem | None = None) -> tuple[str, ...]:
        """Only the decision and its comment are ever entered, once, by whoever may decide the item."""
        if self._may_decide(request, obj):
            return (*self.snapshot_fields, "reviewer", "self_review")
        return (*self.snapshot_fields, *self.decided_fields)

    def _may_decide(self, request: HttpRequest, item: AccessReviewItem | None) -> bool:
        return item is not None and self.has_change_permission(request, item)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # campaigns make items

    def has_change_permission(self, request: HttpRequest, obj: AccessReviewItem | None = None) -> bool:
        """Deciding takes the model's change permission; an item is decided once, by its reviewer or a superuser."""
        allowed = super().has_change_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        mine = obj.reviewer_id == request.user.pk or is_unrestricted(request.user)
        return mine and not obj.is_decided

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return self.has_change_permission(request)

    def update(self, request: HttpRequest, obj: AccessReviewItem, data: dict[str, Any]) -> AccessReviewItem:
        return item_decide(item=obj, decision=data["decision"], comment=data["comment"], decided_by=request.user)

    def _decide(self, request: HttpRequest, queryset: QuerySet[AccessReviewItem], decision: str) -> None:
        try:
            outcome = items_decide(
                items=queryset, decision=decision, comment=request.POST.get("comment", ""), decided_by=request.user
            )
        except DomainError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            return
        for item in outcome.decided:
            self.log_change(request, item, f"Decided: {item.get_decision_display().lower()}.")
        if outcome.decided:
            done = "Kept" if decision == AccessReviewItem.Decision.KEEP else "Revoked"
            self.message_user(request, f"{done} {len(outcome.decided)} grant(s).", level=messages.SUCCESS)
        if outcome.refused:
            self.message_user(request, skipped([refusal.reason for refusal in outcome.refused]), level=messages.WARNING)

    @admin.action(description="Keep selected grants", permissions=["decide"])
    def keep_selected(self, request: HttpRequest, queryset: QuerySet[AccessReviewItem]) -> None:
        self._decide(request, queryset, AccessReviewItem.Decision.KEEP)

    @admin.action(description="Revoke selected grants (with the comment)", permissions=["decide"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[AccessReviewItem]) -> None:
        self._decide(request, queryset, AccessReviewItem.Decision.REVOKE)

    @admin.display(boolean=True, description="unused")
    def unused(self, item: AccessReviewItem) -> bool:
        return item.is_unused

    @admin.display(description="comment", ordering="comment")
    def comment_excerpt(self, item: AccessReviewItem) -> str | None:
        return Truncator(item.comment).chars(60) or None

    @admin.display(description="campaign")
    def campaign_link(self, item: AccessReviewItem) -> SafeString | None:
        return admin_link(item.campaign)

    @admin.display(description="grant")
    def grant_link(self, item: AccessReviewItem) -> SafeString | str:
        return admin_link(item.grant) if item.grant_id else "revoked"


# The audit log: read-only --------------------------------------------------------------------------------


class LogPaginator(Paginator):
    """Counts without reading the whole log: the unfiltered log's size is its head row, and a filtered list is
    counted up to COUNT_LIMIT rows (pages past that are reached by narrowing the filters, not by paging)."""

    COUNT_LIMIT = 10_000

    @cached_property
    def count(self) -> int:
        if not self.object_list.query.where:
            return audit_tree.log_size()
        return self.object_list[: self.COUNT_LIMIT].count()


class AuditReadOnlyAdmin(admin.ModelAdmin):
    """Nothing is added, changed or deleted here (the database refuses it anyway); auditors of any project or
    artifact may look, and see what `visible_to` gives them."""

    actions = None
    show_full_result_count = False  # a COUNT(*) of a million entries on every page is not worth it
    paginator = LogPaginator
    list_per_page = 100

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or selectors.audits_anything(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or selectors.audits_anything(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(AuditReadOnlyAdmin):
    list_display = ("seq", "time", "actor", "action", "object", "project")
    list_filter = (("recorded_at", admin.DateFieldListFilter), "action", "actor_kind", "object_type")
    search_fields = ("object_label", "actor_label", "object_id", "project_label", "request_id")
    # No date_hierarchy: its year links read every entry's date on each page; the API filters by time range.
    sortable_by = ("seq",)  # every other order would sort the whole log for each page
    fields = (
        "seq",
        "time",
        "actor_kind",
        "actor_user_id",
        "actor_label",
        "token_id",
        "action",
        "object_type",
        "object_id",
        "object_label",
        "project_id",
        "project_label",
        "artifact_id",
        "request_id",
        "source_ip",
        "user_agent",
        "changes_pretty",
        "leaf_hash_hex",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        return selectors.audit_entries_for(request.user)

    @admin.display(description="time", ordering="recorded_at")
    def time(self, entry: AuditEntry) -> str:
        return format_time(entry.recorded_at)

    @admin.display(description="actor")
    def actor(self, entry: AuditEntry) -> str:
        return entry.actor_label if entry.actor_kind == AuditEntry.ActorKind.USER else f"{entry.actor_label} (system)"

    @admin.display(description="object")
    def object(self, entry: AuditEntry) -> str:
        return f"{entry.object_type} {entry.object_label}"

    @admin.display(description="project")
    def project(self, entry: AuditEntry) -> str:
        return entry.project_label or "-"

    @admin.display(description="changes")
    def changes_pretty(self, entry: AuditEntry) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(json.loads(entry.changes), indent=2, ensure_ascii=False))

    @admin.display(description="leaf hash")
    def leaf_hash_hex(self, entry: AuditEntry) -> str:
        return bytes(entry.leaf_hash).hex()


@admin.register(SignedTreeHead)
class SignedTreeHeadAdmin(AuditReadOnlyAdmin):
    list_display = ("tree_size", "signed_at", "root_hash", "key_id", "locked_until")
    fields = (
        "tree_size",
        "root_hash",
        "signed_at",
        "key_id",
        "public_key",
        "signature",
        "storage_name",
        "locked_until",
    )
    readonly_fields = fields


# Webhooks -------------------------------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    """Register an endpoint in a project one maintains, or change where it points, what it receives and whether it
    is on. The project is chosen once."""

    url = forms.URLField(max_length=2000, assume_scheme="https", help_text="Where deliveries are POSTed.")
    event_types = forms.MultipleChoiceField(
        choices=[(event_type, EventType(event_type).label) for event_type in SUBSCRIBABLE_TYPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="The events POSTed to this endpoint. A test event can be sent to it whatever it subscribes to.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("project", "url", "description", "event_types", "is_active")

    def clean_url(self) -> str:
        """The address guard the service applies, run here too so a refused URL is an error on this field, with
        everything typed kept, instead of a message over an emptied form."""
        url = self.cleaned_data["url"]
        if self.instance.pk is None or url != self.instance.url:
            try:
                outbound.destination_check(url)
            except outbound.DestinationRefused as refusal:
                raise forms.ValidationError(str(refusal)) from None
        return url


FailingFilter = yes_no_filter("failing", lambda: Q(failing_since__isnull=False))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceWrittenAdmin):
    """Where a project's events are POSTed. Every write is a webhook service call; a signing secret is shown once,
    in the message after the endpoint is added or its secret rotated, and never again.

    Staff need the model's permissions as for any admin page, and beyond them see the endpoints of the projects
    they maintain or audit; only maintainers (and superusers) change them."""

    form = WebhookEndpointForm
    # The form a read-only viewer gets is built from the model: its URL field takes the same scheme default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("url", "project", "is_active", "failing_since", "disabled_reason", "created_at")
    list_filter = ("is_active", FailingFilter, ("project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("project",)
    search_fields = ("url", "project__slug", "description")
    date_hierarchy = "created_at"
    fields = ("project", "url", "description", "event_types", "is_active")
    identity_fields = ("project",)
    detail_fields = (
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "secret_hints",
        "created_by",
        "created_at",
        "updated_at",
        "deliveries",
    )
    actions = ["rotate_secrets", "send_test_events"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        return super().get_queryset(request).select_related("project", "created_by")

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list[str]:
        if obj is None:
            return [name for name in self.fields if name != "is_active"]  # an endpoint starts switched on
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> tuple[str, ...]:
        if obj is not None and not self.has_change_permission(request, obj):
            return (*self.fields, *self.detail_fields)  # an auditor's view
        return super().get_readonly_fields(request, obj)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project":
            # Only projects the user maintains are offered; any other is refused as if it did not exist.
            field.queryset = field.queryset.filter(projects_where(request.user, Verb.MANAGE))
        return field

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it deletes rows; an endpoint is deleted through its service
        return actions

    def has_change_permission(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can(request.user, Verb.MANAGE, obj.project))

    def has_delete_permission(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> bool:
        allowed = admin.ModelAdmin.has_delete_permission(self, request, obj)
        return allowed and (obj is None or can(request.user, Verb.MANAGE, obj.project))

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """Rotating and testing change an endpoint, so they take the model's change permission; each endpoint
        still needs the maintainer role on its project."""
        return self.has_change_permission(request)

    def create(self, request: HttpRequest, data: dict[str, Any]) -> WebhookEndpoint:
        endpoint, secret = webhook_endpoint_create(
            project=data["project"],
            url=data["url"],
            event_types=data["event_types"],
            description=data["description"],
            created_by=request.user,
        )
        self.message_user(
            request,
            f"Signing secret for {endpoint.url}: {secret} — copy it now, it is not shown again.",
            level=messages.SUCCESS,
        )
        return endpoint

    def update(self, request: HttpRequest, obj: WebhookEndpoint, data: dict[str, Any]) -> WebhookEndpoint:
        return webhook_endpoint_update(
            endpoint=obj,
            changed_by=request.user,
            url=data["url"],
            description=data["description"],
            event_types=data["event_types"],
            is_active=data["is_active"],
        )

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        webhook_endpoint_delete(endpoint=obj, deleted_by=request.user)

    def _each_managed(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint], act: Callable[[WebhookEndpoint], str]
    ) -> None:
        """Run `act` on each endpoint the user maintains, saying what it did; refusals are reported as errors."""
        refusals = []
        for endpoint in queryset.select_related("project"):
            if not can(request.user, Verb.MANAGE, endpoint.project):
                refusals.append(f"{endpoint.url}: that takes the maintainer role on project {endpoint.project.slug}.")
                continue
            try:
                done = act(endpoint)
            except DomainError as error:
                refusals.append(f"{endpoint.url}: {error.message}")
            else:
                self.log_change(request, endpoint, done)
                self.message_user(request, f"{done}", level=messages.SUCCESS)
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.ERROR)

    @admin.action(description="Rotate secret (the old one signs for the usual overlap)", permissions=["manage"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        def rotate(endpoint: WebhookEndpoint) -> str:
            secret, until = webhook_secret_rotate(endpoint=endpoint, rotated_by=request.user)
            return (
                f"New signing secret for {endpoint.url}: {secret} — copy it now, it is not shown again. "
                f"The previous secret keeps signing until {format_time(until)}."
            )

        self._each_managed(request, queryset, rotate)

    @admin.action(description="Send a test event", permissions=["manage"])
    def send_test_events(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        def send(endpoint: WebhookEndpoint) -> str:
            delivery = webhook_endpoint_test(endpoint=endpoint, sent_by=request.user)
            return f"Sent a test event to {endpoint.url} (delivery #{delivery.pk})."

        self._each_managed(request, queryset, send)

    def log_change(self, request: HttpRequest, obj: WebhookEndpoint, message: Any) -> Any:
        # The admin's own log must never keep a secret: what an action did is logged without it.
        if isinstance(message, str) and message.startswith("New signing secret"):
            message = "Rotated the signing secret."
        return super().log_change(request, obj, message)

    @admin.display(description="secrets signing now")
    def secret_hints(self, endpoint: WebhookEndpoint) -> str:
        live = endpoint.secrets.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        return ", ".join(f"{secret.hint}…" for secret in live.order_by("-id"))

    @admin.display(description="deliveries")
    def deliveries(self, endpoint: WebhookEndpoint) -> SafeString:
        return changelist_link(WebhookDelivery, "deliveries to this endpoint", endpoint__id__exact=endpoint.pk)


class WebhookAttemptInline(ViewOnlyMixin, admin.TabularInline):
    model = WebhookAttempt
    fields = (
        "number",
        "manual",
        "started_at",
        "duration_ms",
        "outcome",
        "status_code",
        "response_excerpt",
        "error",
    )
    readonly_fields = fields
    extra = 0


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """Each event's delivery to each endpoint, with every attempt: a record, never edited. A delivery is re-sent
    (same webhook-id, same body) through its service by a maintainer of the endpoint's project."""

    list_display = (
        "event_type",
        "webhook_id",
        "endpoint",
        "state",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("state", "event__type", ("endpoint", admin.RelatedOnlyFieldListFilter))
    # The event and the endpoint of every row come in the page's one query.
    list_select_related = ("event", "endpoint")
    search_fields = ("=event__public_id", "endpoint__url")
    show_full_result_count = False
    fields = (
        "event_type",
        "webhook_id",
        "endpoint_link",
        "state",
        "attempt_count",
        "next_attempt_at",
        "created_at",
        "completed_at",
        "last_status_code",
        "last_error",
        "payload",
    )
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).visible_to(request.user)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        """Re-sending is the one change a delivery admits, so it takes the model's change permission; each
        delivery still needs the maintainer role on its endpoint's project."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    @admin.action(description="Re-send selected deliveries", permissions=["resend"])
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        resent, refusals = [], []
        for delivery in queryset.select_related("event", "endpoint__project"):
            if not can(request.user, Verb.MANAGE, delivery.endpoint.project):
                refusals.append(
                    f"Re-sending to {delivery.endpoint.url} takes the maintainer role on project "
                    f"{delivery.endpoint.project.slug}."
                )
                continue
            try:
                webhook_delivery_resend(delivery=delivery, resent_by=request.user)
            except DomainError as error:
                refusals.append(error.message)
            else:
                resent.append(delivery.event.public_id)
        if resent:
            self.message_user(
                request, f"Re-sending {len(resent)} delivery(ies): {', '.join(resent)}.", level=messages.SUCCESS
            )
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.ERROR)

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    @admin.display(description="webhook id")
    def webhook_id(self, delivery: WebhookDelivery) -> str:
        return delivery.event.public_id

    @admin.display(description="endpoint")
    def endpoint_link(self, delivery: WebhookDelivery) -> SafeString | None:
        return admin_link(delivery.endpoint)

    @admin.display(description="payload")
    def payload(self, delivery: WebhookDelivery) -> SafeString:
        return json_block(json.loads(delivery.event.body))


@admin.register(Event)
class EventAdmin(ViewOnlyMixin, admin.ModelAdmin):
    """The outbox: every event exactly as it was sent, read-only (the database refuses changes anyway), to the
    maintainers and auditors of its project."""

    list_display = ("type", "public_id", "project", "occurred_at")
    list_filter = ("type",)
    list_select_related = ("project",)
    search_fields = ("=public_id",)
    show_full_result_count = False
    fields = ("type", "public_id", "schema_version", "project", "occurred_at", "body_pretty")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Event]:
        return super().get_queryset(request).visible_to(request.user)

    @admin.display(description="body")
    def body_pretty(self, event: Event) -> SafeString:
        return json_block(json.loads(event.body))


# The model registry ---------------------------------------------------------------------------------------------
#
# Who sees what is each model's `visible_to` (the version's artifact decides, restricted artifacts included); who may
# do what is the services' to decide, as the logged-in user. What the admin checks itself is what the API checks in
# its views first, for a read-only page rather than a refusal: describing a model takes the contributor role on
# its project.


def gates_table(gates: list[dict]) -> SafeString | None:
    """Each gate's result, pass or fail, with the sentence that says why."""
    if not gates:
        return None
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((gate["gate"], "pass" if gate["passed"] else "FAIL", gate["detail"]) for gate in gates),
    )
    return format_html("<table><tr><th>gate</th><th>result</th><th>detail</th></tr>{}</table>", rows)


class RegisteredModelFilter(admin.SimpleListFilter):
    """The models the listed rows belong to, named project/model. (Django's related-only filter names each choice
    with one query for its project.) The parameter is the one changelist links use."""

    title = "model"
    parameter_name = "registered_model__id__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[int, str]]:
        models_listed = model_admin.get_queryset(request).values("registered_model_id")
        choices = RegisteredModel.objects.filter(pk__in=models_listed).select_related("project")
        return [(model.pk, str(model)) for model in choices.order_by("project__slug", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(registered_model_id=value) if value and value.isdigit() else queryset


class ReasonForm(forms.Form):
    """The text an act must carry (a reviewer's comment, a rollback's justification), asked for on the page between
    choosing an action and running it."""

    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 5, "cols": 80}), strip=True)

    def __init__(self, *args, label: str, help_text: str, required: bool, max_length: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["text"]
        field.label, field.help_text, field.required, field.max_length = label, help_text, required, max_length
        field.validators.append(validators.MaxLengthValidator(max_length))


class ReasonedActionsMixin:
    """Admin actions that ask for a text first (on templates/admin/governance/action_with_reason.html), then run a
    service on each selected row as the logged-in user, reporting what each did and each refusal's own message."""

    def ask_then_run(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        *,
        action: str,
        title: str,
        submit: str,
        form_kwargs: dict[str, Any],
        run: Callable[[Any, str], str],
    ) -> TemplateResponse | None:
        """Show the form for `action` over `queryset`; once it is posted valid, `run(obj, text)` on each row."""
        confirmed = request.POST.get("confirm") == "yes"
        form = ReasonForm(request.POST if confirmed else None, **form_kwargs)
        if confirmed and form.is_valid():
            self.run_each(request, queryset, lambda obj: run(obj, form.cleaned_data["text"]))
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "submit": submit,
            "action": action,
            "form": form,
            "targets": list(queryset),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/governance/action_with_reason.html", context)

    def run_each(self, request: HttpRequest, queryset: QuerySet, act: Callable[[Any], str]) -> None:
        """`act(obj)` on each row, in its own transaction (the service's): one refusal undoes nothing the others
        did. Each success is said and logged; the refusals are listed, each with the row it concerns."""
        refusals = []
        for obj in queryset:
            try:
                done = act(obj)
            except DomainError as error:
                refusals.append(f"{obj}: {error.message}")
            else:
                self.log_change(request, obj, done)
                self.message_user(request, done, level=messages.SUCCESS)
        if refusals:
            self.message_user(request, skipped(refusals), level=messages.ERROR)


class RegisteredModelForm(NamedInProjectForm):
    """Register a model in a project one contributes to, or describe one: its description, card and owners."""

    owner_usernames = forms.CharField(
        required=False,
        label="Owners",
        widget=forms.TextInput(attrs={"size": 60}),
        help_text="Usernames of active accounts, separated by commas or spaces (at most 50).",
    )

    class Meta:
        model = RegisteredModel
        fields = ("project", "name", "description", "model_card")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "model_card" not in self.fields:  # a read-only viewer's page: nothing to enter
            return
        # The API's input limits, so both refuse the same text.
        self.fields["description"].max_length = 10_000
        self.fields["description"].validators.append(validators.MaxLengthValidator(10_000))
        self.fields["model_card"].max_length = MAX_CARD_CHARS
        self.fields["model_card"].validators.append(validators.MaxLengthValidator(MAX_CARD_CHARS))
        self.fields["model_card"].strip = False  # Markdown: leading spaces mean something
        if self.instance.pk is not None:
            self.initial["owner_usernames"] = " ".join(
                sorted(user.get_username() for user in self.instance.owners.all())
            )

    def clean_owner_usernames(self) -> list:
        names = sorted(set(self.cleaned_data["owner_usernames"].replace(",", " ").split()))
        if len(names) > 50:
            raise forms.ValidationError("A model has at most 50 owners.")
        users = list(get_user_model().objects.filter(username__in=names, is_active=True))
        if unknown := sorted(set(names) - {user.get_username() for user in users}):
            raise forms.ValidationError(f"There is no active user named {', '.join(unknown)}.")
        return users


class ModelVersionInline(ViewOnlyMixin, admin.TabularInline):
    """The model's versions the viewer may see, newest first, with the stage each is in."""

    model = ModelVersion
    verbose_name_plural = "versions"
    fields = ("version_link", "stage", "stage_changed_at", "artifact_version_label", "digest", "created_at")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[ModelVersion]:
        # A version of a restricted artifact stays out of sight of whoever may not read that artifact.
        return (
            super()
            .get_queryset(request)
            .visible_to(request.user)
            .select_related("artifact_version__artifact__project", "artifact_version__blob")
        )

    @admin.display(description="version")
    def version_link(self, version: ModelVersion) -> SafeString:
        url = reverse("admin:governance_modelversion_change", args=[version.pk])
        return format_html('<a href="{}">v{}</a>', url, version.number)

    @admin.display(description="artifact version")
    def artifact_version_label(self, version: ModelVersion) -> str:
        return str(version.artifact_version)

    @admin.display(description="digest")
    def digest(self, version: ModelVersion) -> SafeString | None:
        return short_digest(version.artifact_version.blob.digest)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReasonedActionsMixin, ServiceWrittenAdmin):
    """Models are registered and described through the registry services, by contributors to their project; their
    versions are listed read-only; a maintainer rolls production back (break glass) with the action. Never deleted."""

    form = RegisteredModelForm
    list_display = ("name", "project", "production_version", "owner_names", "created_at")
    list_filter = (("project", admin.RelatedOnlyFieldListFilter),)
    # The project and creator are joined; owners and the production version come in one query each for the page
    # (the selector's prefetches), not one per model.
    list_select_related = ("project", "created_by")
    search_fields = ("name", "project__slug", "description")
    fields = ("project", "name", "description", "model_card", "owner_usernames")
    identity_fields = ("project", "name")
    detail_fields = ("production_version", "requests", "history", "created_by", "created_at", "updated_at")
    inlines = [ModelVersionInline]
    actions = ["roll_back"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[RegisteredModel]:
        # With the user, a version they may not see (a restricted artifact's) is not named as the production one.
        return selectors.registered_model_list(request.user).visible_to(request.user)

    def get_inlines(self, request: HttpRequest, obj: RegisteredModel | None) -> list:
        return self.inlines if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: RegisteredModel | None = None) -> list[str]:
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # A read-only viewer sees the owners, not the form's input for them.
            return ["owner_names" if name == "owner_usernames" else name for name in fields]
        return fields

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project":
            # Registering takes the contributor role on the project (as over the API); no other project is offered.
            field.queryset = field.queryset.filter(projects_where(request.user, Verb.CONTRIBUTE))
        return field

    def has_change_permission(self, request: HttpRequest, obj: RegisteredModel | None = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or can(request.user, Verb.CONTRIBUTE, obj.project))

    def has_rollback_permission(self, request: HttpRequest) -> bool:
        """A rollback changes a model, so it takes the model's change permission; each model still needs the
        maintainer role on its project, which model_rollback checks."""
        return self.has_change_permission(request)

    def create(self, request: HttpRequest, data: dict[str, Any]) -> RegisteredModel:
        return registered_model_create(
            project=data["project"],
            name=data["name"],
            created_by=request.user,
            description=data["description"],
            model_card=data["model_card"],
            owners=data["owner_usernames"],
        )

    def update(self, request: HttpRequest, obj: RegisteredModel, data: dict[str, Any]) -> RegisteredModel:
        return registered_model_update(
            registered_model=obj,
            changed_by=request.user,
            description=data["description"],
            model_card=data["model_card"],
            owners=data["owner_usernames"],
        )

    @admin.action(description="Roll back production (break glass)", permissions=["rollback"])
    def roll_back(self, request: HttpRequest, queryset: QuerySet[RegisteredModel]) -> TemplateResponse | None:
        def roll_back_one(model: RegisteredModel, justification: str) -> str:
            review = model_rollback(registered_model=model, rolled_back_by=request.user, justification=justification)
            return (
                f"Rolled {model} back: v{review.model_version.number} is in production again. Review request "
                f"#{review.pk} now awaits its reviewers."
            )

        return self.ask_then_run(
            request,
            queryset,
            action="roll_back",
            title="Roll back production (break glass)",
            submit="Roll back now",
            form_kwargs={
                "label": "Justification",
                "help_text": "Why production cannot wait for a reviewed promotion. Each model's previous production "
                "version is restored at once, the current one archived, and a review request opens that reviewers "
                "must approve afterwards.",
                "required": True,
                "max_length": MAX_JUSTIFICATION_CHARS,
            },
            run=roll_back_one,
        )

    @admin.display(description="production")
    def production_version(self, model: RegisteredModel) -> str | None:
        return next((f"v{version.number}" for version in model.production_versions), None)

    @admin.display(description="owners")
    def owner_names(self, model: RegisteredModel) -> str | None:
        return ", ".join(sorted(owner.get_username() for owner in model.owners.all())) or None

    @admin.display(description="promotion requests")
    def requests(self, model: RegisteredModel) -> SafeString:
        return changelist_link(PromotionRequest, "requests for this model", registered_model__id__exact=model.pk)

    @admin.display(description="stage history")
    def history(self, model: RegisteredModel) -> SafeString:
        return changelist_link(StageTransition, "every stage move", registered_model__id__exact=model.pk)


@admin.register(ModelVersion)
class ModelVersionAdmin(ViewOnlyMixin, VisibleOnlyAdmin):
    """A model's versions: each names one immutable artifact version, and moves between stages only by promotion
    (or rollback). Read-only."""

    list_display = ("version", "registered_model", "stage", "stage_changed_at", "artifact_version", "digest")
    list_display_links = ("version",)
    list_filter = ("stage",)
    # The model and its project (the model's name), the artifact version with its artifact and project (its name)
    # and the blob (the digest) come in the page's one query.
    list_select_related = (
        "registered_model__project",
        "artifact_version__artifact__project",
        "artifact_version__blob",
    )
    search_fields = ("registered_model__name", "registered_model__project__slug", "^artifact_version__blob__digest")
    show_full_result_count = False
    fields = (
        "registered_model",
        "number",
        "stage",
        "stage_changed_at",
        "artifact_version",
        "digest",
        "created_by",
        "created_at",
        "requests",
        "history",
    )
    readonly_fields = fields

    @admin.display(ordering="number")
    def version(self, version: ModelVersion) -> str:
        return f"v{version.number}"

    @admin.display(description="digest")
    def digest(self, version: ModelVersion) -> SafeString | None:
        return short_digest(version.artifact_version.blob.digest)

    @admin.display(description="promotion requests")
    def requests(self, version: ModelVersion) -> SafeString:
        return changelist_link(PromotionRequest, "requests for this version", model_version__id__exact=version.pk)

    @admin.display(description="stage history")
    def history(self, version: ModelVersion) -> SafeString:
        return changelist_link(StageTransition, "this version's stage moves", model_version__id__exact=version.pk)


class PromotionPolicyForm(forms.ModelForm):
    """The next version of one stage's policy in a project one maintains: every field of the policy, as it should
    be from now on."""

    class Meta:
        model = PromotionPolicy
        fields = ("project", "stage", *POLICY_FIELDS, "note")

    def clean(self) -> dict[str, Any]:
        """The service's own checks, so a fault (a malformed threshold, a minimum time in production on another
        stage's policy) is an error beside its field with everything typed kept."""
        cleaned = super().clean()
        if stage := cleaned.get("stage"):
            values = {field: cleaned[field] for field in POLICY_FIELDS if field in cleaned}
            try:
                cleaned.update(promotion_policy_clean(stage, values))
            except DomainError as error:
                self.add_error(error.field if error.field in self.fields else None, error.message)
        return cleaned


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(ServiceWrittenAdmin):
    """Every saved version of every stage's policy. A saved version is never edited: a maintainer adds the next one
    (promotion_policy_set, audited), best started from the one in force by its "next version" link, which fills the
    form with it. A stage with no saved version is judged under the built-in default (version 0)."""

    form = PromotionPolicyForm
    list_display = (
        "project",
        "stage",
        "version",
        "in_force",
        "approvals_required",
        "creator_may_approve",
        "gates",
        "changed_by",
        "changed_at",
        "next_version",
    )
    list_filter = ("stage", ("project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("project", "changed_by")
    search_fields = ("project__slug", "note")
    fields = ("project", "stage", *POLICY_FIELDS, "note")

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromotionPolicy]:
        newest = PromotionPolicy.objects.filter(project=OuterRef("project"), stage=OuterRef("stage")).order_by(
            "-version"
        )
        return super().get_queryset(request).annotate(newest_version=Subquery(newest.values("version")[:1]))

    def get_readonly_fields(self, request: HttpRequest, obj: PromotionPolicy | None = None) -> tuple[str, ...]:
        return (*self.fields, "changed_by", "changed_at") if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: PromotionPolicy | None = None) -> list[str]:
        if obj is None:
            return list(self.fields)
        return ["project", "stage", "version", *POLICY_FIELDS, "note", "changed_by", "changed_at"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """`?project=<id>&stage=<stage>` fills the form with the policy in force there, so a maintainer changes
        what they mean to and nothing else by accident (the model's defaults are not any stage's policy)."""
        initial = super().get_changeform_initial_data(request)
        project_id, stage = str(initial.get("project", "")), initial.get("stage")
        if project_id.isdigit() and stage in dict(PromotionPolicy._meta.get_field("stage").choices):
            project = Project.objects.filter(projects_where(request.user, Verb.MANAGE), pk=project_id).first()
            if project is not None:
                current = policy_current(project, stage)
                initial |= {field: getattr(current, field) for field in POLICY_FIELDS}
        return initial

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "project":
            field.queryset = field.queryset.filter(projects_where(request.user, Verb.MANAGE))
        return field

    def has_change_permission(self, request: HttpRequest, obj: PromotionPolicy | None = None) -> bool:
        """A policy version is never edited: the next version is added instead."""
        return False

    def create(self, request: HttpRequest, data: dict[str, Any]) -> PromotionPolicy:
        policy, created = promotion_policy_set(
            project=data["project"],
            stage=data["stage"],
            changed_by=request.user,
            note=data["note"],
            **{field: data[field] for field in POLICY_FIELDS},
        )
        if not created:
            self.message_user(
                request, f"{policy} is in force already with these settings; nothing changed.", level=messages.WARNING
            )
        return policy

    @admin.display(boolean=True, description="in force")
    def in_force(self, policy: PromotionPolicy) -> bool:
        return policy.version == policy.newest_version

    @admin.display(description="gates")
    def gates(self, policy: PromotionPolicy) -> str:
        turned_on = [
            name
            for name, on in (
                ("integrity", policy.require_verified_blob),
                ("lineage", policy.require_complete_lineage),
                ("model card", policy.require_model_card),
                (f"{len(policy.metric_thresholds)} metric(s)", bool(policy.metric_thresholds)),
                (f"{policy.min_hours_in_production} h in production", policy.min_hours_in_production is not None),
            )
            if on
        ]
        return ", ".join(turned_on) or "none"

    @admin.display(description="")
    def next_version(self, policy: PromotionPolicy) -> SafeString | str:
        if policy.version != policy.newest_version:
            return ""
        url = reverse("admin:governance_promotionpolicy_add")
        return format_html(
            '<a href="{}?{}">next version…</a>', url, urlencode({"project": policy.project_id, "stage": policy.stage})
        )


class PromotionDecisionInline(ViewOnlyMixin, admin.TabularInline):
    model = PromotionDecision
    verbose_name_plural = "decisions"
    fields = ("reviewer", "decision", "comment", "decided_at")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromotionDecision]:
        return super().get_queryset(request).select_related("reviewer")


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ReasonedActionsMixin, ViewOnlyMixin, VisibleOnlyAdmin):
    """Requests to move a version into a stage, a record: what was asked, each gate at the request and at the last
    decision, every reviewer's decision and which approvals count. Reviewers approve or reject with a comment, the
    requester or a maintainer withdraws, and anyone involved re-checks a request, through the actions; the
    promotion services decide who may, as the logged-in user."""

    list_display = (
        "request",
        "registered_model",
        "version",
        "target_stage",
        "kind",
        "state",
        "approvals",
        "requested_by",
        "requested_at",
        "expires_at",
    )
    list_display_links = ("request",)
    list_filter = ("state", "target_stage", "kind", RegisteredModelFilter)
    # The model with its project (its name), the version (its number) and the people in the page's one query; the
    # approvals are counted in it too. The version's own model and project name each row's checkbox (str(request)).
    list_select_related = (
        "registered_model__project",
        "model_version__registered_model__project",
        "requested_by",
        "closed_by",
    )
    search_fields = ("registered_model__name", "registered_model__project__slug", "requested_by__username")
    show_full_result_count = False
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "registered_model",
                    "model_version",
                    "kind",
                    "target_stage",
                    "state",
                    "justification",
                    "digest_full",
                    "requested_by",
                    "requested_at",
                    "expires_at",
                )
            },
        ),
        (
            "Judgement",
            {
                "fields": (
                    "policy_version",
                    "approvals_required",
                    "approvals_counted",
                    "blocked_by",
                    "gates_at_request_table",
                    "gates_at_decision_table",
                    "gates_now_table",
                )
            },
        ),
        ("Closed", {"fields": ("closed_at", "closed_by", "close_reason", "moves")}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]
    inlines = [PromotionDecisionInline]
    actions = ["approve", "reject", "withdraw", "recheck_and_apply"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromotionRequest]:
        approvals = Count("decisions", filter=Q(decisions__decision=PromotionDecision.Decision.APPROVE))
        return super().get_queryset(request).annotate(approvals_given=approvals)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        """One request, with what its gates and approvals are weighed on now (see selectors)."""
        request_ = super().get_object(request, object_id, from_field)
        if request_ is not None:
            selectors.promotion_request_standing(request_)
        return request_

    def has_act_permission(self, request: HttpRequest) -> bool:
        """Deciding, withdrawing and re-checking are the only changes a request admits, so they take the model's
        change permission; who may do which to each request is the promotion services' rule."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    def _acted_on(self, queryset: QuerySet[PromotionRequest]) -> QuerySet[PromotionRequest]:
        return queryset.select_related("registered_model__project", "model_version__registered_model__project")

    def _decide(self, request: HttpRequest, queryset: QuerySet[PromotionRequest], approving: bool):
        def decide(target: PromotionRequest, comment: str) -> str:
            if not approving:
                promotion_reject(request=target, reviewer=request.user, comment=comment)
                return f"Rejected {target}."
            decided = promotion_approve(request=target, reviewer=request.user, comment=comment)
            if decided.state == PromotionRequest.State.APPROVED:
                return f"Approved {target}: {decided.close_reason}"
            return f"Approved {target}; it stays open: {decided.blocked_by}"

        verb = "Approve" if approving else "Reject"
        return self.ask_then_run(
            request,
            self._acted_on(queryset),
            action="approve" if approving else "reject",
            title=f"{verb} promotion requests",
            submit=verb,
            form_kwargs={
                "label": "Comment",
                "help_text": "What you checked, for the record (optional)."
                if approving
                else "Why: the requester reads it. One rejection closes each request.",
                "required": not approving,
                "max_length": MAX_COMMENT_CHARS,
            },
            run=decide,
        )

    @admin.action(description="Approve selected requests (with a comment)", permissions=["act"])
    def approve(self, request: HttpRequest, queryset: QuerySet[PromotionRequest]) -> TemplateResponse | None:
        return self._decide(request, queryset, approving=True)

    @admin.action(description="Reject selected requests (with a comment)", permissions=["act"])
    def reject(self, request: HttpRequest, queryset: QuerySet[PromotionRequest]) -> TemplateResponse | None:
        return self._decide(request, queryset, approving=False)

    @admin.action(description="Withdraw selected requests", permissions=["act"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[PromotionRequest]) -> None:
        def withdraw_one(target: PromotionRequest) -> str:
            promotion_withdraw(request=target, withdrawn_by=request.user)
            return f"Withdrew {target}."

        self.run_each(request, self._acted_on(queryset), withdraw_one)

    @admin.action(description="Re-check and apply selected requests", permissions=["act"])
    def recheck_and_apply(self, request: HttpRequest, queryset: QuerySet[PromotionRequest]) -> None:
        def apply_one(target: PromotionRequest) -> str:
            applied = promotion_apply(request=target, applied_by=request.user)
            return f"Applied {target}: {applied.close_reason}"

        self.run_each(request, self._acted_on(queryset), apply_one)

    @admin.display(description="request", ordering="pk")
    def request(self, promotion: PromotionRequest) -> str:
        return f"#{promotion.pk}"

    @admin.display(ordering="model_version__number")
    def version(self, promotion: PromotionRequest) -> str:
        return f"v{promotion.model_version.number}"

    @admin.display(description="approvals", ordering="approvals_given")
    def approvals(self, promotion: PromotionRequest) -> str:
        """Given of required; which of them count (a reviewer may have lost the role since) is on the request's
        page."""
        return f"{promotion.approvals_given} of {promotion.approvals_required}"

    @admin.display(description="digest")
    def digest_full(self, promotion: PromotionRequest) -> str:
        return f"sha256:{promotion.digest}"

    @admin.display(description="approvals counted")
    def approvals_counted(self, promotion: PromotionRequest) -> SafeString:
        standing = format_html_join(
            "",
            "<li>{}: {}</li>",
            (
                (approval["reviewer"], "counts" if approval["counts"] else f"does not count: {approval['reason']}")
                for approval in promotion.approval_standing
            ),
        )
        return format_html(
            "{} of {} required<ul>{}</ul>", promotion.approvals_counted, promotion.approvals_required, standing
        )

    @admin.display(description="what stands in the way now")
    def blocked_by(self, promotion: PromotionRequest) -> str | None:
        return promotion.blocked_by or None

    @admin.display(description="gates at request")
    def gates_at_request_table(self, promotion: PromotionRequest) -> SafeString | None:
        return gates_table(promotion.gates_at_request)

    @admin.display(description="gates at the last decision")
    def gates_at_decision_table(self, promotion: PromotionRequest) -> SafeString | None:
        return gates_table(promotion.gates_at_decision)

    @admin.display(description="gates now (current policy)")
    def gates_now_table(self, promotion: PromotionRequest) -> SafeString | None:
        return gates_table(promotion.gates_now)

    @admin.display(description="stage moves")
    def moves(self, promotion: PromotionRequest) -> SafeString:
        return changelist_link(StageTransition, "moves made by this request", promotion_request__id__exact=promotion.pk)


@admin.register(StageTransition)
class StageTransitionAdmin(ViewOnlyMixin, VisibleOnlyAdmin):
    """Every stage move of every version: who, when, why, under which request, and whether glass was broken.
    Append-only (the database refuses changes); read-only here."""

    list_display = (
        "changed_at",
        "registered_model",
        "version",
        "from_stage",
        "to_stage",
        "cause",
        "break_glass",
        "request",
        "changed_by",
    )
    list_filter = (RegisteredModelFilter, "cause", "break_glass")
    # The model with its project (its name), the version (its number) and who moved it in the page's one query; the
    # request is linked by its id alone.
    list_select_related = ("registered_model__project", "model_version", "changed_by")
    search_fields = ("registered_model__name", "registered_model__project__slug")
    date_hierarchy = "changed_at"
    show_full_result_count = False
    actions = None
    fields = (
        "registered_model",
        "model_version",
        "from_stage",
        "to_stage",
        "cause",
        "break_glass",
        "request",
        "changed_by",
        "changed_at",
    )
    readonly_fields = fields

    @admin.display(ordering="model_version__number")
    def version(self, move: StageTransition) -> str:
        return f"v{move.model_version.number}"

    @admin.display(description="request", ordering="promotion_request")
    def request(self, move: StageTransition) -> SafeString | None:
        if move.promotion_request_id is None:
            return None
        url = reverse("admin:governance_promotionrequest_change", args=[move.promotion_request_id])
        return format_html('<a href="{}">#{}</a>', url, move.promotion_request_id)
