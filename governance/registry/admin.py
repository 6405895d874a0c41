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

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename, get_user_model
from django.core import validators
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from artifacts.access.roles import Verb
from artifacts.access.rule import can, projects_where
from artifacts.admin import NamedInProjectForm
from artifacts.models import Project
from core.admin import ServiceWrittenAdmin, ViewOnlyMixin, VisibleOnlyAdmin, changelist_link, short_digest, skipped
from core.errors import DomainError
from governance.registry import selectors
from governance.registry.models import (
    ModelVersion,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    StageTransition,
)
from governance.registry.services.promotions import (
    MAX_COMMENT_CHARS,
    MAX_JUSTIFICATION_CHARS,
    model_rollback,
    promotion_apply,
    promotion_approve,
    promotion_reject,
    promotion_withdraw,
)
from governance.registry.services.registry import (
    MAX_CARD_CHARS,
    POLICY_FIELDS,
    promotion_policy_clean,
    promotion_policy_set,
    registered_model_create,
    registered_model_update,
)

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
    """Admin actions that ask for a text first (on templates/admin/registry/action_with_reason.html), then run a
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
        return TemplateResponse(request, "admin/registry/action_with_reason.html", context)

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
        url = reverse("admin:registry_modelversion_change", args=[version.pk])
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
                current = selectors.policy_current(project, stage)
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
        url = reverse("admin:registry_promotionpolicy_add")
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
        """One request, with `standing`: what its gates and approvals are weighed on now. The page's read-only
        fields are given the object alone, so the standing (selectors.promotion_request_standing) is kept on it,
        computed once for the three fields that show it."""
        request_ = super().get_object(request, object_id, from_field)
        if request_ is not None:
            request_.standing = selectors.promotion_request_standing(request_)
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
