"""Retention policies over the API: every saved version of a project's rules (history), the one in force, and the
next version saved by a maintainer. The rules' shape and meaning: governance/lifecycle/rules.py."""

import django_filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from artifacts.access.roles import Verb
from artifacts.api.base import ResourceViewSet, not_found_detail, require
from artifacts.api.fields import ProjectField
from artifacts.models import Project
from core.api.serializers import InputSerializer
from core.errors import InvalidInput
from governance.lifecycle import rules as r
from governance.lifecycle.models import RetentionPolicy
from governance.lifecycle.selectors import retention_policy_current
from governance.lifecycle.services.policies import MAX_NOTE_CHARS, retention_policy_set


def _names(values: tuple[str, ...], *, min_items: int = 1) -> dict:
    return {"type": "array", "items": {"enum": list(values)}, "uniqueItems": True, "minItems": min_items}


RULE_SCHEMA = {
    "type": "object",
    "properties": {
        # A name with a character that is not a space, and no NUL (rules_clean).
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": r.MAX_NAME_CHARS,
            "pattern": "^[^\\u0000]*\\S[^\\u0000]*$",
        },
        "action": {"enum": list(r.ACTIONS)},
        "kinds": _names(r.KINDS, min_items=0),
        "run_statuses": _names(r.RUN_STATUSES),
        "older_than_days": {"type": "integer", "minimum": 0, "maximum": r.MAX_DAYS},
        "keep_last_versions": {"type": "integer", "minimum": 1, "maximum": r.MAX_KEEP},
        "keep_last_runs": {"type": "integer", "minimum": 1, "maximum": r.MAX_KEEP},
        "stages": _names(r.SELECTABLE_STAGES),
    },
    "required": ["name", "action"],
    "additionalProperties": False,
}


@extend_schema_field({"type": "array", "maxItems": r.MAX_RULES, "items": RULE_SCHEMA})
class RulesField(serializers.JSONField):
    """Retention rules, checked by governance.lifecycle.rules.rules_clean; this gives the schema their shape."""


class RetentionPolicySerializer(serializers.ModelSerializer):
    # The built-in default (version 0) was never saved: it has no id, author or time.
    id = serializers.IntegerField(read_only=True, allow_null=True, help_text="Null for the built-in default.")
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    rules = RulesField(read_only=True)
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    changed_at = serializers.DateTimeField(read_only=True, allow_null=True)
    is_default = serializers.SerializerMethodField()

    class Meta:
        model = RetentionPolicy
        fields = ["id", "project", "version", "is_default", "rules", "auto_apply", "note", "changed_by", "changed_at"]

    def get_is_default(self, policy: RetentionPolicy) -> bool:
        """True until a maintainer saves rules (version 0: no rules, nothing selected)."""
        return policy.version == 0


class RetentionPolicySetSerializer(InputSerializer):
    """What to change; left out, the rules or `auto_apply` keep their value in force."""

    project = ProjectField()
    rules = RulesField(required=False, help_text="The whole list of rules from now on, in the order they are tried.")
    auto_apply = serializers.BooleanField(
        required=False, help_text="Apply each scheduled plan without waiting for a maintainer."
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=MAX_NOTE_CHARS)


class RetentionPolicyFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug", help_text="A project's slug.")

    class Meta:
        model = RetentionPolicy
        fields = ["project"]


@extend_schema(tags=["lifecycle"])
class RetentionPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    """Every saved version of every project's retention rules, newest first; `current/` answers the one in force
    (the built-in default, version 0 with no rules, until a maintainer saves one). POST saves the next version."""

    # The project's slug and the author's name are on every row: joined, not one query each.
    queryset = RetentionPolicy.objects.select_related("project", "changed_by")
    filterset_class = RetentionPolicyFilter
    output_serializer_class = RetentionPolicySerializer
    input_serializer_classes = {"create": RetentionPolicySetSerializer}
    not_allowed_message = "{method} is not offered: a policy version is never edited; POST the next version."

    @extend_schema(
        request=RetentionPolicySetSerializer,
        responses={
            201: RetentionPolicySerializer,
            200: OpenApiResponse(RetentionPolicySerializer, "Nothing changed: the policy in force"),
        },
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        policy, created = retention_policy_set(changed_by=request.user, **data)
        body = RetentionPolicySerializer(policy, context=self.get_serializer_context()).data
        return Response(body, status=201 if created else 200)

    @extend_schema(
        responses=RetentionPolicySerializer,
        parameters=[
            OpenApiParameter(
                "project", {"type": "string", "minLength": 1}, required=True, description="A project's slug."
            )
        ],
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def current(self, request: Request) -> Response:
        """The rules in force in a project."""
        slug = request.query_params.get("project", "")
        if not slug:
            raise InvalidInput("Name a project: `?project=<slug>`.", field="project")
        project = Project.objects.visible_to(request.user).filter(slug=slug).first()
        if project is None:
            # A 400 as the schema documents (the project is a query parameter, not the path), in the 404's words.
            raise InvalidInput(not_found_detail(Project, "slug", slug), field="project")
        require(request.user, Verb.VIEW, project)
        policy = retention_policy_current(project)
        return Response(RetentionPolicySerializer(policy, context=self.get_serializer_context()).data)
