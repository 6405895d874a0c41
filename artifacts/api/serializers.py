"""Translation between JSON and the artifact store's models. Rules live in services; these only shape data."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.reverse import reverse

from artifacts.access.roles import Role
from artifacts.api.fields import ProjectField
from artifacts.models import (
    Artifact,
    ArtifactVersion,
    Blob,
    Dataset,
    DatasetVersion,
    Project,
    RoleGrant,
    Run,
    UploadSession,
    VersionTombstone,
)
from artifacts.services.tiers import MAX_RESTORE_DAYS
from artifacts.services.uploads import is_direct, upload_session_part_urls
from artifacts.storage.writes import min_chunk_size
from core.api.fields import CommitField, DigestField, JSONObjectField, MetricsField, ReferenceField, ReferenceListField
from core.api.serializers import InputSerializer, refuse_other_json_types
from core.validators import (
    external_run_id_validator,
    name_validator,
    slug_validator,
    validate_json_object,
    validate_metrics,
)


def _json_object(validator=validate_json_object):
    def run(value):
        try:
            validator(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None

    return run


def _user(user) -> str | None:
    return user.get_username() if user else None


class TombstoneSerializer(serializers.ModelSerializer):
    """A deleted version's tombstone: who deleted it (null: the project's retention schedule), when and why."""

    deleted_by = serializers.SerializerMethodField()
    plan_id = serializers.IntegerField(read_only=True, allow_null=True, help_text="The retention plan, if one did.")

    class Meta:
        model = VersionTombstone
        fields = ["deleted_at", "deleted_by", "reason", "rule", "plan_id"]
        read_only_fields = fields

    def get_deleted_by(self, tombstone: VersionTombstone) -> str | None:
        return _user(tombstone.deleted_by)


def deleted_field() -> TombstoneSerializer:
    return TombstoneSerializer(
        source="tombstone",
        read_only=True,
        allow_null=True,
        help_text="Null while the version is live; once deleted, its tombstone. The record stays, its bytes may be "
        "gone, and its download answers 410.",
    )


# Projects ---------------------------------------------------------------------------------------------


class ProjectSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:project-detail", lookup_field="slug")

    class Meta:
        model = Project
        fields = ["slug", "url", "name", "description", "created_at"]
        read_only_fields = fields


class ProjectCreateSerializer(InputSerializer):
    # The model's own validators, here too: the field says its shape at once and the schema carries the pattern.
    slug = serializers.CharField(max_length=64, trim_whitespace=False, validators=[slug_validator])
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectUpdateSerializer(InputSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


# Datasets ---------------------------------------------------------------------------------------------


class DatasetSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:dataset-detail")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version_count = serializers.IntegerField(read_only=True, default=0)
    latest_version = serializers.IntegerField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "url",
            "project",
            "name",
            "description",
            "version_count",
            "latest_version",
            "created_at",
        ]
        read_only_fields = fields


class DatasetCreateSerializer(InputSerializer):
    project = ProjectField()
    name = serializers.CharField(max_length=128, trim_whitespace=False, validators=[name_validator])
    description = serializers.CharField(required=False, allow_blank=True, default="")


class DescriptionUpdateSerializer(InputSerializer):
    description = serializers.CharField(allow_blank=True)


class DatasetVersionSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:datasetversion-detail")
    project = serializers.CharField(source="dataset.project.slug", read_only=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    digest = serializers.SerializerMethodField()
    size = serializers.IntegerField(source="blob.size", read_only=True, allow_null=True, default=None)
    blob_state = serializers.CharField(source="blob.state", read_only=True, allow_null=True, default=None)
    manifest_digest = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    schema = JSONObjectField(read_only=True, help_text="Column summary.")
    deleted = deleted_field()

    class Meta:
        model = DatasetVersion
        fields = [
            "id", "url", "project", "dataset", "dataset_name", "number", "digest", "size", "blob_state", "uri",
            "manifest_digest", "run", "row_count", "schema", "description", "created_by", "created_at", "download_url",
            "deleted",
        ]  # fmt: skip
        read_only_fields = fields

    def get_digest(self, version: DatasetVersion) -> str | None:
        return version.blob.prefixed_digest if version.blob_id else None

    def get_manifest_digest(self, version: DatasetVersion) -> str | None:
        return f"sha256:{version.manifest_digest}" if version.manifest_digest else None

    def get_created_by(self, version: DatasetVersion) -> str | None:
        return _user(version.created_by)

    def get_download_url(self, version: DatasetVersion) -> str | None:
        if not version.blob_id:
            return None
        return reverse(
            "api:project-blob",
            kwargs={"slug": version.dataset.project.slug, "digest": version.blob.prefixed_digest},
            request=self.context.get("request"),
        )


class DatasetVersionCreateSerializer(InputSerializer):
    dataset = ReferenceField("dataset", queryset=Dataset.objects.select_related("project"))
    digest = DigestField(required=False, help_text="Digest of a blob uploaded to the dataset's project.")
    uri = serializers.CharField(required=False, max_length=1024, default="")
    manifest_digest = DigestField(required=False, help_text="Pins data kept at `uri`.")
    run = ReferenceField("run", queryset=Run.objects.all(), required=False, allow_null=True)
    row_count = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    schema = JSONObjectField(required=False, default=dict, validators=[_json_object()])
    description = serializers.CharField(required=False, allow_blank=True, default="")


# Runs -------------------------------------------------------------------------------------------------


class RunSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:run-detail")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    input_dataset_versions = serializers.SerializerMethodField()
    input_artifact_versions = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()
    # The model's validators keep these objects: the schema says so rather than "any JSON".
    parameters = JSONObjectField(read_only=True)
    metrics = MetricsField(read_only=True)
    environment = JSONObjectField(
        read_only=True, help_text="python_version, dependencies (list of requirement strings), hardware."
    )

    class Meta:
        model = Run
        fields = [
            "id", "url", "project", "external_id", "name", "status", "code_repository", "code_commit", "entry_point",
            "parameters", "metrics", "environment", "started_at", "ended_at", "failure_reason",
            "input_dataset_versions", "input_artifact_versions", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_input_dataset_versions(self, run: Run) -> list[int]:
        return sorted(edge.dataset_version_id for edge in run.dataset_inputs.all())

    def get_input_artifact_versions(self, run: Run) -> list[int]:
        return sorted(edge.artifact_version_id for edge in run.artifact_inputs.all())

    def get_created_by(self, run: Run) -> str | None:
        return _user(run.created_by)


@extend_schema_serializer(component_name="RunEnvironment")
class EnvironmentSerializer(serializers.Serializer):
    """Where a run ran; other keys are kept as they are."""

    python_version = serializers.CharField(required=False, max_length=64)
    dependencies = serializers.ListField(child=serializers.CharField(max_length=500), required=False, max_length=5000)
    # An object, as the schema says: without the validator any JSON but null was taken, which the schema's {}
    # (anything, null included) did not say either.
    hardware = JSONObjectField(required=False, validators=[_json_object()])


@extend_schema_field(EnvironmentSerializer)
class EnvironmentField(JSONObjectField):
    """The schema names the environment's known keys (RunEnvironment), and keeps the object open to others."""


