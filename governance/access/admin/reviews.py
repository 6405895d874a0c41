"""Access reviews in the admin: campaigns opened through the review services and reported on (a printable page
and a CSV), and their items a record. Items are decided in the portal (governance/portal/views/reviews.py), which
owns decisions; each campaign and pending item here links to the portal page where its reviewer keeps or revokes
it."""

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from artifacts.access.rule import is_unrestricted
from core.admin import (
    ServiceWrittenAdmin,
    ViewOnlyMixin,
    VisibleChoicesMixin,
    VisibleOnlyAdmin,
    admin_link,
    changelist_link,
    yes_no_filter,
)
from governance.access import selectors
from governance.access.models import AccessReviewCampaign, AccessReviewItem
from governance.access.services import campaign_open

OverdueFilter = yes_no_filter("overdue", AccessReviewCampaign.overdue_condition)
UnusedFilter = yes_no_filter("unused", AccessReviewItem.unused_condition)


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
        if not selectors.projects_reviewable_by(user).filter(pk=project.pk).exists():
            raise forms.ValidationError(f"Reviewing project {project.slug} takes its maintainer or auditor role.")
        return project


def portal_url(campaign_id: int) -> str:
    """The portal page where reviewers keep or revoke their pending items of one campaign."""
    return f"{reverse('portal:access-reviews')}?{urlencode({'campaign': campaign_id})}"


@admin.register(AccessReviewCampaign)
class AccessReviewCampaignAdmin(VisibleChoicesMixin, ServiceWrittenAdmin):
    """Open campaigns and follow them; reviewers decide their items in the portal (linked from each campaign), and
    the report is a page of its own (printable) and a CSV download."""

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
        "decide_in_portal",
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

    def autocomplete_choices(self, request: HttpRequest, field_name: str) -> QuerySet | None:
        """The project picker of the open form (core.admin.ChosenThroughAutocompleteMixin) offers whoever may open
        a campaign the projects they may review, though they need not view projects in the admin."""
        if field_name != "project" or not self.has_add_permission(request):
            return None
        return selectors.projects_reviewable_by(request.user)

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_fields(self, request: HttpRequest, obj: AccessReviewCampaign | None = None) -> tuple[str, ...]:
        return self.detail_fields if obj else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: AccessReviewCampaign | None = None) -> tuple[str, ...]:
        return self.detail_fields if obj else ()

    def has_change_permission(self, request: HttpRequest, obj: AccessReviewCampaign | None = None) -> bool:
        """Nothing about a campaign is edited: its items are decided (in the portal), and it completes with the
        last one."""
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
            "csv_url": reverse("admin:access_accessreviewcampaign_report_csv", args=[campaign.pk]),
        }
        return TemplateResponse(request, "admin/access/accessreviewcampaign/report.html", context)

    def report_csv_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        """The report as CSV (`selectors.access_review_report_csv`); the portal's report page serves it through
        this view too, so both downloads have one permission check and one format."""
        campaign = self._reported(request, object_id)
        response = StreamingHttpResponse(
            selectors.access_review_report_csv(campaign, request.user), content_type="text/csv; charset=utf-8"
        )
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
            reverse("admin:access_accessreviewcampaign_report", args=[campaign.pk]),
            reverse("admin:access_accessreviewcampaign_report_csv", args=[campaign.pk]),
        )

    @admin.display(description="decisions")
    def decide_in_portal(self, campaign: AccessReviewCampaign) -> SafeString:
        return format_html(
            'Reviewers keep or revoke their items <a href="{}">in the portal</a>', portal_url(campaign.pk)
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


@admin.register(AccessReviewItem)
class AccessReviewItemAdmin(ViewOnlyMixin, VisibleOnlyAdmin):
    """Each grant under review, a record: the grant as it was when the review opened, and its decision. Reviewers
    keep or revoke their items in the portal (each item links there); nothing is decided or changed here."""

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
    actions = None
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
        "decide_in_portal",
        "reviewer",
        "self_review",
        "decision",
        "comment",
        "decided_by",
        "decided_at",
        "grant_already_revoked",
    )
    fieldsets = [
        ("The grant when the review opened", {"fields": snapshot_fields}),
        ("Review", {"fields": decided_fields}),
    ]
    readonly_fields = (*snapshot_fields, *decided_fields)

    @admin.display(description="in the portal")
    def decide_in_portal(self, item: AccessReviewItem) -> SafeString | None:
        """Where its reviewer decides it, while it waits: their pending items of its campaign."""
        if item.is_decided:
            return None
        return format_html(
            'Its reviewer keeps or revokes it <a href="{}">in the portal</a>', portal_url(item.campaign_id)
        )

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
