"""`GET /api/v1/me/`: who the server takes the caller for, so a person checking a profile (`provenant whoami`) or
a pipeline checking its service account sees the user, the token in use and the roles held, in one call.

Like every read but downloads and audit exports, it is not written to the audit log: it hands out nothing of
the catalog, only what the caller's own credentials already are.
"""

from itertools import groupby

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts.access.selectors import role_grants_held_by
from governance.access.api import serializers as s
from governance.access.models import ApiToken


def _projects(user: AbstractBaseUser) -> list[dict]:
    grants = role_grants_held_by(user)
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
            "service_account": not user.has_usable_password(),
            "superuser": user.is_superuser,
            "token": token,
            "projects": _projects(user),
        }
        return Response(s.WhoAmISerializer(document).data)
