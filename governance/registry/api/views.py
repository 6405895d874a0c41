"""The model registry and promotions over the API, for pipelines (register, request) and reviewers (decide).

Who sees what follows the artifact a model version points to (restricted artifacts included), through each
model's `visible_to`. The separation-of-duties rules live in governance/registry/services/promotions.py, so the admin
and this API cannot differ: views only translate.
"""

import json

import django_filters
from django.db.models import Prefetch
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.access.roles import Verb
from artifacts.api.base import ResourceViewSet, not_found_detail, project_or_404, require
from artifacts.models import Project
from core.accounts import require_step_up
from core.errors import InvalidInput, NotFound
from core.validators import MAX_ID
from governance.registry import selectors
from governance.registry.api import serializers as s
from governance.registry.bom import MEDIA_TYPE as BOM_MEDIA_TYPE
from governance.registry.bom import model_version_bom
from governance.registry.models import (
    TARGET_STAGE_CHOICES,
    TARGET_STAGES,
    ModelVersion,
    PromotionComment,
    PromotionDecision,
    PromotionPolicy,
    PromotionRequest,
    RegisteredModel,
    Stage,
    StageTransition,
)
from governance.registry.services import promotions, registry
from governance.supplychain.selectors.attestations import provenance_withheld


class RegisteredModelFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug", help_text="A project's slug.")
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Part of the model's name.")

    class Meta:
        model = RegisteredModel
        fields = ["project", "name"]


class ModelVersionFilter(django_filters.FilterSet):
    model = django_filters.NumberFilter(field_name="registered_model_id", min_value=1, max_value=MAX_ID)
    stage = django_filters.ChoiceFilter(choices=Stage.choices)

    class Meta:
        model = ModelVersion
        fields = ["model", "stage"]


class PromotionRequestFilter(django_filters.FilterSet):
    model = django_filters.NumberFilter(field_name="registered_model_id", min_value=1, max_value=MAX_ID)
    project = django_filters.CharFilter(field_name="registered_model__project__slug", help_text="A project's slug.")
    state = django_filters.ChoiceFilter(choices=PromotionRequest.State.choices)
    target_stage = django_filters.ChoiceFilter(choices=TARGET_STAGE_CHOICES)
    kind = django_filters.ChoiceFilter(choices=PromotionRequest.Kind.choices)

    class Meta:
        model = PromotionRequest
        fields = ["model", "project", "state", "target_stage", "kind"]


class PromotionPolicyFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__slug", help_text="A project's slug.")
    stage = django_filters.ChoiceFilter(choices=TARGET_STAGE_CHOICES)

    class Meta:
        model = PromotionPolicy
        fields = ["project", "stage"]


