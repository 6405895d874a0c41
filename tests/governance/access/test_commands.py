"""create_user, issue_token, revoke_token and list_tokens: the operator's way to make accounts and to hand out and
withdraw API access."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from artifacts.models import RoleGrant
from core.models import AuditEntry
from governance.access.models import ApiToken, ServiceAccount
from governance.access.services import api_token_revoke
from tests.artifacts.factories import ArtifactFactory, ProjectFactory, UserFactory
from tests.governance.factories import ApiTokenFactory

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects/"


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def plaintext_in(output: str) -> str:
    """The token is printed alone on its line."""
    match = re.search(r"^\s+(prv_[A-Za-z0-9_-]{43})$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def lifetime_of(token: ApiToken) -> timedelta:
    """To the second: created_at is stamped by the database save, a moment after expiry was computed."""
    return timedelta(seconds=round((token.expires_at - token.created_at).total_seconds()))


# issue_token ------------------------------------------------------------------------------------------


def test_issued_token_authenticates_until_revoked(user, client_with):
    output = run("issue_token", user.username, "--name", "nightly-training")

    plaintext = plaintext_in(output)
    token = ApiToken.objects.get()
    assert token.name == "nightly-training"
    assert token.prefix in output
    assert f"{token.expires_at:%Y-%m-%d %H:%M}" in output
    assert "cannot be shown again" in output
    api = client_with(plaintext)
    assert api.get(PROJECTS).status_code == 200

    run("revoke_token", token.prefix)

    assert api.get(PROJECTS).status_code == 401


def test_lifetime_defaults_to_the_setting(user, settings):
    settings.PROVENANT_TOKEN_DEFAULT_DAYS = 7

    run("issue_token", user.username, "--name", "ci")

    assert lifetime_of(ApiToken.objects.get()) == timedelta(days=7)


def test_days_sets_the_lifetime(user):
    run("issue_token", user.username, "--name", "ci", "--days", "30")

    assert lifetime_of(ApiToken.objects.get()) == timedelta(days=30)


@pytest.mark.parametrize("days", ["0", "-1", "367", "9999999999"])
def test_lifetime_outside_what_a_token_may_live_is_refused(user, days):
    with pytest.raises(CommandError, match="366 days"):
        run("issue_token", user.username, "--name", "ci", "--days", days)
    assert not ApiToken.objects.exists()


def test_unknown_user_is_refused(db):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        run("issue_token", "nobody", "--name", "ci")


def test_service_refusals_become_command_errors(user):
    with pytest.raises(CommandError, match="Give the token a name"):
        run("issue_token", user.username, "--name", "   ")

    user.is_active = False
    user.save(update_fields=["is_active"])
    with pytest.raises(CommandError, match="inactive"):
        run("issue_token", user.username, "--name", "ci")


# revoke_token -----------------------------------------------------------------------------------------


def test_revoke_by_id(db, client_with):
    token = ApiTokenFactory()

    output = run("revoke_token", str(token.pk))

    token.refresh_from_db()
    assert token.is_revoked
    assert token.prefix in output
    assert client_with(token.plaintext).get(PROJECTS).status_code == 401


def test_revoke_by_the_start_of_a_prefix(db):
    token = ApiTokenFactory()
    other = ApiTokenFactory()
    start = next(token.prefix[:n] for n in range(5, 13) if not other.prefix.startswith(token.prefix[:n]))

    run("revoke_token", start)

    token.refresh_from_db()
    other.refresh_from_db()
    assert token.is_revoked
    assert not other.is_revoked


def test_a_leaked_token_can_be_revoked_by_pasting_it(db):
    token = ApiTokenFactory()

    run("revoke_token", token.plaintext)

    token.refresh_from_db()
    assert token.is_revoked


def test_ambiguous_prefix_is_refused_and_revokes_nothing(db):
    tokens = ApiTokenFactory.create_batch(2)

    with pytest.raises(CommandError, match="matches several tokens") as refusal:
        run("revoke_token", "prv_")

    assert all(f"{token.prefix}…" in str(refusal.value) for token in tokens)
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()


def test_unknown_prefix_is_refused(db):
    ApiTokenFactory()

    with pytest.raises(CommandError, match="No token matches 'prv_nothing'"):
        run("revoke_token", "prv_nothing")
    with pytest.raises(CommandError, match="No token matches '999999'"):
        run("revoke_token", "999999")


def test_prefix_match_is_case_sensitive(db):
    token = ApiTokenFactory()
    ApiToken.objects.filter(pk=token.pk).update(prefix="prv_AbCdEfGh")

    with pytest.raises(CommandError, match="No token matches"):
        run("revoke_token", "prv_abcdefgh")

    token.refresh_from_db()
    assert not token.is_revoked


def test_revoking_a_revoked_token_is_refused(db):
    token = ApiTokenFactory()
    api_token_revoke(token=token)

    with pytest.raises(CommandError, match="already revoked"):
        run("revoke_token", token.prefix)


# list_tokens ------------------------------------------------------------------------------------------


def test_list_shows_every_token_with_its_status_and_never_its_secret(db):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    live = ApiTokenFactory(user=alice, name="nightly-training")
    revoked = ApiTokenFactory(user=bob, name="evaluation")
    api_token_revoke(token=revoked)
    expired = ApiTokenFactory(user=bob, name="old")
    ApiToken.objects.filter(pk=expired.pk).update(
        created_at=timezone.now() - timedelta(days=2), expires_at=timezone.now() - timedelta(days=1)
    )

    output = run("list_tokens")

    lines = {line.split()[1]: line for line in output.splitlines()[1:]}
    assert set(lines) == {live.prefix, revoked.prefix, expired.prefix}
    assert "nightly-training" in lines[live.prefix]
    assert "alice" in lines[live.prefix]
    assert lines[live.prefix].endswith("active")
    assert lines[revoked.prefix].endswith("revoked")
    assert lines[expired.prefix].endswith("expired")
    assert live.plaintext not in output
    assert live.key_hash not in output


def test_list_for_one_user(db):
    mine = ApiTokenFactory(user=UserFactory(username="alice"))
    theirs = ApiTokenFactory(user=UserFactory(username="bob"))

    output = run("list_tokens", "--user", "alice")

    assert mine.prefix in output
    assert theirs.prefix not in output


def test_list_for_unknown_user_is_refused(db):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        run("list_tokens", "--user", "nobody")


def test_list_says_when_there_are_no_tokens(db):
    assert run("list_tokens") == "No tokens.\n"


def test_quiet_prints_only_the_token_for_scripts(user):
    out = StringIO()
    call_command("issue_token", user.username, "--name", "ci", "--quiet", stdout=out)
    token = out.getvalue().strip()
    assert token.startswith("prv_")
    assert "\n" not in token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v1/projects/").status_code == 200


# create_user ------------------------------------------------------------------------------------------


def test_a_service_account_signs_in_only_with_the_token_printed_once_and_holds_its_roles(db, client_with):
    project = ProjectFactory(slug="fraud-detection")

    output = run("create_user", "ci-bot", "--service-account", "--grant", "fraud-detection:contributor")

    bot = get_user_model().objects.get(username="ci-bot")
    assert not bot.has_usable_password()
    assert (bot.is_staff, bot.is_superuser) == (False, False)
    assert RoleGrant.objects.filter(user=bot, project=project, artifact=None, role=Role.CONTRIBUTOR).exists()
    token = ApiToken.objects.get(user=bot)
    assert token.name == "ci-bot"
    assert lifetime_of(token) == timedelta(days=settings.PROVENANT_TOKEN_DEFAULT_DAYS)
    assert "Service account 'ci-bot' created." in output
    assert "contributor on project fraud-detection" in output
    assert "cannot be shown again" in output
    api = client_with(plaintext_in(output))
    assert [p["slug"] for p in api.get(PROJECTS).json()["results"]] == ["fraud-detection"]
    run_created = api.post("/api/v1/runs/", {"project": "fraud-detection", "external_id": "nightly"}, format="json")
    assert run_created.status_code == 201, run_created.content


def test_quiet_prints_the_token_alone_for_scripts(db, client_with):
    ProjectFactory(slug="ml")
    output = run(
        "create_user",
        "ci-bot",
        "--service-account",
        "--owner",
        "ml",
        "--token-name",
        "nightly",
        "--token-days",
        "30",
        "--quiet",
    )

    token = ApiToken.objects.get()
    assert (token.name, lifetime_of(token)) == ("nightly", timedelta(days=30))
    assert client_with(output.strip()).get(PROJECTS).status_code == 200


def test_an_ordinary_user_gets_roles_and_no_token_and_is_told_how_to_get_a_password(db):
    artifact = ArtifactFactory(project=ProjectFactory(slug="fraud-detection"), name="model")

    output = run("create_user", "kim", "--email", "kim@EXAMPLE.com", "--grant", "fraud-detection/model:viewer")

    kim = get_user_model().objects.get(username="kim")
    assert kim.email == "kim@example.com"
    assert not kim.has_usable_password()
    assert RoleGrant.objects.get(user=kim).artifact == artifact
    assert not ApiToken.objects.exists()
    assert "manage.py changepassword kim" in output
    assert "viewer on artifact fraud-detection/model" in output


@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        (["taken"], "A user 'taken' exists already"),
        (["TAKEN"], "A user 'TAKEN' exists already"),
        (["two words"], "'two words' is not a username"),
        (["kim", "--email", "not-an-address"], "'not-an-address' is not an email address"),
        (["kim", "--grant", "fraud-detection"], "names no role: write <project>:<role>"),
        (["kim", "--grant", "fraud-detection:owner"], "unknown role 'owner'. Roles: viewer"),
        (["kim", "--grant", "nowhere:viewer"], "no project 'nowhere'"),
        (["kim", "--grant", "fraud-detection/ghost:viewer"], "project 'fraud-detection' has no artifact 'ghost'"),
        (["kim", "--token-days", "30"], "--token-days sets a token's lifetime"),
        (["kim", "--quiet"], "--quiet prints only the token"),
        (["kim", "--token-name", "ci", "--token-days", "0"], "a token lives at most 366 days"),
        (["kim", "--service-account", "--token-days", "367"], "a token lives at most 366 days"),
        (["kim", "--service-account", "--token-days", "9999999999"], "a token lives at most 366 days"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_is_created(db, arguments, refusal):
    ProjectFactory(slug="fraud-detection")
    UserFactory(username="taken")

    with pytest.raises(CommandError, match=re.escape(refusal)):
        run("create_user", *arguments)

    assert list(get_user_model().objects.values_list("username", flat=True)) == ["taken"]
    assert not RoleGrant.objects.exists()


def test_a_refusal_after_the_user_was_written_undoes_everything(db):
    ProjectFactory(slug="fraud-detection")
    entries = AuditEntry.objects.count()

    with pytest.raises(CommandError, match="Give the token a name"):
        run("create_user", "ci-bot", "--grant", "fraud-detection:contributor", "--token-name", "   ")

    assert not get_user_model().objects.filter(username="ci-bot").exists()
    assert not RoleGrant.objects.exists()
    assert not ApiToken.objects.exists()
    assert AuditEntry.objects.count() == entries


# scopes and service accounts ----------------------------------------------------------------------------


def test_issue_token_with_a_scope_and_a_project_and_list_tokens_shows_them(db, client_with):
    project = ProjectFactory(slug="fraud")
    UserFactory(username="dana", is_superuser=True)

    plaintext = run("issue_token", "dana", "--name", "dashboard", "--scope", "read", "--project", "fraud", "--quiet")

    token = ApiToken.objects.get(name="dashboard")
    assert (token.scope, token.project) == ("read", project)
    client = client_with(plaintext.strip())
    assert client.get(f"/api/v1/projects/{project.slug}/").status_code == 200
    assert client.get(f"/api/v1/projects/{ProjectFactory().slug}/").status_code == 404
    assert client.post("/api/v1/datasets/", {"project": "fraud", "name": "d"}, format="json").status_code == 403
    line = next(line for line in run("list_tokens").splitlines() if token.prefix in line)
    assert "read" in line
    assert "fraud" in line


def test_issue_token_refuses_an_unknown_project_or_scope(db):
    UserFactory(username="dana")
    with pytest.raises(CommandError, match="no project 'nowhere'"):
        run("issue_token", "dana", "--name", "x", "--project", "nowhere")
    with pytest.raises(CommandError):
        run("issue_token", "dana", "--name", "x", "--scope", "owner")
    assert not ApiToken.objects.exists()


def test_a_service_account_is_owned_by_the_project_named_or_of_its_first_grant(db):
    ProjectFactory(slug="fraud-detection")
    ProjectFactory(slug="churn")

    run("create_user", "ci-bot", "--service-account", "--grant", "fraud-detection:contributor")
    run("create_user", "ci-bot-2", "--service-account", "--owner", "churn", "--token-scope", "write")

    owners = dict(ServiceAccount.objects.values_list("user__username", "project__slug"))
    assert owners == {"ci-bot": "fraud-detection", "ci-bot-2": "churn"}
    assert ApiToken.objects.get(user__username="ci-bot-2").scope == "write"
    with pytest.raises(CommandError, match="owned by a project"):
        run("create_user", "ci-bot-3", "--service-account")
    assert not get_user_model().objects.filter(username="ci-bot-3").exists()