def failure_reason_field() -> serializers.CharField:
    """Why a run failed: taken when a run is sent already ended, or when a patch ends it."""
    return serializers.CharField(
        max_length=Run.FAILURE_REASON_MAX,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why the run failed or was cancelled (an exception's type, an exit status); only together with a "
        "failed or cancelled status.",
    )


class RunCreateSerializer(InputSerializer):
    project = ProjectField()
    external_id = serializers.CharField(max_length=128, trim_whitespace=False, validators=[external_run_id_validator])
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    status = serializers.ChoiceField(choices=Run.Status.choices, required=False, default=Run.Status.RUNNING)
    code_repository = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    code_commit = CommitField(required=False, allow_blank=True, default="")
    entry_point = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    parameters = JSONObjectField(required=False, default=dict, validators=[_json_object()])
    metrics = MetricsField(required=False, default=dict, validators=[_json_object(validate_metrics)])
    environment = EnvironmentField(required=False, default=dict, validators=[_json_object()])
    started_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    ended_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    failure_reason = failure_reason_field()
    # select_related: the service checks each input's project.
    input_dataset_versions = ReferenceListField(
        DatasetVersion.objects.select_related("dataset"), "dataset version", required=False, default=list
    )
    input_artifact_versions = ReferenceListField(
        ArtifactVersion.objects.select_related("artifact"), "artifact version", required=False, default=list
    )

    def validate_environment(self, value: dict) -> dict:
        refuse_other_json_types(EnvironmentSerializer().fields, value)
        shape = EnvironmentSerializer(data=value)
        if not shape.is_valid():
            raise serializers.ValidationError(shape.errors)
        return value


class RunUpdateSerializer(InputSerializer):
    status = serializers.ChoiceField(choices=Run.Status.choices, required=False)
    metrics = MetricsField(required=False, validators=[_json_object(validate_metrics)])
    ended_at = serializers.DateTimeField(required=False)
    failure_reason = failure_reason_field()


# Artifacts --------------------------------------------------------------------------------------------


class ArtifactSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:artifact-detail")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version_count = serializers.IntegerField(read_only=True, default=0)
    latest_version = serializers.IntegerField(read_only=True, allow_null=True, default=None)

    class Meta:
        model = Artifact
        fields = [
            "id", "url", "project", "name", "kind", "description", "restricted", "version_count", "latest_version",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


RESTRICTED_HELP = "Only grants on the artifact itself reach it, not project-wide roles."


class ArtifactCreateSerializer(InputSerializer):
    project = ProjectField()
    name = serializers.CharField(max_length=128, trim_whitespace=False, validators=[name_validator])
    kind = serializers.ChoiceField(choices=Artifact.Kind.choices)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    restricted = serializers.BooleanField(required=False, default=False, help_text=RESTRICTED_HELP)


class ArtifactUpdateSerializer(InputSerializer):
    description = serializers.CharField(required=False, allow_blank=True)
    restricted = serializers.BooleanField(required=False, help_text=RESTRICTED_HELP)


class ArtifactVersionSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:artifactversion-detail")
    project = serializers.CharField(source="artifact.project.slug", read_only=True)
    artifact_name = serializers.CharField(source="artifact.name", read_only=True)
    kind = serializers.CharField(source="artifact.kind", read_only=True)
    digest = serializers.CharField(source="blob.prefixed_digest", read_only=True)
    size = serializers.IntegerField(source="blob.size", read_only=True)
    blob_state = serializers.CharField(source="blob.state", read_only=True)
    verified_at = serializers.DateTimeField(source="blob.verified_at", read_only=True, allow_null=True)
    storage_class = serializers.CharField(
        source="blob.storage_class",
        read_only=True,
        help_text="The S3 storage class archival moved the bytes to; empty: the bucket's default.",
    )
    archived_at = serializers.DateTimeField(source="blob.archived_at", read_only=True, allow_null=True)
    restore_requested_at = serializers.DateTimeField(
        source="blob.restore_requested_at", read_only=True, allow_null=True
    )
    created_by = serializers.SerializerMethodField()
    download_url = serializers.HyperlinkedIdentityField(view_name="api:artifactversion-download")
    metadata = JSONObjectField(read_only=True)
    deleted = deleted_field()

    class Meta:
        model = ArtifactVersion
        fields = [
            "id", "url", "project", "artifact", "artifact_name", "kind", "number", "digest", "size", "blob_state",
            "verified_at", "storage_class", "archived_at", "restore_requested_at", "run", "media_type", "metadata",
            "license", "created_by", "created_at", "download_url", "deleted",
        ]  # fmt: skip
        read_only_fields = fields

    def get_created_by(self, version: ArtifactVersion) -> str | None:
        return _user(version.created_by)


class ArtifactVersionCreateSerializer(InputSerializer):
    artifact = ReferenceField("artifact", queryset=Artifact.objects.select_related("project"))
    digest = DigestField(help_text="Digest of a blob uploaded to the artifact's project.")
    run = ReferenceField("run", queryset=Run.objects.all(), required=False, allow_null=True)
    media_type = serializers.CharField(max_length=255, required=False, default="application/octet-stream")
    metadata = JSONObjectField(required=False, default=dict, validators=[_json_object()])
    license = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="The SPDX license expression of these bytes (e.g. 'Apache-2.0' or 'MIT OR GPL-3.0-only'); checked "
        "against the SPDX list and stored normalized. Fixed once published.",
    )


# Lineage ----------------------------------------------------------------------------------------------


class LineageNodeSerializer(serializers.Serializer):
    """One node of a lineage graph (a selectors.LineageNode), with what a reader needs to judge it."""

    DETAIL_ROUTES = {
        "dataset_version": "api:datasetversion-detail",
        "run": "api:run-detail",
        "artifact_version": "api:artifactversion-detail",
    }

    def to_representation(self, node) -> dict:
        obj = node.obj
        body = {
            "key": node.key,
            "type": node.type,
            "id": node.id,
            "label": str(obj),
            "direction": node.direction,
            "depth": node.depth,
            "url": reverse(self.DETAIL_ROUTES[node.type], kwargs={"pk": node.id}, request=self.context.get("request")),
        }
        if node.type != "run":
            # A deleted version is still part of the graph: shown as deleted, never as missing.
            tombstone = getattr(obj, "tombstone", None)
            body["deleted"] = TombstoneSerializer(tombstone).data if tombstone is not None else None
        if node.type == "run":
            body.update(status=obj.status, code_commit=obj.code_commit or None)
        elif node.type == "artifact_version":
            body.update(kind=obj.artifact.kind, digest=obj.blob.prefixed_digest, blob_state=obj.blob.state)
        else:
            body.update(digest=obj.content_digest, blob_state=obj.blob.state if obj.blob_id else None)
        return body


class LineageQuerySerializer(serializers.Serializer):
    """Query parameters; others (such as DRF's `format`) are not this serializer's business."""

    direction = serializers.ChoiceField(choices=["upstream", "downstream", "both"], default="both")
    depth = serializers.IntegerField(min_value=1, max_value=1000, default=1000)


# Blobs and uploads ------------------------------------------------------------------------------------


class ProjectBlobSerializer(serializers.ModelSerializer):
    """A blob as one project holds it; `context["project"]` names the project."""

    digest = serializers.CharField(source="prefixed_digest")
    url = serializers.SerializerMethodField()

    class Meta:
        model = Blob
        fields = [
            "digest",
            "size",
            "state",
            "verified_at",
            "collected_at",
            "storage_class",
            "archived_at",
            "restore_requested_at",
            "collected_at",
            "url",
        ]
        read_only_fields = fields

    def get_url(self, blob: Blob) -> str:
        return reverse(
            "api:project-blob",
            kwargs={"slug": self.context["project"].slug, "digest": blob.prefixed_digest},
            request=self.context.get("request"),
        )


class BlobRestoreRequestSerializer(InputSerializer):
    days = serializers.IntegerField(
        required=False,
        default=7,
        min_value=1,
        max_value=MAX_RESTORE_DAYS,
        help_text="How long the restored copy stays readable; S3 bills it for that long besides the archived bytes.",
    )


class BlobRestoreSerializer(serializers.Serializer):
    """Where a blob's archived bytes stand after a restore was asked for (a selectors.BlobReadability, with the
    blob it is about in `context["blob"]`)."""

    digest = serializers.SerializerMethodField()
    storage_class = serializers.CharField(help_text="The bytes' S3 storage class; empty: the bucket's default.")
    readable = serializers.BooleanField(help_text="Whether a download answers with the bytes now.")
    restore_required = serializers.BooleanField(
        help_text="Whether the class needs a restore before a read (GLACIER, DEEP_ARCHIVE)."
    )
    restore_in_progress = serializers.BooleanField(help_text="S3 is making the restored copy (hours).")
    restored_until = serializers.DateTimeField(
        allow_null=True, help_text="Until when the restored copy can be read, once it is made."
    )
    restore_requested_at = serializers.SerializerMethodField()

    def get_digest(self, state) -> str:
        return self.context["blob"].prefixed_digest

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_restore_requested_at(self, state) -> str | None:
        requested = self.context["blob"].restore_requested_at
        return serializers.DateTimeField().to_representation(requested) if requested else None


class UploadSessionStartSerializer(InputSerializer):
    digest = DigestField(
        required=False, allow_null=True,
        help_text="What the whole file hashes to; the upload is kept only if it does. Optional for an upload "
        "through the API to a server that keeps blobs in a folder: a client may then send the bytes while it "
        "still hashes them, and name the digest when it finishes (PUT ?digest=).",
    )  # fmt: skip
    size = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
        help_text="The file's length in bytes, if known. With it, a chunk shorter than `min_chunk_size` that stops "
        "before the end is refused before it is written; without it, such a chunk is taken as the last one.",
    )  # fmt: skip
    direct = serializers.BooleanField(
        default=False, help_text="S3 only: send the parts straight to the bucket with presigned URLs."
    )


class UploadSessionSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:upload-detail")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    digest = serializers.SerializerMethodField()
    min_chunk_size = serializers.SerializerMethodField(
        help_text="Every chunk but the last must be this long; a shorter one before the end is refused (400 "
        "chunk_too_small), and with no size announced a shorter one is taken as the last."
    )

    class Meta:
        model = UploadSession
        fields = [
            "id", "url", "project", "digest", "size", "offset", "min_chunk_size", "mode", "state", "failure",
            "parts", "expires_at", "created_at",
        ]  # fmt: skip
        read_only_fields = fields

    mode = serializers.SerializerMethodField(help_text="chunks (through the API) or direct (to the bucket).")
    parts = serializers.SerializerMethodField(
        help_text="Direct uploads, while receiving: where to PUT each part (`url`, valid until the session expires), "
        "its range (`part_number`, `offset`, `length`), and whether the bucket holds it in full already (`received`)."
    )

    def get_mode(self, session: UploadSession) -> str:
        return "direct" if is_direct(session) else "chunks"

    def get_parts(self, session: UploadSession) -> list[dict] | None:
        if not is_direct(session) or session.state != UploadSession.State.RECEIVING:
            return None
        return upload_session_part_urls(session=session)

    def get_digest(self, session: UploadSession) -> str | None:
        """None until the client names it, for a session started without one."""
        return f"sha256:{session.digest}" if session.digest else None

    def get_min_chunk_size(self, session: UploadSession) -> int:
        return min_chunk_size(session.size)


