"""Promotion requests and the stage history in the admin: a record, read-only. Requests are approved and rejected
in the portal, which owns decisions (each request's page here links to its page there); what stays here is break
glass, a request withdrawn or re-checked through the promotion services as the logged-in user."""

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.accounts import require_step_up
from core.admin import ViewOnlyMixin, VisibleOnlyAdmin, changelist_link
from governance.registry import selectors
from governance.registry.admin.actions import ReasonedActionsMixin
from governance.registry.models import PromotionDecision, PromotionRequest, RegisteredModel, StageTransition
from governance.registry.services.promotions import promotion_apply, promotion_withdraw


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
    decision, every reviewer's decision and which approvals count. Reviewers decide in the portal, where each
    request's page (linked from here) shows the gates and offers the forms; the admin offers only break glass:
    the requester or a maintainer withdraws, and anyone involved re-checks a request, through the actions. The
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
                    "decide_in_portal",
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
                    "gates_weighed_at",
                    "gates_now_table",
                )
            },
        ),
        ("Closed", {"fields": ("closed_at", "closed_by", "close_reason", "moves")}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]
    inlines = [PromotionDecisionInline]
    actions = ["withdraw", "recheck_and_apply"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PromotionRequest]:
        approvals = Count("decisions", filter=Q(decisions__decision=PromotionDecision.Decision.APPROVE))
        return super().get_queryset(request).annotate(approvals_given=approvals)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        """One request, with `standing`: what its gates and approvals are weighed on now. The page's read-only
        fields are given the object alone, so the standing (selectors.promotion_request_standing) is kept on it,
        computed once for the three fields that show it."""
        request_ = super().get_object(request, object_id, from_field)
        if request_ is not None:
            request_.standing = selectors.promotion_request_standing(request_)
        return request_

    def has_act_permission(self, request: HttpRequest) -> bool:
        """Withdrawing and re-checking are the only changes a request admits here, so they take the model's change
        permission; who may do which to each request is the promotion services' rule."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    def _acted_on(self, queryset: QuerySet[PromotionRequest]) -> QuerySet[PromotionRequest]:
        return queryset.select_related("registered_model__project", "model_version__registered_model__project")

    @admin.action(description="Withdraw selected requests", permissions=["act"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[PromotionRequest]) -> None:
        def withdraw_one(target: PromotionRequest) -> str:
            promotion_withdraw(request=target, withdrawn_by=request.user)
            return f"Withdrew {target}."

        self.run_each(request, self._acted_on(queryset), withdraw_one)

    @admin.action(description="Re-check and apply selected requests", permissions=["act"])
    def recheck_and_apply(self, request: HttpRequest, queryset: QuerySet[PromotionRequest]) -> None:
        require_step_up(request)  # break glass: a fresh authentication first (core/accounts.py)

        def apply_one(target: PromotionRequest) -> str:
            applied = promotion_apply(request=target, applied_by=request.user)
            return f"Applied {target}: {applied.close_reason}"

        self.run_each(request, self._acted_on(queryset), apply_one)

    @admin.display(description="request", ordering="pk")
    def request(self, promotion: PromotionRequest) -> str:
        return f"#{promotion.pk}"

    @admin.display(description="in the portal")
    def decide_in_portal(self, promotion: PromotionRequest) -> SafeString:
        """Approving and rejecting are the portal's: its page shows the gates, the standing and the forms."""
        url = reverse("portal:promotion", args=[promotion.pk])
        if promotion.state == PromotionRequest.State.OPEN:
            return format_html('<a href="{}">Approve or reject it in the portal</a>', url)
        return format_html('<a href="{}">Its page in the portal</a>', url)

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
                for approval in promotion.standing.approvals
            ),
        )
        return format_html(
            "{} of {} required<ul>{}</ul>", promotion.standing.approvals_counted, promotion.approvals_required, standing
        )

    @admin.display(description="what stands in the way now")
    def blocked_by(self, promotion: PromotionRequest) -> str | None:
        return promotion.standing.blocked_by or None

    @admin.display(description="gates at request")
    def gates_at_request_table(self, promotion: PromotionRequest) -> SafeString | None:
        return gates_table(promotion.gates_at_request)

    @admin.display(description="gates at the last decision")
    def gates_at_decision_table(self, promotion: PromotionRequest) -> SafeString | None:
        return gates_table(promotion.gates_at_decision)

    @admin.display(description="gates now (current policy)")
    def gates_now_table(self, promotion: PromotionRequest) -> SafeString | None:
        return gates_table(promotion.standing.gates_now)

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
        "imported_from",
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
        url = reverse("admin:registry_promotionrequest_change", args=[move.promotion_request_id])
        return format_html('<a href="{}">#{}</a>', url, move.promotion_request_id)
