"""`GET /api/v1/me/`: who the server takes the caller for, so a person checking a profile (`provenant whoami`) or
a pipeline checking its service account sees the user, the token in use and the roles held, in one call.

Like every read but downloads and audit exports, it is not written to the audit log: it hands out nothing of
the catalog, only what the caller's own credentials already are.
"""

from itertools import groupby

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.access.selectors import role_grants_held_by
from artifacts.api.base import get_or_404
from artifacts.models import Project
from core.errors import InvalidInput
from governance.access import services
from governance.access.api import serializers as s
from governance.access.models import ApiToken
from governance.access.selectors import service_accounts_manageable_by, tokens_manageable_by


def _projects(user: AbstractBaseUser, token: ApiToken | None) -> list[dict]:
    grants = role_grants_held_by(user)
    if token is not None and token.project_id is not None:
        # A project-restricted token answers for its project alone: the others are out of its reach.
        grants = grants.filter(project_id=token.project_id)
    return [
        {
            "project": slug,
            "roles": [
                {
                    "role": grant.role,
                    "artifact": grant.artifact.name if grant.artifact_id else None,
                    "group": grant.group.name if grant.group_id else None,
                }
                for grant in project_grants
            ],
        }
        for slug, project_grants in groupby(grants, key=lambda grant: grant.project.slug)
    ]


@extend_schema(tags=["access"])
class WhoAmIView(APIView):
    """The caller: username, whether a service account, the token that authenticated the request, and roles."""

    @extend_schema(
        responses=s.WhoAmISerializer,
        description="Who the server takes you for: your username, whether yours is a service account (one that "
        "signs in only with tokens), whether you are an administrator, the token this request was authenticated "
        "with (its name, prefix and expiry; null for a portal session) and the roles you hold, directly or through "
        "a group, by project.",
    )
    def get(self, request: Request) -> Response:
        user = request.user
        token = request.auth if isinstance(request.auth, ApiToken) else None
        document = {
            "username": user.get_username(),
            "service_account": hasattr(user, "service_account") or not user.has_usable_password(),
            "superuser": user.is_superuser,
            "token": token,
            "projects": _projects(user, token),
        }
        return Response(s.WhoAmISerializer(document).data)


@extend_schema(tags=["access"])
class ApiTokenListView(APIView):
    """Tokens: your own, and those of the service accounts of projects you maintain (all, for an administrator).

    Who may manage which is the token services' rule (governance.access.services.tokens); what a token may do
    is the access rule's (artifacts.access.rule, rule 6). Issuing or revoking through a token takes an admin one.
    """

    @extend_schema(responses=s.ApiTokenSerializer(many=True), operation_id="tokens_list")
    def get(self, request: Request) -> Response:
        tokens = tokens_manageable_by(request.user)
        return Response(s.ApiTokenSerializer(tokens, many=True).data)

    @extend_schema(
        request=s.ApiTokenCreateSerializer,
        responses={201: s.ApiTokenIssuedSerializer},
        operation_id="tokens_create",
        description="Issue a token for yourself or for a service account of a project you maintain. The answer "
        "holds the secret (`token`) this once. A token never does more than its user's roles allow at the time "
        "of use, nor more than its scope, nor outside its project.",
    )
    def post(self, request: Request) -> Response:
        data = s.ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        user = request.user
        if username := fields.get("user"):
            user = get_user_model()._default_manager.filter(username=username).first()
            # The same answer whether the user exists or not: the endpoint is no way to list usernames.
            if user is None or not services.may_manage_tokens_of(request.user, user):
                raise InvalidInput(
                    f"'{username}' is neither you nor a service account of a project you maintain.", field="user"
                )
        project = None
        if slug := fields.get("project"):
            project = Project.objects.visible_to(request.user).filter(slug=slug).first()
            if project is None:
                raise InvalidInput(f"No project '{slug}'.", field="project")
        token, plaintext = services.api_token_issue(
            user=user,
            name=fields["name"],
            lifetime=fields["expires_at"] - timezone.now(),
            scope=fields["scope"],
            project=project,
            issued_by=request.user,
        )
        token.token = plaintext
        return Response(s.ApiTokenIssuedSerializer(token).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["access"])
class ApiTokenDetailView(APIView):
    """One token you manage; any other answers 404, as one that does not exist."""

    @extend_schema(responses=s.ApiTokenSerializer, operation_id="tokens_retrieve")
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ApiTokenSerializer(get_or_404(tokens_manageable_by(request.user), "pk", pk)).data)


@extend_schema(tags=["access"])
class ApiTokenRevokeView(APIView):
    """Revoke a token at once: its next request answers 401."""

    @extend_schema(request=None, responses=s.ApiTokenSerializer, operation_id="tokens_revoke")
    def post(self, request: Request, pk: int) -> Response:
        token = get_or_404(tokens_manageable_by(request.user), "pk", pk)
        token = services.api_token_revoke(token=token, revoked_by=request.user)
        return Response(s.ApiTokenSerializer(tokens_manageable_by(request.user).get(pk=token.pk)).data)


@extend_schema(tags=["access"])
class ServiceAccountListView(APIView):
    """Service accounts: those of the projects you maintain (all, for an administrator). Creating one, and
    deactivating it, takes the maintainer role on its project (and, through a token, an admin-scoped one)."""

    @extend_schema(responses=s.ServiceAccountSerializer(many=True), operation_id="service_accounts_list")
    def get(self, request: Request) -> Response:
        return Response(s.ServiceAccountSerializer(service_accounts_manageable_by(request.user), many=True).data)

    @extend_schema(
        request=s.ServiceAccountCreateSerializer,
        responses={201: s.ServiceAccountSerializer},
        operation_id="service_accounts_create",
        description="Create a service account owned by a project you maintain: a new user that never signs in to "
        "the portal, with no token yet (issue one with `POST /tokens/` naming it as `user`) and no role unless "
        "`role` grants one on the project (grant more with the project's members endpoint). Audited.",
    )
    def post(self, request: Request) -> Response:
        data = s.ServiceAccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        project = Project.objects.visible_to(request.user).filter(slug=fields["project"]).first()
        if project is None:
            raise InvalidInput(f"No project '{fields['project']}'.", field="project")
        account = services.service_account_open(
            username=fields["username"], project=project, created_by=request.user, role=fields.get("role")
        )
        return Response(s.ServiceAccountSerializer(account).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["access"])
class ServiceAccountDetailView(APIView):
    """One service account you manage; any other answers 404, as one that does not exist."""

    @extend_schema(responses=s.ServiceAccountSerializer, operation_id="service_accounts_retrieve")
    def get(self, request: Request, pk: int) -> Response:
        account = get_or_404(service_accounts_manageable_by(request.user), "pk", pk)
        return Response(s.ServiceAccountSerializer(account).data)


@extend_schema(tags=["access"])
class ServiceAccountDeactivateView(APIView):
    """Switch a service account off: every token of it answers 401 from its next request. Audited."""

    @extend_schema(request=None, responses=s.ServiceAccountSerializer, operation_id="service_accounts_deactivate")
    def post(self, request: Request, pk: int) -> Response:
        account = get_or_404(service_accounts_manageable_by(request.user), "pk", pk)
        account = services.service_account_deactivate(account=account, deactivated_by=request.user)
        return Response(s.ServiceAccountSerializer(account).data)