@extend_schema(tags=["registry"])
class RegisteredModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = RegisteredModel.objects.all()
    filterset_class = RegisteredModelFilter
    output_serializer_class = s.RegisteredModelSerializer
    input_serializer_classes = {
        "create": s.RegisteredModelCreateSerializer,
        "partial_update": s.RegisteredModelUpdateSerializer,
        "set_alias": s.AliasSetSerializer,
        "rollback": s.RollbackSerializer,
    }
    required_verbs = {"partial_update": Verb.CONTRIBUTE, "set_alias": Verb.CONTRIBUTE, "delete_alias": Verb.CONTRIBUTE}
    not_allowed_message = "{method} is not offered: models are never deleted; describe one with PATCH."

    def get_queryset(self):
        return selectors.registered_model_list(self.request.user).visible_to(self.request.user)

    @extend_schema(request=s.RegisteredModelCreateSerializer, responses={201: s.RegisteredModelSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        require(request.user, Verb.CONTRIBUTE, data["project"])
        return self.write(lambda: registry.registered_model_create(created_by=request.user, **data), created=True)

    @extend_schema(request=s.RegisteredModelUpdateSerializer, responses=s.RegisteredModelSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        model = self.get_object()
        data = self.validated_input()
        return self.write(
            lambda: registry.registered_model_update(registered_model=model, changed_by=request.user, **data)
        )

    @extend_schema(request=s.AliasSetSerializer, responses=s.RegisteredModelSerializer)
    @action(detail=True, methods=["post"], url_path="aliases")
    def set_alias(self, request: Request, pk: str) -> Response:
        """Point an alias at a version (creating or moving it); every move is audited."""
        model = self.get_object()
        data = self.validated_input()
        version = ModelVersion.objects.visible_to(request.user).filter(registered_model=model, number=data["version"])
        found = version.first()
        if found is None:
            raise InvalidInput(f"Model '{model.name}' has no version {data['version']} you can see.", field="version")
        return self.write(
            lambda: (
                registry.model_alias_set(
                    registered_model=model,
                    name=data["name"],
                    model_version=found,
                    set_by=request.user,
                    imported_from=data["imported_from"],
                )[0].registered_model
            )
        )

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"aliases/(?P<alias>[A-Za-z0-9][A-Za-z0-9._-]{0,63})")
    def delete_alias(self, request: Request, pk: str, alias: str) -> Response:
        model = self.get_object()
        found = model.aliases.filter(
            name=alias, model_version__in=ModelVersion.objects.visible_to(request.user).values("pk")
        ).first()
        if found is None:
            raise NotFound(f"Model '{model.name}' has no alias '{alias}'.")
        registry.model_alias_delete(alias=found, deleted_by=request.user)
        return Response(status=204)

    @extend_schema(
        request=None,
        responses=s.StageTransitionSerializer(many=True),
        parameters=[
            OpenApiParameter(
                "version",
                {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                description="Only this version's moves.",
            )
        ],
    )
    # The model's filters (project, name) pick models in the list; they do not apply to one model's history.
    @action(detail=True, methods=["get"], url_path="stage-history", filter_backends=[])
    def stage_history(self, request: Request, pk: str) -> Response:
        """Every stage move of the model's versions, newest first: who, when, why, under which request."""
        model = self.get_object()
        moves = StageTransition.objects.visible_to(request.user).filter(registered_model=model)
        moves = moves.select_related("model_version", "changed_by")  # version numbers and names, not a query per row
        version = request.query_params.get("version")
        if version is not None:
            if not (version.isascii() and version.isdigit() and len(version) <= 18):
                raise InvalidInput("`version` is a version number.", field="version")
            moves = moves.filter(model_version__number=int(version))
        page = self.paginate_queryset(moves.order_by("-id"))
        return self.get_paginated_response(s.StageTransitionSerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses=s.StagesAtSerializer,
        parameters=[
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description="The moment asked about (default, or left empty: now).",
            )
        ],
    )
    @action(detail=True, methods=["get"])
    def stages(self, request: Request, pk: str) -> Response:
        """Which version was in production (and staging, archived) at a moment: `?at=2026-11-01T12:00:00Z`."""
        model = self.get_object()
        field = serializers.DateTimeField()
        raw = request.query_params.get("at")
        try:
            at = field.to_internal_value(raw) if raw else timezone.now()
        except serializers.ValidationError:
            raise InvalidInput("`at` is a date and time like 2026-11-01T12:00:00Z.", field="at") from None
        return Response(s.StagesAtSerializer(selectors.model_stages_at(model, at, request.user)).data)

    @extend_schema(request=s.RollbackSerializer, responses={201: s.PromotionRequestSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str) -> Response:
        """Break glass: restore the previous production version at once (maintainers). Answers the review request
        reviewers must approve afterwards."""
        model = self.get_object()
        require_step_up(request)
        data = self.validated_input()
        review = promotions.model_rollback(registered_model=model, rolled_back_by=request.user, **data)
        review = selectors.promotion_request_list().visible_to(request.user).get(pk=review.pk)
        return Response(s.PromotionRequestSerializer(review, context=self.get_serializer_context()).data, status=201)


@extend_schema(tags=["registry"])
class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.model_version_list()
    filterset_class = ModelVersionFilter
    output_serializer_class = s.ModelVersionSerializer
    input_serializer_classes = {"create": s.ModelVersionCreateSerializer, "imported_stage": s.ImportedStageSerializer}
    not_allowed_message = "{method} is not offered: a model version always names the same artifact version."

    @extend_schema(
        request=s.ModelVersionCreateSerializer,
        responses={201: s.ModelVersionSerializer, 200: OpenApiResponse(s.ModelVersionSerializer, "Already registered")},
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        require(request.user, Verb.CONTRIBUTE, data["artifact_version"].artifact)
        return self.write(
            lambda: registry.model_version_register(
                registered_model=data["model"], artifact_version=data["artifact_version"], created_by=request.user
            )
        )

    @extend_schema(
        request=None,
        responses={
            (200, "application/vnd.cyclonedx+json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                "The version's AI bill of materials, CycloneDX 1.6 JSON (https://cyclonedx.org/docs/1.6/json/): the "
                "model with its SHA-256, license and model card, its run's datasets and dependencies.",
            ),
            403: OpenApiResponse(
                description="The BOM names the producing run or inputs that the caller may not read (a grantee of "
                "the artifact alone): like the signed attestation, it is handed only to who may read them all."
            ),
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def bom(self, request: Request, pk: str) -> HttpResponse:
        """Download the version's ML-BOM (CycloneDX 1.6 JSON), as an attachment."""
        version = self.get_object()
        if withheld := provenance_withheld(version.artifact_version, request.user):
            raise PermissionDenied(withheld)
        document = model_version_bom(version)
        model = version.registered_model
        response = HttpResponse(json.dumps(document, indent=2), content_type=BOM_MEDIA_TYPE)
        filename = f"{model.project.slug}-{model.name}-v{version.number}.cdx.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @extend_schema(
        request=s.ImportedStageSerializer,
        responses={
            201: OpenApiResponse(s.ModelVersionSerializer, "The move was recorded, as imported"),
            200: OpenApiResponse(s.ModelVersionSerializer, "The version was in that stage already"),
        },
    )
    @action(detail=True, methods=["post"], url_path="imported-stage")
    def imported_stage(self, request: Request, pk: str) -> Response:
        """Record the stage the version held in the registry it was imported from (maintainers; `provenant import
        mlflow`). The stage history says `imported` with the source, never a promotion; refused once the model's
        stages have moved here by a promotion or rollback."""
        version = self.get_object()
        data = self.validated_input()
        return self.write(
            lambda: promotions.model_version_stage_import(model_version=version, imported_by=request.user, **data)
        )


@extend_schema(tags=["registry"])
class PromotionRequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    queryset = selectors.promotion_request_list()
    filterset_class = PromotionRequestFilter
    output_serializer_class = s.PromotionRequestSerializer
    input_serializer_classes = {
        "create": s.PromotionRequestCreateSerializer,
        "approve": s.CommentSerializer,
        "reject": s.RejectionSerializer,
        "comment_add": s.PromotionCommentCreateSerializer,
    }
    not_allowed_message = "{method} is not offered: requests are a record; withdraw one with POST …/withdraw/."

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list" or self.action == "awaiting_me":
            return queryset
        # The detail weighs gates and approvals: the version's bytes, run and creator, and every decision.
        return queryset.select_related(
            "model_version__artifact_version__artifact",
            "model_version__artifact_version__blob",
            "model_version__artifact_version__run",
            "model_version__registered_model",
        ).prefetch_related(Prefetch("decisions", queryset=PromotionDecision.objects.select_related("reviewer")))

    def detail_response(self, pk: int, status: int = 200) -> Response:
        request = self.get_queryset().get(pk=pk)
        context = {**self.get_serializer_context(), "standing": selectors.promotion_request_standing(request)}
        body = s.PromotionRequestDetailSerializer(request, context=context).data
        return Response(body, status=status)

    @extend_schema(responses=s.PromotionRequestDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return self.detail_response(self.get_object().pk)

    @extend_schema(request=s.PromotionRequestCreateSerializer, responses={201: s.PromotionRequestDetailSerializer})
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        created = promotions.promotion_request_create(requested_by=request.user, **data)
        return self.detail_response(created.pk, status=201)

    @extend_schema(responses=s.PromotionRequestSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="awaiting-me")
    def awaiting_me(self, request: Request) -> Response:
        """Open requests you may decide and have not: you review the version's artifact and did not ask."""
        awaiting = self.filter_queryset(self.get_queryset().awaiting(request.user))
        page = self.paginate_queryset(awaiting)
        return self.get_paginated_response(
            s.PromotionRequestSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    @extend_schema(request=s.CommentSerializer, responses=s.PromotionRequestDetailSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str) -> Response:
        """Approve. When this is the last approval needed and every gate passes, the version moves at once."""
        target = self.get_object()
        if selectors.decision_needs_step_up(target):
            require_step_up(request)
        promotions.promotion_approve(request=target, reviewer=request.user, **self.validated_input())
        return self.detail_response(target.pk)

    @extend_schema(request=s.RejectionSerializer, responses=s.PromotionRequestDetailSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str) -> Response:
        """Reject, saying why: it closes the request."""
        target = self.get_object()
        if selectors.decision_needs_step_up(target):
            require_step_up(request)
        promotions.promotion_reject(request=target, reviewer=request.user, **self.validated_input())
        return self.detail_response(target.pk)

    @extend_schema(request=None, responses=s.PromotionRequestDetailSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        target = self.get_object()
        promotions.promotion_withdraw(request=target, withdrawn_by=request.user)
        return self.detail_response(target.pk)

    @extend_schema(request=None, responses=s.PromotionRequestDetailSerializer)
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        """Weigh the request again now and apply it if it may be (its gates may have passed since the last
        approval); 409 saying what stands in the way otherwise."""
        target = self.get_object()
        promotions.promotion_apply(request=target, applied_by=request.user)
        return self.detail_response(target.pk)

    @extend_schema(request=None, responses=s.PromotionCommentSerializer(many=True))
    # The request's filters pick requests in the list; they do not apply to one request's discussion.
    @action(detail=True, methods=["get"], filter_backends=[])
    def comments(self, request: Request, pk: str) -> Response:
        """The request's discussion, newest first: whoever may see the request reads it."""
        target = self.get_object()
        # Each comment names its author: joined, not a query per comment.
        found = PromotionComment.objects.filter(request=target).select_related("author")
        page = self.paginate_queryset(found)
        return self.get_paginated_response(s.PromotionCommentSerializer(page, many=True).data)

    @extend_schema(request=s.PromotionCommentCreateSerializer, responses={201: s.PromotionCommentSerializer})
    @comments.mapping.post
    def comment_add(self, request: Request, pk: str) -> Response:
        """Add a comment to the request's discussion, open or closed: whoever may see the request may. It approves
        or rejects nothing (decide with approve/ or reject/); it is audited and never edited."""
        target = self.get_object()
        comment = promotions.promotion_comment_add(request=target, author=request.user, **self.validated_input())
        return Response(s.PromotionCommentSerializer(comment).data, status=201)


@extend_schema(tags=["registry"])
class PromotionPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ResourceViewSet):
    """Every saved version of every stage's policy, newest first; `current/` answers the one in force (the built-in
    default, version 0, until a maintainer saves one). POST saves the next version."""

    queryset = PromotionPolicy.objects.select_related("project", "changed_by")
    filterset_class = PromotionPolicyFilter
    output_serializer_class = s.PromotionPolicySerializer
    input_serializer_classes = {"create": s.PromotionPolicySetSerializer}
    not_allowed_message = "{method} is not offered: a policy version is never edited; POST the next version."

    @extend_schema(
        request=s.PromotionPolicySetSerializer,
        responses={
            201: s.PromotionPolicySerializer,
            200: OpenApiResponse(s.PromotionPolicySerializer, "Nothing changed: the policy in force"),
        },
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        policy, created = registry.promotion_policy_set(changed_by=request.user, **data)
        body = s.PromotionPolicySerializer(policy, context=self.get_serializer_context()).data
        return Response(body, status=201 if created else 200)

    @extend_schema(
        responses=s.PromotionPolicySerializer(many=True),
        parameters=[
            OpenApiParameter(
                "project", {"type": "string", "minLength": 1}, required=True, description="A project's slug."
            )
        ],
    )
    # One policy per target stage: a short, whole list, neither paged nor filtered.
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def current(self, request: Request) -> Response:
        """The policy in force for each stage of a project."""
        slug = request.query_params.get("project", "")
        if not slug:
            raise InvalidInput("Name a project: `?project=<slug>`.", field="project")
        project = Project.objects.visible_to(request.user).filter(slug=slug).first()
        if project is None:
            # A 400 as the schema documents (the project is a query parameter, not the path), in the 404's words.
            raise InvalidInput(not_found_detail(Project, "slug", slug), field="project")
        require(request.user, Verb.VIEW, project)
        policies = [selectors.policy_current(project, stage) for stage in TARGET_STAGES]
        return Response(s.PromotionPolicySerializer(policies, many=True, context=self.get_serializer_context()).data)


@extend_schema(tags=["registry"])
class ReferenceResolveView(APIView):
    """`GET /resolve/?project=<slug>&ref=<reference>`: the artifact version a reference names, in one call, with
    what a client needs to download it. The forms and how each is read: governance.registry.selectors
    (reference_parse, reference_resolve)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "project", {"type": "string", "minLength": 1}, required=True, description="A project's slug."
            ),
            OpenApiParameter(
                "ref",
                {"type": "string", "minLength": 1, "maxLength": selectors.MAX_REFERENCE_CHARS},
                required=True,
                description="`fraud-scorer@production` (a model's stage), `fraud-scorer@champion` (a model's "
                "alias), `model@3` (a version number of the model or the artifact so named), `model:x@3` or "
                "`artifact:x@3` (read the name as that alone), `sha256:<hex>` (the version with these bytes). "
                "`<artifact>@<stage or alias>` answers the artifact's version a model of the project holds there.",
            ),
        ],
        description="The artifact version a reference names in a project, with what a client needs to download it "
        "(`artifact_version.download_url`, `digest`, `size`, `media_type`, `blob_state`) and the model version the "
        "registry reached it through. A digest names the project's version with those bytes. `<name>@<number>` reads "
        "the name as a model's and as an artifact's: where both have that version number and they differ, the "
        "reference is ambiguous (`model:` or `artifact:` before the name picks one). Stages and aliases belong to "
        "registered models: `<name>@<stage or alias>` answers the model's version there, or, where no model has the "
        "name, the version of the artifact so named that one model of the project holds there. Only what the caller "
        "may see is read: the rest answers 404 in the words of what does not exist.",
        responses={
            200: s.ResolutionSerializer,
            404: OpenApiResponse(
                description="No such project, or nothing the reference names that you may see (`not_found`), or "
                "several versions it could name (`ambiguous_reference`, the message names them)."
            ),
        },
    )
    def get(self, request: Request) -> Response:
        """Resolve a reference to one artifact version of a project."""
        slug = request.query_params.get("project", "")
        if not slug:
            raise InvalidInput("Name the project to resolve in: `?project=<slug>`.", field="project")
        # A malformed reference is refused before the project is looked up: the 400 says nothing of the project.
        reference = selectors.reference_parse(request.query_params.get("ref", ""))
        project = project_or_404(request.user, slug)
        resolution = selectors.reference_resolve(project=project, reference=reference, user=request.user)
        return Response(s.ResolutionSerializer(resolution, context={"request": request}).data)
