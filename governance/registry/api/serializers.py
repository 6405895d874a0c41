"""The registry over the API: input shapes checked here, rules applied by governance/registry/services/promotions.py."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from artifacts.api.fields import ProjectField
from artifacts.api.serializers import ArtifactVersionSerializer
from artifacts.models import ArtifactVersion
from core.api.fields import ReferenceField
from core.api.serializers import InputSerializer
from governance.registry.gates import DIRECTIONS, FORMATS, MAX_THRESHOLDS, OPERATORS
from governance.registry.models import (
    TARGET_STAGE_CHOICES,
    ModelAlias,
    ModelVersion,
    PromotionComment,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    StageTransition,
)
from governance.registry.selectors import RESOLVED_THROUGH, Standing
from governance.registry.services.promotions import MAX_COMMENT_CHARS, MAX_JUSTIFICATION_CHARS
from governance.registry.services.registry import MAX_CARD_CHARS, POLICY_FIELDS


def _username(user) -> str | None:
    return user.get_username() if user else None


class OwnersField(serializers.ListField):
    """Owners by username: active users only, at most 50."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault(
            "child",
            serializers.SlugRelatedField(
                slug_field="username", queryset=get_user_model().objects.filter(is_active=True)
            ),
        )
        kwargs.setdefault("max_length", 50)
        super().__init__(**kwargs)


# Models ------------------------------------------------------------------------------------------------------------


class AliasSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="model_version.number")
    set_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ModelAlias
        fields = ["name", "version", "set_by", "set_at", "imported_from"]


class RegisteredModelSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owners = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    aliases = AliasSerializer(many=True, read_only=True)
    production_version = serializers.SerializerMethodField()
    metric_directions = serializers.DictField(
        child=serializers.ChoiceField(choices=DIRECTIONS),
        read_only=True,
        help_text="Which way each metric is better, as the model declares it.",
    )
    url = serializers.HyperlinkedIdentityField(view_name="api:registeredmodel-detail")

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "url",
            "project",
            "name",
            "description",
            "model_card",
            "metric_directions",
            "owners",
            "production_version",
            "aliases",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def get_production_version(self, model: RegisteredModel) -> int | None:
        """The number of the version in production now, if any."""
        return next((v.number for v in model.production_versions), None)


class RegisteredModelCreateSerializer(InputSerializer):
    project = ProjectField()
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    model_card = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MAX_CARD_CHARS, trim_whitespace=False
    )
    owners = OwnersField(required=False, default=list)
    metric_directions = serializers.DictField(
        child=serializers.ChoiceField(choices=DIRECTIONS),
        required=False,
        default=dict,
        help_text='Which way each metric is better, e.g. {"auc": "higher", "latency_ms": "lower"}.',
    )


class RegisteredModelUpdateSerializer(InputSerializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    model_card = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_CARD_CHARS, trim_whitespace=False
    )
    owners = OwnersField(required=False)
    metric_directions = serializers.DictField(
        child=serializers.ChoiceField(choices=DIRECTIONS),
        required=False,
        help_text="Replaces the declared directions as a whole; {} declares none.",
    )


class AliasSetSerializer(InputSerializer):
    name = serializers.CharField(max_length=64)
    version = serializers.IntegerField(min_value=1, help_text="The model version's number.")
    imported_from = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="For an import from another registry (`provenant import mlflow`): where the alias was copied from. "
        "Kept on the alias until a person moves it, and said in the audit entry.",
    )


class ImportedStageSerializer(InputSerializer):
    stage = serializers.ChoiceField(choices=["staging", "production", "archived"])
    imported_from = serializers.CharField(
        max_length=500,
        help_text="The registry and version the stage was copied from, e.g. "
        "`mlflow http://mlflow:5000 fraud-scorer version 3 (stage Production)`.",
    )


class RollbackSerializer(InputSerializer):
    justification = serializers.CharField(max_length=MAX_JUSTIFICATION_CHARS)


class StagesAtSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    production = serializers.IntegerField(allow_null=True)
    staging = serializers.ListField(child=serializers.IntegerField())
    archived = serializers.ListField(child=serializers.IntegerField())


# Versions ----------------------------------------------------------------------------------------------------------


class ModelVersionSerializer(serializers.ModelSerializer):
    model = serializers.PrimaryKeyRelatedField(source="registered_model", read_only=True)
    model_name = serializers.CharField(source="registered_model.name", read_only=True)
    artifact = serializers.CharField(source="artifact_version.artifact.name", read_only=True)
    digest = serializers.CharField(source="artifact_version.blob.prefixed_digest", read_only=True)
    blob_state = serializers.CharField(source="artifact_version.blob.state", read_only=True)
    run = serializers.PrimaryKeyRelatedField(source="artifact_version.run", read_only=True, allow_null=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    aliases = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:modelversion-detail")

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "url",
            "model",
            "model_name",
            "number",
            "stage",
            "stage_changed_at",
            "artifact_version",
            "artifact",
            "digest",
            "blob_state",
            "run",
            "aliases",
            "created_by",
            "created_at",
        ]


