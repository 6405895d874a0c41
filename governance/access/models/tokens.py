from django.conf import settings
from django.db import models
from django.utils import timezone

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.roles import Scope


class ServiceAccount(models.Model):
    """Marks a user as a pipeline's account: it signs in only with tokens (never to the portal or the admin, see
    governance.access.backends), and the maintainers of its owning project may list, issue and revoke its tokens.
    Its roles are ordinary role grants, so access reviews list them like anyone's."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="service_account")
    project = models.ForeignKey(
        "artifacts.Project",
        on_delete=models.PROTECT,
        related_name="service_accounts",
        help_text="Its owner: this project's maintainers manage the account's tokens.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    # `where(user, "manage")`: the accounts a user's maintainer role makes theirs to manage.
    objects = ProjectScopedQuerySet.as_manager()

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} (service account of {self.project.slug})"


#: What `ApiToken.status` answers.
TOKEN_STATUSES = [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]


class ApiToken(models.Model):
    """A bearer token for pipelines and the CLI. Only its SHA-256 is stored; the token is shown once at issue.

    Its scope and project cap what its user's roles allow, read at each request (artifacts.access.rule, rule 6)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly-training-pipeline'.")
    prefix = models.CharField(max_length=16, db_index=True, help_text="First characters, to recognise the token.")
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, lowercase hex.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True, help_text="The address it was last used from.")
    scope = models.CharField(
        max_length=10, choices=Scope.choices, default=Scope.ADMIN, help_text="The most the token may do."
    )
    project = models.ForeignKey(
        "artifacts.Project",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The one project the token reaches; empty for every project its user's roles reach.",
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=Scope.values), name="token_scope_known"),
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")), name="token_expires_after_issue"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        """active, expired or revoked: revocation is the stronger fact, so it wins over expiry."""
        return "revoked" if self.is_revoked else "expired" if self.is_expired else "active"


class ApiTokenUse(models.Model):
    """The hour windows in which a token has been used from an address, so the audit log records its use once per
    token, address and hour rather than once per request (see `api_token_record_use`). The unique key is what
    makes exactly one process, of several serving the same token at once, write the window's entry; rows of past
    windows are removed as new ones open."""

    token = models.ForeignKey(ApiToken, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=45, blank=True, help_text="The client's address; empty if unknown.")
    window_start = models.DateTimeField(help_text="The start of the hour the use fell in.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "address", "window_start"], name="token_use_once_per_window")
        ]

    def __str__(self) -> str:
        return f"{self.token_id} from {self.address or '?'} at {self.window_start:%Y-%m-%d %H}h"
