"""Retention plans over the API: what a run of the rules would do, item by item, and applying it.

Anyone who reads a project reads its plans; planning and applying need the maintainer role, which the services
check (governance/lifecycle/services/plans.py), so the admin and this API cannot differ. Applying runs as a task:
the answer is 202 with the plan as it stands then (an applied plan answers 200, unchanged).
"""

import django_filters
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from artifacts.api.base import ResourceViewSet
from artifacts.api.fields import ProjectField
from core.api.serializers import InputSerializer
from core.changes import ChangeSet
from core.jobs import enqueue_on_commit
from governance.lifecycle import selectors
from governance.lifecycle.jobs import APPLY_RETENTION_PLAN
from governance.lifecycle.models import RetentionPlan, RetentionPlanItem
from governance.lifecycle.services.plans import retention_plan_apply_start, retention_plan_create


class RetentionPlanSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Null when the project's schedule planned."
    )
    applied_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = RetentionPlan
        fields = [
            "id",
            "project",
            "policy_version",
            "state",
            "trigger",
            "created_by",
            "created_at",
            "applied_by",
            "apply_started_at",
            "applied_at",
            "versions_to_delete",
            "versions_to_archive",
            "versions_protected",
            "bytes_selected",
            "bytes_reclaimable",
        ]


@extend_schema_field(
    {
        "type": "object",
        "description": "Items counted by action (delete, archive, keep), then by state (pending, done, skipped).",
        "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
    }
)
class ProgressField(serializers.DictField):
    """A plan's items counted by action, then by state; its own class only to carry the schema above."""


class RetentionPlanDetailSerializer(RetentionPlanSerializer):
    """A plan with how far applying it went: its items counted by action and state."""

    progress = ProgressField(read_only=True)

    class Meta(RetentionPlanSerializer.Meta):
        fields = [*RetentionPlanSerializer.Meta.fields, "progress"]


class RetentionPlanItemSerializer(serializers.ModelSerializer):
    version_kind = serializers.SerializerMethodField()
    version_id = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField(help_text="`project/name@vN` of the artifact or dataset version.")
    digest = serializers.CharField(source="blob.prefixed_digest", read_only=True)

    class Meta:
        model = RetentionPlanItem
        fields = [
            "id",
            "version_kind",
            "version_id",
            "version",
            "digest",
            "size",
            "action",
            "rule",
            "protected_by",
            "state",
            "outcome",
            "done_at",
        ]

    def get_version_kind(self, item: RetentionPlanItem) -> str:
        """`artifact_version` or `dataset_version`."""
        return "artifact_version" if item.artifact_version_id else "dataset_version"

    def get_version_id(self, item: RetentionPlanItem) -> int:
        return item.artifact_version_id or item.dataset_version_id

    def get_version(self, item: RetentionPlanItem) -> str:
        return str(item.artifact_version or item.dataset_version)


class RetentionPlanCreateSerializer(InputSerializer):
    project = ProjectField()


class RetentionPlanFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug", help_text="A project's slug.")
    state = django_filters.ChoiceFilter(choices=RetentionPlan.State.choices)

    class Meta:
        model = RetentionPlan
        fields = ["project", "state"]


class RetentionPlanItemFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(choices=RetentionPlanItem.Action.choices)
    state = django_filters.ChoiceFilter(choices=RetentionPlanItem.State.choices)

    class Meta:
        model = RetentionPlanItem
        fields = ["action", "state"]


@extend_schema(tags=["lifecycle"])
class RetentionPlanViewSet(mixins.ListModelMixin, ResourceViewSet):
    """Plans of the projects you read, newest first. POST plans a project now (maintainers); `…/apply/` applies one."""

    queryset = selectors.plan_list()
    filterset_class = RetentionPlanFilter
    output_serializer_class = RetentionPlanSerializer
    input_serializer_classes = {"create": RetentionPlanCreateSerializer}
    not_allowed_message = "{method} is not offered: a plan is a record; plan again with POST, or apply it."

    def detail_response(self, plan: RetentionPlan, status_code: int = status.HTTP_200_OK) -> Response:
        plan.progress = selectors.plan_item_counts(plan)
        body = RetentionPlanDetailSerializer(plan, context=self.get_serializer_context()).data
        return Response(body, status=status_code)

    @extend_schema(responses=RetentionPlanDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.detail_response(self.get_object())

    @extend_schema(request=RetentionPlanCreateSerializer, responses={201: RetentionPlanDetailSerializer})
    def create(self, request: Request) -> Response:
        """Run the project's rules in force into a new plan, superseding its plans not applied yet."""
        project = self.validated_input()["project"]
        plan = retention_plan_create(project=project, created_by=request.user)
        return self.detail_response(plan, status.HTTP_201_CREATED)

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(RetentionPlanDetailSerializer, "Applying: the plan's items are worked through."),
            200: OpenApiResponse(RetentionPlanDetailSerializer, "Applied already: nothing more was done."),
        },
    )
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        """Apply the plan in the background, or resume one that stopped half way; 409 for a superseded plan.
        Protections are weighed again as it goes: an item protected since planning is skipped, saying why."""
        plan = self.get_object()
        with transaction.atomic(), ChangeSet():
            plan, work = retention_plan_apply_start(plan=plan, applied_by=request.user)
            if work:
                enqueue_on_commit(APPLY_RETENTION_PLAN, plan.pk, request.user.pk)
        plan = self.get_queryset().get(pk=plan.pk)
        return self.detail_response(plan, status.HTTP_202_ACCEPTED if work else status.HTTP_200_OK)

    @extend_schema(
        responses=RetentionPlanItemSerializer(many=True),
        parameters=[
            OpenApiParameter("action", str, enum=RetentionPlanItem.Action.values, description="Only this action."),
            OpenApiParameter("state", str, enum=RetentionPlanItem.State.values, description="Only this state."),
        ],
    )
    # The plan is looked up unfiltered; the items' own filter is applied below.
    @action(detail=True, methods=["get"], filter_backends=[])
    def items(self, request: Request, pk: str) -> Response:
        """The plan's items: what each version selected will undergo and by which rule, or what protects it."""
        plan = self.get_object()
        items = RetentionPlanItemFilter(
            request.query_params, queryset=selectors.plan_items(plan, request.user), request=request
        )
        if not items.is_valid():
            raise serializers.ValidationError(items.errors)
        page = self.paginate_queryset(items.qs)
        body = RetentionPlanItemSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(body)
