from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from artifacts.access.roles import Role, Scope
from core.api.serializers import InputSerializer
from governance.access.models import ApiToken, ServiceAccount
from governance.access.models.tokens import TOKEN_STATUSES
from governance.access.services import MAX_TOKEN_LIFETIME


class TokenInUseSerializer(serializers.Serializer):
    """The token that authenticated the request: never its secret, only what names it."""

    name = serializers.CharField(help_text="What the token is for, as named when it was issued.")
    prefix = serializers.CharField(help_text="Its first characters, to recognise it among the user's tokens.")
    expires_at = serializers.DateTimeField()
    scope = serializers.ChoiceField(choices=Scope.choices, help_text="The most the token may do, within the roles.")
    project = serializers.CharField(
        source="project.slug",
        allow_null=True,
        help_text="The slug of the one project the token reaches; null for every project.",
    )


class HeldRoleSerializer(serializers.Serializer):
    """A role held on a project, or on one artifact of it; `group` names the group it comes through, if any."""

    role = serializers.ChoiceField(choices=Role.choices)
    artifact = serializers.CharField(
        allow_null=True, help_text="The artifact's name for a grant on one artifact; null for the whole project."
    )
    group = serializers.CharField(allow_null=True, help_text="The group the role is held through; null when direct.")


class ProjectRolesSerializer(serializers.Serializer):
    project = serializers.CharField(help_text="The project's slug.")
    roles = HeldRoleSerializer(many=True)


class WhoAmISerializer(serializers.Serializer):
    """Who the server takes the caller for (governance.access.api.views.WhoAmIView)."""

    username = serializers.CharField()
    service_account = serializers.BooleanField(
        help_text="An account that signs in only with tokens (no usable password), as `create_user "
        "--service-account` makes for pipelines."
    )
    superuser = serializers.BooleanField(help_text="An administrator: every project, whatever the roles below.")
    token = TokenInUseSerializer(
        allow_null=True, help_text="The token that authenticated this request; null for a portal session."
    )
    projects = ProjectRolesSerializer(many=True, help_text="The roles held, by project (slug order).")


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as its managers see it: never its secret, which only the answer to its creation holds."""

    user = serializers.CharField(source="user.get_username", help_text="The user the token acts as.")
    service_account = serializers.SerializerMethodField(
        help_text="Whether its user is a service account (owned by a project, signing in only with tokens)."
    )
    project = serializers.CharField(
        source="project.slug",
        allow_null=True,
        read_only=True,
        help_text="The slug of the one project the token reaches; null for every project its user's roles reach.",
    )
    status = serializers.ChoiceField(choices=TOKEN_STATUSES, read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "user",
            "service_account",
            "scope",
            "project",
            "created_at",
            "expires_at",
            "last_used_at",
            "last_used_ip",
            "revoked_at",
            "status",
        ]
        read_only_fields = fields

    def get_service_account(self, token: ApiToken) -> bool:
        return hasattr(token.user, "service_account")


class ApiTokenIssuedSerializer(ApiTokenSerializer):
    token = serializers.CharField(help_text="The secret, shown this once: it is not stored and cannot be shown again.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(InputSerializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly-training'.")
    scope = serializers.ChoiceField(
        choices=Scope.choices,
        help_text="The most the token may do, within its user's roles at each use: read (GET only), write "
        "(publish), review (approve or reject promotions), admin (everything the roles allow).",
    )
    expires_at = serializers.DateTimeField(help_text="When it stops working: within 366 days.")
    project = serializers.SlugField(
        required=False, allow_null=True, help_text="Restrict the token to this project (a slug); omit for none."
    )
    user = serializers.CharField(
        required=False,
        help_text="Whose token: yours if omitted, or a service account of a project you maintain.",
    )

    def validate_expires_at(self, value):
        lifetime = value - timezone.now()
        if not timedelta(minutes=1) <= lifetime <= MAX_TOKEN_LIFETIME:
            raise serializers.ValidationError("A token expires between one minute and 366 days from now.")
        return value


class ServiceAccountSerializer(serializers.ModelSerializer):
    """A pipeline's account: its maintainers issue its tokens (`POST /tokens/` with `user`) and grant it roles
    (`POST /projects/{slug}/members/`)."""

    username = serializers.CharField(source="user.get_username", help_text="The account's username.")
    project = serializers.CharField(source="project.slug", help_text="The project owning it.")
    active = serializers.BooleanField(source="user.is_active", help_text="False once deactivated: its tokens fail.")

    class Meta:
        model = ServiceAccount
        fields = ["id", "username", "project", "active", "created_at"]
        read_only_fields = fields


class ServiceAccountCreateSerializer(InputSerializer):
    username = serializers.CharField(max_length=150, help_text="A new username, e.g. 'nightly-training'.")
    project = serializers.SlugField(help_text="The project owning it (a slug): you must maintain it.")
    role = serializers.ChoiceField(
        choices=Role.choices,
        required=False,
        help_text="A role to grant it on the project at once; more through the project's members endpoint.",
    )
