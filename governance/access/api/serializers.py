from rest_framework import serializers

from artifacts.access.roles import Role


class TokenInUseSerializer(serializers.Serializer):
    """The token that authenticated the request: never its secret, only what names it."""

    name = serializers.CharField(help_text="What the token is for, as named when it was issued.")
    prefix = serializers.CharField(help_text="Its first characters, to recognise it among the user's tokens.")
    expires_at = serializers.DateTimeField()


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
