"""The staff console for the artifact store.

The record cannot be rewritten from here either: blobs, versions and run inputs are view-only; projects,
datasets and artifacts are added and edited through the same services the API calls; nothing is deleted.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import models
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from artifacts import selectors, services
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    Dataset,
    DatasetVersion,
    Project,
    ProjectBlob,
    Run,
    RunArtifactInput,
    RunDatasetInput,
)
from core.admin import (
    ChosenThroughAutocompleteMixin,
    DigestSearchMixin,
    ServiceWrittenAdmin,
    ViewOnlyMixin,
    VisibleOnlyAdmin,
    admin_link,
    changelist_link,
    human_size,
    json_block,
    short_digest,
)
from core.errors import DomainError


class NamedInProjectForm(forms.ModelForm):
    """Add form for things named uniquely within their project (datasets, artifacts).

    Model validation reports a taken name, a clash with the (project, name) constraint, as an error of the
    whole form; the name is what the user should change, so the error is shown on that field.
    """

    def full_clean(self) -> None:
        super().full_clean()
        general = self.errors.get(NON_FIELD_ERRORS)
        if not general or "name" not in self.fields:
            return
        clashes = [error for error in general.as_data() if error.code == "unique_together"]
        if not clashes:
            return
        general.data = [error for error in general.as_data() if error.code != "unique_together"]
        if not general.data:
            del self.errors[NON_FIELD_ERRORS]
        self.add_error("name", clashes)


# Projects ---------------------------------------------------------------------------------------------


def _per_project_count(model: type[models.Model]) -> Coalesce:
    """How many `model` rows each project has, as a subquery: counting three relations through joins in
    one query would multiply their rows together."""
    rows = model.objects.filter(project=OuterRef("pk")).order_by().values("project").annotate(n=Count("pk"))
    return Coalesce(Subquery(rows.values("n"), output_field=IntegerField()), 0)


@admin.register(Project)
class ProjectAdmin(ChosenThroughAutocompleteMixin, ServiceWrittenAdmin):
    list_display = ("slug", "name", "datasets", "artifacts", "runs", "created_at")
    search_fields = ("slug", "name")
    fields = ("slug", "name", "description")
    identity_fields = ("slug",)
    detail_fields = ("datasets", "artifacts", "runs", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                dataset_count=_per_project_count(Dataset),
                artifact_count=_per_project_count(Artifact),
                run_count=_per_project_count(Run),
            )
        )

    def create(self, request: HttpRequest, data: dict[str, Any]) -> Project:
        return services.project_create(
            slug=data["slug"], name=data["name"], description=data["description"], created_by=request.user
        )

    def update(self, request: HttpRequest, obj: Project, data: dict[str, Any]) -> Project:
        return services.project_update(project=obj, name=data["name"], description=data["description"])

    @admin.display(ordering="dataset_count")
    def datasets(self, project: Project) -> SafeString:
        return changelist_link(Dataset, str(project.dataset_count), project__id__exact=project.pk)

    @admin.display(ordering="artifact_count")
    def artifacts(self, project: Project) -> SafeString:
        return changelist_link(Artifact, str(project.artifact_count), project__id__exact=project.pk)

    @admin.display(ordering="run_count")
    def runs(self, project: Project) -> SafeString:
        return changelist_link(Run, str(project.run_count), project__id__exact=project.pk)


# Blobs ------------------------------------------------------------------------------------------------


class ProjectBlobInline(ViewOnlyMixin, admin.TabularInline):
    model = ProjectBlob
    verbose_name = "upload"
    verbose_name_plural = "uploaded to projects"
    fields = ("project", "uploaded_by", "created_at")
    readonly_fields = ("created_at",)  # not a form field, so it must be named as read-only to be shown
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProjectBlob]:
        return super().get_queryset(request).select_related("project", "uploaded_by")


@admin.register(Blob)
class BlobAdmin(ViewOnlyMixin, DigestSearchMixin, VisibleOnlyAdmin):
    list_display = ("digest_short", "size_human", "state", "verified_at", "created_at")
    list_filter = ("state",)
    search_fields = ("^digest",)
    date_hierarchy = "created_at"
    show_full_result_count = False  # one COUNT(*) of the whole table per page is not worth it
    fields = ("digest_full", "size_exact", "state", "verified_at", "storage_key", "created_at")
    readonly_fields = ("digest_full", "size_exact", "storage_key")
    inlines = [ProjectBlobInline]

    @admin.display(description="digest", ordering="digest")
    def digest_short(self, blob: Blob) -> SafeString | None:
        return short_digest(blob.digest)

    @admin.display(description="size", ordering="size")
    def size_human(self, blob: Blob) -> str | None:
        return human_size(blob.size)

    @admin.display(description="digest")
    def digest_full(self, blob: Blob) -> str:
        return blob.prefixed_digest

    @admin.display(description="size")
    def size_exact(self, blob: Blob) -> str | None:
        return f"{human_size(blob.size)} ({blob.size:,} bytes)" if blob.size >= 1024 else human_size(blob.size)


@admin.register(ProjectBlob)
class ProjectBlobAdmin(ViewOnlyMixin, DigestSearchMixin, VisibleOnlyAdmin):
    list_display = ("digest", "project", "size", "blob_state", "uploaded_by", "created_at")
    list_filter = ("project", "blob__state")
    list_select_related = ("project", "blob", "uploaded_by")
    search_fields = ("^blob__digest", "project__slug", "uploaded_by__username")
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ("project", "blob", "size", "blob_state", "uploaded_by", "created_at")
    readonly_fields = ("size", "blob_state")

    @admin.display(ordering="blob__digest")
    def digest(self, link: ProjectBlob) -> SafeString | None:
        return short_digest(link.blob.digest)

    @admin.display(ordering="blob__size")
    def size(self, link: ProjectBlob) -> str | None:
        return human_size(link.blob.size)

    @admin.display(ordering="blob__state")
    def blob_state(self, link: ProjectBlob) -> str:
        return link.blob.get_state_display()


# Datasets ---------------------------------------------------------------------------------------------


@admin.register(Dataset)
class DatasetAdmin(ServiceWrittenAdmin):
    form = NamedInProjectForm
    list_display = ("name", "project", "versions", "latest_version", "created_at")
    list_filter = ("project",)
    search_fields = ("name", "project__slug", "description")
    autocomplete_fields = ("project",)
    fields = ("project", "name", "description")
    identity_fields = ("project", "name")
    detail_fields = ("versions", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dataset]:
        # The selector brings the project and the version count and latest number in the page's one query.
        return selectors.dataset_list().visible_to(request.user)

    def create(self, request: HttpRequest, data: dict[str, Any]) -> Dataset:
        return services.dataset_create(project=data["project"], name=data["name"], description=data["description"])

    def update(self, request: HttpRequest, obj: Dataset, data: dict[str, Any]) -> Dataset:
        return services.dataset_update(dataset=obj, description=data["description"])

    @admin.display(ordering="version_count")
    def versions(self, dataset: Dataset) -> SafeString:
        return changelist_link(DatasetVersion, str(dataset.version_count), dataset__id__exact=dataset.pk)

    @admin.display(ordering="latest_version")
    def latest_version(self, dataset: Dataset) -> str | None:
        return f"v{dataset.latest_version}" if dataset.latest_version else None


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ViewOnlyMixin, DigestSearchMixin, VisibleOnlyAdmin):
    list_display = (
        "dataset_link",
        "version",
        "digest",
        "size",
        "location",
        "row_count",
        "blob_state",
        "run_link",
        "created_by",
        "created_at",
    )
    list_display_links = ("version",)
    list_filter = ("dataset__project", "blob__state")
    list_select_related = ("dataset__project", "blob", "run__project", "created_by")
    search_fields = ("dataset__name", "dataset__project__slug", "^blob__digest", "^manifest_digest", "uri")
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = (
        "dataset",
        "number",
        "blob",
        "size",
        "blob_state",
        "uri",
        "manifest_digest",
        "row_count",
        "schema_json",
        "description",
        "run",
        "created_by",
        "created_at",
    )
    readonly_fields = ("size", "blob_state", "schema_json")

    @admin.display(description="dataset", ordering="dataset__name")
    def dataset_link(self, version: DatasetVersion) -> SafeString | None:
        return admin_link(version.dataset)

    @admin.display(ordering="number")
    def version(self, version: DatasetVersion) -> str:
        return f"v{version.number}"

    @admin.display(description="content digest")
    def digest(self, version: DatasetVersion) -> SafeString | None:
        return short_digest(version.content_digest)

    @admin.display(ordering="blob__size")
    def size(self, version: DatasetVersion) -> str | None:
        return human_size(version.blob.size) if version.blob_id else None

    @admin.display
    def location(self, version: DatasetVersion) -> str:
        return "stored here" if version.blob_id else version.uri

    @admin.display(ordering="blob__state")
    def blob_state(self, version: DatasetVersion) -> str | None:
        return version.blob.get_state_display() if version.blob_id else None

    @admin.display(description="run", ordering="run__external_id")
    def run_link(self, version: DatasetVersion) -> SafeString | None:
        return admin_link(version.run)

    @admin.display(description="schema")
    def schema_json(self, version: DatasetVersion) -> SafeString:
        return json_block(version.schema)


# Runs -------------------------------------------------------------------------------------------------


class RunDatasetInputInline(ViewOnlyMixin, admin.TabularInline):
    model = RunDatasetInput
    verbose_name = "input dataset version"
    verbose_name_plural = "input dataset versions"
    fields = ("dataset_version", "digest")
    readonly_fields = ("digest",)
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[RunDatasetInput]:
        # Each row prints its version as project/dataset@vN and its digest.
        return (
            super().get_queryset(request).select_related("dataset_version__dataset__project", "dataset_version__blob")
        )

    @admin.display
    def digest(self, edge: RunDatasetInput) -> SafeString | None:
        return short_digest(edge.dataset_version.content_digest)


class RunArtifactInputInline(ViewOnlyMixin, admin.TabularInline):
    model = RunArtifactInput
    verbose_name = "input artifact version"
    verbose_name_plural = "input artifact versions"
    fields = ("artifact_version", "digest")
    readonly_fields = ("digest",)
    extra = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[RunArtifactInput]:
        return (
            super()
            .get_queryset(request)
            .select_related("artifact_version__artifact__project", "artifact_version__blob")
        )

    @admin.display
    def digest(self, edge: RunArtifactInput) -> SafeString | None:
        return short_digest(edge.artifact_version.blob.digest)


@admin.register(Run)
class RunAdmin(ViewOnlyMixin, VisibleOnlyAdmin):
    """Runs are recorded by pipelines through the API and are view-only here; staff may cancel a run
    whose pipeline died, through the same service a pipeline uses to finish it."""

    list_display = (
        "external_id",
        "project",
        "name",
        "status",
        "commit",
        "started_at",
        "ended_at",
        "created_by",
        "created_at",
    )
    list_filter = ("project", "status")
    list_select_related = ("project", "created_by")
    search_fields = ("external_id", "name", "^code_commit", "project__slug", "code_repository", "entry_point")
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ["cancel_runs"]
    inlines = [RunDatasetInputInline, RunArtifactInputInline]
    fieldsets = [
        (None, {"fields": ("project", "external_id", "name", "created_by", "created_at")}),
        ("Code", {"fields": ("code_repository", "code_commit", "entry_point", "parameters_json", "environment_json")}),
        ("Progress", {"fields": ("status", "started_at", "ended_at", "metrics_json")}),
        ("Outputs", {"fields": ("outputs",)}),
    ]
    readonly_fields = ("parameters_json", "environment_json", "metrics_json", "outputs")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    @admin.action(description="Cancel selected running runs", permissions=["cancel"])
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        cancelled, refusals = 0, []
        for run in queryset.select_related("project"):
            try:
                services.run_update(run=run, status=Run.Status.CANCELLED)
            except DomainError as error:
                refusals.append(error.message)
            else:
                cancelled += 1
                self.log_change(request, run, "Cancelled.")
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} run(s).", level=messages.SUCCESS)
        if refusals:
            self.message_user(request, f"Skipped {len(refusals)}: " + " ".join(refusals), level=messages.WARNING)

    @admin.display(ordering="code_commit")
    def commit(self, run: Run) -> str | None:
        return run.code_commit[:12] or None

    @admin.display(description="parameters")
    def parameters_json(self, run: Run) -> SafeString:
        return json_block(run.parameters)

    @admin.display(description="environment")
    def environment_json(self, run: Run) -> SafeString:
        return json_block(run.environment)

    @admin.display(description="metrics")
    def metrics_json(self, run: Run) -> SafeString:
        return json_block(run.metrics)

    @admin.display(description="versions produced")
    def outputs(self, run: Run) -> SafeString | None:
        produced = [
            *run.produced_dataset_versions.select_related("dataset__project"),
            *run.produced_artifact_versions.select_related("artifact__project"),
        ]
        if not produced:
            return None
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((admin_link(v),) for v in produced)))


# Artifacts --------------------------------------------------------------------------------------------


@admin.register(Artifact)
class ArtifactAdmin(ServiceWrittenAdmin):
    form = NamedInProjectForm
    list_display = ("name", "project", "kind", "restricted", "versions", "latest_version", "created_at")
    list_filter = ("project", "kind", "restricted")
    search_fields = ("name", "project__slug", "description")
    autocomplete_fields = ("project",)
    fields = ("project", "name", "kind", "description", "restricted")
    identity_fields = ("project", "name", "kind")
    detail_fields = ("versions", "created_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Artifact]:
        # The selector brings the project and the version count and latest number in the page's one query.
        return selectors.artifact_list().visible_to(request.user)

    def create(self, request: HttpRequest, data: dict[str, Any]) -> Artifact:
        return services.artifact_create(
            project=data["project"],
            name=data["name"],
            kind=data["kind"],
            description=data["description"],
            restricted=data["restricted"],
            created_by=request.user,
        )

    def update(self, request: HttpRequest, obj: Artifact, data: dict[str, Any]) -> Artifact:
        return services.artifact_update(
            artifact=obj, description=data["description"], restricted=data["restricted"], changed_by=request.user
        )

    @admin.display(ordering="version_count")
    def versions(self, artifact: Artifact) -> SafeString:
        return changelist_link(ArtifactVersion, str(artifact.version_count), artifact__id__exact=artifact.pk)

    @admin.display(ordering="latest_version")
    def latest_version(self, artifact: Artifact) -> str | None:
        return f"v{artifact.latest_version}" if artifact.latest_version else None


@admin.register(ArtifactVersion)
class ArtifactVersionAdmin(ViewOnlyMixin, DigestSearchMixin, VisibleOnlyAdmin):
    list_display = (
        "artifact_link",
        "version",
        "digest",
        "size",
        "blob_state",
        "media_type",
        "run_link",
        "created_by",
        "created_at",
    )
    list_display_links = ("version",)
    list_filter = ("artifact__project", "artifact__kind", "blob__state")
    list_select_related = ("artifact__project", "blob", "run__project", "created_by")
    search_fields = (
        "artifact__name",
        "artifact__project__slug",
        "^blob__digest",
        "run__external_id",
        "^run__code_commit",
    )
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = (
        "artifact",
        "number",
        "blob",
        "size",
        "blob_state",
        "media_type",
        "metadata_json",
        "run",
        "created_by",
        "created_at",
    )
    readonly_fields = ("size", "blob_state", "metadata_json")

    @admin.display(description="artifact", ordering="artifact__name")
    def artifact_link(self, version: ArtifactVersion) -> SafeString | None:
        return admin_link(version.artifact)

    @admin.display(ordering="number")
    def version(self, version: ArtifactVersion) -> str:
        return f"v{version.number}"

    @admin.display(ordering="blob__digest")
    def digest(self, version: ArtifactVersion) -> SafeString | None:
        return short_digest(version.blob.digest)

    @admin.display(ordering="blob__size")
    def size(self, version: ArtifactVersion) -> str | None:
        return human_size(version.blob.size)

    @admin.display(ordering="blob__state")
    def blob_state(self, version: ArtifactVersion) -> str:
        return version.blob.get_state_display()

    @admin.display(description="run", ordering="run__external_id")
    def run_link(self, version: ArtifactVersion) -> SafeString | None:
        return admin_link(version.run)

    @admin.display(description="metadata")
    def metadata_json(self, version: ArtifactVersion) -> SafeString:
        return json_block(version.metadata)