class UploadSessionListSerializer(UploadSessionSerializer):
    """A session in a list: without a direct upload's part URLs, one presigned URL per part (up to 10,000)."""

    class Meta(UploadSessionSerializer.Meta):
        fields = [name for name in UploadSessionSerializer.Meta.fields if name != "parts"]
        read_only_fields = fields


# Members (role grants) ----------------------------------------------------------------------------------


class RoleGrantSerializer(serializers.ModelSerializer):
    # A grant names a user or a group, never both: the other one is null (as is granted_by once that user is gone).
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    group = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    granted_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = RoleGrant
        fields = ["id", "role", "user", "group", "project", "artifact", "granted_by", "granted_at"]
        read_only_fields = fields


class RoleGrantCreateSerializer(InputSerializer):
    #: Said in the schema as well as by validate(): a grant names a user or a group, not both.
    exactly_one_of = ("user", "group")

    role = serializers.ChoiceField(choices=Role.choices)
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.filter(is_active=True), required=False
    )
    group = serializers.SlugRelatedField(slug_field="name", queryset=Group.objects.all(), required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].error_messages["does_not_exist"] = "No active user named '{value}'."
        self.fields["group"].error_messages["does_not_exist"] = "No group named '{value}'."

    def validate(self, attrs: dict) -> dict:
        if ("user" in attrs) == ("group" in attrs):
            raise serializers.ValidationError("Name either a user or a group to grant the role to.")
        return attrs