class ResolutionSerializer(serializers.Serializer):
    """What a reference names (governance.registry.selectors.Resolution): everything a client needs to download it
    (`artifact_version.download_url`, `digest`, `size`, `media_type`, `blob_state`) and, when the registry was read,
    the model version it was reached through."""

    ref = serializers.CharField(source="reference.text", help_text="The reference, as asked.")
    project = serializers.CharField(source="project.slug")
    resolved_through = serializers.ChoiceField(
        source="through",
        choices=RESOLVED_THROUGH,
        help_text="What the reference named: bytes by digest, an artifact's version number, a model's version number, "
        "a model's stage or a model's alias.",
    )
    artifact_version = ArtifactVersionSerializer(help_text="The version named, its bytes and where to download them.")
    model_version = ModelVersionSerializer(
        allow_null=True, help_text="The model version the registry reached it through; null for a digest or an "
        "artifact's version number.",
    )  # fmt: skip
    alias = serializers.CharField(allow_null=True, help_text="The alias followed, when `resolved_through` is alias.")


class ModelVersionCreateSerializer(InputSerializer):
    model = ReferenceField("model", queryset=RegisteredModel.objects.select_related("project"))
    artifact_version = ReferenceField(
        "artifact version", queryset=ArtifactVersion.objects.select_related("artifact", "blob")
    )


class StageTransitionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="model_version.number", read_only=True)
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = StageTransition
        fields = [
            "id",
            "model_version",
            "version",
            "from_stage",
            "to_stage",
            "cause",
            "break_glass",
            "promotion_request",
            "imported_from",
            "changed_by",
            "changed_at",
        ]


# Requests ----------------------------------------------------------------------------------------------------------


class GateSerializer(serializers.Serializer):
    gate = serializers.CharField()
    passed = serializers.BooleanField()
    detail = serializers.CharField()


class DecisionSerializer(serializers.ModelSerializer):
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PromotionDecision
        fields = ["reviewer", "decision", "comment", "decided_at"]


class ApprovalStandingSerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    decided_at = serializers.DateTimeField()
    comment = serializers.CharField()
    counts = serializers.BooleanField()
    reason = serializers.CharField(help_text="Why this approval does not count (empty when it does).")


