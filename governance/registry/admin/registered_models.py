"""Registered models and their versions in the admin: models registered and described through the registry
services, by contributors to their project; their versions a record, read-only; production rolled back (break
glass) by a maintainer's action.

Who sees what is each model's `visible_to` (the version's artifact decides, restricted artifacts included); who may
do what is the services' to decide, as the logged-in user. What the admin checks itself is what the API checks in
its views first, for a read-only page rather than a refusal: describing a model takes the contributor role on its
project.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core import validators
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from artifacts.access.roles import Verb
from artifacts.access.rule import can
from artifacts.admin import NamedInProjectForm
from core.accounts import require_step_up
from core.admin import ServiceWrittenAdmin, ViewOnlyMixin, VisibleOnlyAdmin, changelist_link, short_digest
from governance.registry import selectors
from governance.registry.admin.actions import ReasonedActionsMixin
from governance.registry.models import ModelVersion, PromotionRequest, RegisteredModel, StageTransition
from governance.registry.services.promotions import MAX_JUSTIFICATION_CHARS, model_rollback
from governance.registry.services.registry import MAX_CARD_CHARS, registered_model_create, registered_model_update


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
        fields = ("project", "name", "description", "model_card", "metric_directions")

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
    fields = ("project", "name", "description", "model_card", "metric_directions", "owner_usernames")
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
            field.queryset = field.queryset.where(request.user, Verb.CONTRIBUTE)
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
            metric_directions=data["metric_directions"],
        )

    def update(self, request: HttpRequest, obj: RegisteredModel, data: dict[str, Any]) -> RegisteredModel:
        return registered_model_update(
            registered_model=obj,
            changed_by=request.user,
            description=data["description"],
            model_card=data["model_card"],
            owners=data["owner_usernames"],
            metric_directions=data["metric_directions"],
        )

    @admin.action(description="Roll back production (break glass)", permissions=["rollback"])
    def roll_back(self, request: HttpRequest, queryset: QuerySet[RegisteredModel]) -> TemplateResponse | None:
        require_step_up(request)  # break glass: a fresh authentication first (core/accounts.py)

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
