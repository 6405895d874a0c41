"""Legal holds over the API: a project's holds (its maintainers and auditors see them; nobody else learns they
exist), placing one on the project or on one thing in it, and releasing one, each with a reason."""

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from artifacts.api.base import ResourceViewSet
from artifacts.api.fields import ProjectField
from artifacts.models import Artifact, ArtifactVersion, Dataset, DatasetVersion
from core.accounts import require_step_up
from core.api.fields import ReferenceField
from core.api.serializers import InputSerializer
from core.filters import BooleanFilter
from governance.lifecycle.models import HOLD_SCOPES, LegalHold
from governance.lifecycle.selectors import hold_scope
from governance.lifecycle.services.holds import MAX_REASON_CHARS, legal_hold_place, legal_hold_release

SCOPES = ("project", *HOLD_SCOPES)


class LegalHoldSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    scope = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()
    placed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    released_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = LegalHold
        fields = [
            "id",
            "project",
            "scope",
            *HOLD_SCOPES,
            "reason",
            "active",
            "placed_by",
            "placed_at",
            "released_by",
            "released_at",
            "release_reason",
        ]
        read_only_fields = fields

    @extend_schema_field({"enum": list(SCOPES)})
    def get_scope(self, hold: LegalHold) -> str:
        """What the hold names: the whole project, or one artifact, dataset or version (its id in that field)."""
        return hold_scope(hold)

    def get_active(self, hold: LegalHold) -> bool:
        """True until the hold is released: while active, nothing it covers is archived or deleted."""
        return hold.released_at is None


class LegalHoldPlaceSerializer(InputSerializer):
    """The project, and at most one thing in it to hold (none: the whole project)."""

    project = ProjectField()
    artifact = ReferenceField("artifact", queryset=Artifact.objects.all(), required=False)
    artifact_version = ReferenceField(
        "artifact version", queryset=ArtifactVersion.objects.select_related("artifact"), required=False
    )
    dataset = ReferenceField("dataset", queryset=Dataset.objects.all(), required=False)
    dataset_version = ReferenceField(
        "dataset version", queryset=DatasetVersion.objects.select_related("dataset"), required=False
    )
    reason = serializers.CharField(max_length=MAX_REASON_CHARS, help_text="Why: the matter the hold is for.")


class LegalHoldReleaseSerializer(InputSerializer):
    reason = serializers.CharField(max_length=MAX_REASON_CHARS, help_text="Why the hold is no longer needed.")


class LegalHoldFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug", help_text="A project's slug.")
    active = BooleanFilter(method="filter_active", help_text="true: holds in force; false: released ones.")

    class Meta:
        model = LegalHold
        fields = ["project", "active"]

    def filter_active(self, queryset: QuerySet[LegalHold], name: str, value: bool) -> QuerySet[LegalHold]:
        return queryset.filter(released_at__isnull=value)


@extend_schema(tags=["lifecycle"])
class LegalHoldViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    """A project's legal holds, newest first. Placing and releasing take the auditor or maintainer role on the
    project (governance/lifecycle/services/holds.py); a hold is never edited or deleted, only released."""

    # The project's slug and the two people's names are on every row: joined, not three queries a row.
    queryset = LegalHold.objects.select_related("project", "placed_by", "released_by")
    filterset_class = LegalHoldFilter
    output_serializer_class = LegalHoldSerializer
    input_serializer_classes = {"create": LegalHoldPlaceSerializer, "release": LegalHoldReleaseSerializer}
    not_allowed_message = "{method} is not offered: a legal hold is never edited or deleted; release it."

    @extend_schema(request=LegalHoldPlaceSerializer, responses={201: LegalHoldSerializer})
    def create(self, request: Request) -> Response:
        require_step_up(request)
        data = self.validated_input()
        return self.write(lambda: legal_hold_place(placed_by=request.user, **data), created=True)

    @extend_schema(request=LegalHoldReleaseSerializer, responses=LegalHoldSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str) -> Response:
        """Release the hold, saying why; 409 if it was released already."""
        hold = self.get_object()
        require_step_up(request)
        data = self.validated_input()
        return self.write(lambda: legal_hold_release(hold=hold, released_by=request.user, reason=data["reason"]))