class PromotionRequestSerializer(serializers.ModelSerializer):
    model = serializers.PrimaryKeyRelatedField(source="registered_model", read_only=True)
    model_name = serializers.CharField(source="registered_model.name", read_only=True)
    project = serializers.CharField(source="registered_model.project.slug", read_only=True)
    version = serializers.IntegerField(source="model_version.number", read_only=True)
    digest = serializers.SerializerMethodField()
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    closed_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who closed it; null while it is open."
    )
    gates_at_request = GateSerializer(many=True, read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:promotionrequest-detail")

    class Meta:
        model = PromotionRequest
        fields = [
            "id",
            "url",
            "kind",
            "project",
            "model",
            "model_name",
            "model_version",
            "version",
            "target_stage",
            "justification",
            "digest",
            "state",
            "requested_by",
            "requested_at",
            "expires_at",
            "policy_version",
            "approvals_required",
            "gates_at_request",
            "closed_at",
            "closed_by",
            "close_reason",
        ]

    def get_digest(self, request: PromotionRequest) -> str:
        return f"sha256:{request.digest}"


class PromotionRequestDetailSerializer(PromotionRequestSerializer):
    """One request with everything a reviewer weighs: the gates now and at the last decision, every decision, and
    which approvals count."""

    # gates_now, approvals, approvals_counted and blocked_by are the request's `Standing`
    # (governance/registry/selectors.py), which the view passes in the context as `standing`: the request itself
    # does not carry them. (A comment, not the docstring: the docstring is the schema's description.)
    gates_at_decision = GateSerializer(many=True, read_only=True)
    gates_now = serializers.SerializerMethodField(help_text="Judged now, under the current policy.")
    decisions = DecisionSerializer(many=True, read_only=True)
    approvals = serializers.SerializerMethodField()
    approvals_counted = serializers.SerializerMethodField()
    blocked_by = serializers.SerializerMethodField(help_text="What stands in the way now (empty when nothing).")

    class Meta(PromotionRequestSerializer.Meta):
        fields = [
            *PromotionRequestSerializer.Meta.fields,
            "gates_at_decision",
            "gates_weighed_at",
            "gates_now",
            "decisions",
            "approvals",
            "approvals_counted",
            "blocked_by",
        ]

    @property
    def standing(self) -> Standing:
        return self.context["standing"]

    @extend_schema_field(GateSerializer(many=True))
    def get_gates_now(self, request: PromotionRequest) -> list:
        return GateSerializer(self.standing.gates_now, many=True).data

    @extend_schema_field(ApprovalStandingSerializer(many=True))
    def get_approvals(self, request: PromotionRequest) -> list:
        return ApprovalStandingSerializer(self.standing.approvals, many=True).data

    def get_approvals_counted(self, request: PromotionRequest) -> int:
        return self.standing.approvals_counted

    def get_blocked_by(self, request: PromotionRequest) -> str:
        return self.standing.blocked_by


class PromotionRequestCreateSerializer(InputSerializer):
    model_version = ReferenceField(
        "model version", queryset=ModelVersion.objects.select_related("registered_model", "artifact_version")
    )
    target_stage = serializers.ChoiceField(choices=TARGET_STAGE_CHOICES)
    justification = serializers.CharField(max_length=MAX_JUSTIFICATION_CHARS)


class CommentSerializer(InputSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_COMMENT_CHARS)


class RejectionSerializer(InputSerializer):
    comment = serializers.CharField(max_length=MAX_COMMENT_CHARS, help_text="Why: the requester reads it.")


class PromotionCommentSerializer(serializers.ModelSerializer):
    """One comment of a request's discussion (decisions and their comments are the request's `decisions`)."""

    author = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = PromotionComment
        fields = ["id", "author", "body", "created_at"]


class PromotionCommentCreateSerializer(InputSerializer):
    body = serializers.CharField(
        max_length=MAX_COMMENT_CHARS, help_text="What you have to say; it approves or rejects nothing."
    )


# Policies ----------------------------------------------------------------------------------------------------------


class ThresholdSerializer(serializers.Serializer):
    metric = serializers.CharField()
    operator = serializers.ChoiceField(choices=[">=", ">", "<=", "<", "=="])
    value = serializers.FloatField()


class PromotionPolicySerializer(serializers.ModelSerializer):
    # The built-in default policy (version 0) was never saved: it has no id, author or time.
    id = serializers.IntegerField(read_only=True, allow_null=True, help_text="Null for the built-in default.")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    changed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    metric_thresholds = ThresholdSerializer(many=True, read_only=True)
    allowed_licenses = serializers.ListField(child=serializers.CharField(), read_only=True)
    allowed_formats = serializers.ListField(child=serializers.ChoiceField(choices=FORMATS), read_only=True)
    is_default = serializers.SerializerMethodField()

    class Meta:
        model = PromotionPolicy
        fields = [
            "id",
            "project",
            "stage",
            "version",
            "is_default",
            *POLICY_FIELDS,
            "note",
            "changed_by",
            "changed_at",
        ]

    def get_is_default(self, policy: PromotionPolicy) -> bool:
        """True for the built-in policy a stage has until a maintainer saves one (version 0, no id)."""
        return policy.version == 0


@extend_schema_field(
    {
        "type": "array",
        "maxItems": MAX_THRESHOLDS,
        "items": {
            "type": "object",
            "properties": {
                # A name with a character that is not a space, and no NUL (metric_thresholds_clean).
                "metric": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 200,
                    "pattern": "^[^\\u0000]*\\S[^\\u0000]*$",
                },
                "operator": {"type": "string", "enum": list(OPERATORS)},
                "value": {"type": "number"},
            },
            "required": ["metric", "operator", "value"],
            "additionalProperties": False,
        },
    }
)
class ThresholdsField(serializers.JSONField):
    """Metric thresholds, checked by governance.registry.gates.metric_thresholds_clean; this gives the schema
    their shape."""


class PromotionPolicySetSerializer(InputSerializer):
    """The fields to change; those left out keep their current value."""

    project = ProjectField()
    stage = serializers.ChoiceField(choices=TARGET_STAGE_CHOICES)
    approvals_required = serializers.IntegerField(required=False, min_value=1, max_value=20)
    creator_may_approve = serializers.BooleanField(required=False)
    require_verified_blob = serializers.BooleanField(required=False)
    require_complete_lineage = serializers.BooleanField(required=False)
    require_model_card = serializers.BooleanField(required=False)
    metric_thresholds = ThresholdsField(required=False)
    allowed_licenses = serializers.ListField(
        child=serializers.CharField(max_length=500),
        required=False,
        max_length=200,
        help_text='SPDX identifiers a version\'s declared license must be satisfied by, e.g. ["MIT", "Apache-2.0"]; '
        "[] turns the gate off.",
    )
    block_vulnerable_dependencies = serializers.BooleanField(required=False)
    block_unsafe_formats = serializers.BooleanField(required=False)
    allowed_formats = serializers.ListField(
        child=serializers.ChoiceField(choices=FORMATS),
        required=False,
        max_length=len(FORMATS),
        help_text='Formats, as detected from the bytes, a version may be in, e.g. ["safetensors", "onnx"]; [] turns '
        "the gate off.",
    )
    require_trusted_signature = serializers.BooleanField(required=False)
    min_hours_in_production = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=8760)
    request_ttl_hours = serializers.IntegerField(required=False, min_value=1, max_value=24 * 90)
    previous_production_to = serializers.ChoiceField(required=False, choices=PromotionPolicy.PreviousProduction.choices)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
