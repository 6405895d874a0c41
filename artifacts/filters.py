"""Query-string filters for the API's list endpoints (django-filter)."""

import django_filters
from django.db.models import QuerySet

from artifacts.models import Artifact, ArtifactVersion, Blob, Dataset, DatasetVersion, Run
from core.filters import COMMIT_HELP, CommitFilter, DigestFilter, IdFilter, MetadataFilter


class DatasetFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = Dataset
        fields = ["project", "name"]


# References are filtered by id, not validated as a choice among every row: a choice answers 400 for an id that
# does not exist and an empty page for one in a project the user may not see, which would tell the two apart.
class DatasetVersionFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="dataset__project__slug")
    dataset = IdFilter(field_name="dataset")
    run = IdFilter(field_name="run")
    digest = DigestFilter(fields=("blob__digest", "manifest_digest"), help_text="Blob or manifest digest.")

    class Meta:
        model = DatasetVersion
        fields = ["project", "dataset", "run", "digest"]


class RunFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")
    commit = CommitFilter(field_name="code_commit", help_text=COMMIT_HELP)
    dataset_version = IdFilter(
        field_name="dataset_inputs__dataset_version", help_text="Runs that consumed this dataset version."
    )
    artifact_version = IdFilter(
        field_name="artifact_inputs__artifact_version", help_text="Runs that consumed this artifact version."
    )
    parameter = MetadataFilter(field_name="parameters", help_text="key:value on the run's parameters.")

    class Meta:
        model = Run
        fields = [
            "project",
            "status",
            "external_id",
            "commit",
            "dataset_version",
            "artifact_version",
            "parameter",
        ]


class ArtifactFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug")

    class Meta:
        model = Artifact
        fields = ["project", "kind", "name"]


class ArtifactVersionFilter(django_filters.FilterSet):
    #: The filters that select whole artifacts (each an exact match on a field of the version's artifact), and the
    #: same lookup made on the artifact itself; the others select versions within an artifact.
    ARTIFACT_LOOKUPS = {"project": "project__slug", "artifact": "pk", "kind": "kind"}

    project = django_filters.CharFilter(field_name="artifact__project__slug")
    artifact = IdFilter(field_name="artifact")
    run = IdFilter(field_name="run")
    kind = django_filters.ChoiceFilter(field_name="artifact__kind", choices=Artifact.Kind.choices)
    commit = CommitFilter(field_name="run__code_commit", help_text="Versions produced by runs of this commit.")
    dataset_version = IdFilter(
        field_name="run__dataset_inputs__dataset_version",
        help_text="Versions produced by runs that consumed this dataset version.",
    )
    digest = DigestFilter(fields=("blob__digest",))
    metadata = MetadataFilter(field_name="metadata", help_text="key:value, e.g. framework:pytorch.")
    state = django_filters.ChoiceFilter(field_name="blob__state", choices=Blob.State.choices)

    def artifacts(self, artifacts: QuerySet[Artifact]) -> QuerySet[Artifact] | None:
        """Of `artifacts`, those the versions this (valid) filter leaves can belong to: its project, artifact and kind
        filters made on the artifact; None when it has none of them. The newest-first page finds a user's few
        artifacts among these (selectors.artifact_versions_in_page), so a list filtered by a project counts that
        project's artifacts, not every artifact the user sees."""
        given = {lookup: self.form.cleaned_data.get(name) for name, lookup in self.ARTIFACT_LOOKUPS.items()}
        given = {lookup: value for lookup, value in given.items() if value not in (None, "")}
        return artifacts.filter(**given) if given else None

    class Meta:
        model = ArtifactVersion
        fields = [
            "project",
            "artifact",
            "kind",
            "run",
            "commit",
            "dataset_version",
            "digest",
            "metadata",
            "state",
        ]
