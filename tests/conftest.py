import os
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.test import Client
from rest_framework.test import APIClient

from artifacts.access.roles import Role
from governance.access.models import ApiToken
from governance.access.services import api_token_record_use, hash_token
from tests.artifacts.factories import ArtifactFactory, GroupFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import token_for

#: Debian's Chromium, which the browser tests drive (tests/e2e, the MLflow UI's test).
CHROMIUM = os.environ.get("PROVENANT_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(autouse=True)
def isolated_blob_folder(request, tmp_path):
    """Each unit test gets its own blob folder, so bytes written or corrupted by one test never reach another.

    The integration suite keeps its S3 bucket and is left alone.
    """
    if settings.STORAGES["blobs"]["BACKEND"] != "django.core.files.storage.FileSystemStorage":
        yield None
        return
    settings_fixture = request.getfixturevalue("settings")
    blobs = {**settings.STORAGES["blobs"], "OPTIONS": {**settings.STORAGES["blobs"]["OPTIONS"]}}
    blobs["OPTIONS"]["location"] = str(tmp_path / "blobs")
    settings_fixture.STORAGES = {**settings.STORAGES, "blobs": blobs}
    yield tmp_path / "blobs"


@pytest.fixture
def user(db):
    """A superuser: tests of what the store does use it; tests of who may do what use `api_as` and roles."""
    return UserFactory(is_superuser=True)


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated as `user` with a real bearer token, already used this hour from the test
    client's address: its hourly `api_token.used` entry is written, so a test counting what a request records
    counts what the request did (tests/governance/access/test_token_use_audit.py tests that entry itself)."""
    client = APIClient()
    plaintext = token_for(user)
    token = ApiToken.objects.get(key_hash=hash_token(plaintext))
    api_token_record_use(token=token, address="127.0.0.1")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    client.user = user
    return client


@pytest.fixture
def anonymous_api() -> APIClient:
    return APIClient()


@pytest.fixture
def api_as(db):
    """`api_as(user)`: an API client authenticated as that user with a real bearer token."""

    def client_for(user) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
        client.user = user
        return client

    return client_for


@pytest.fixture
def staff(db) -> Callable[..., AbstractBaseUser]:
    """`staff(user, *codenames)`: `user` made a staff member holding the model permissions named, as an operator
    gives them (through a group, say); what they may see and change inside the admin is still their roles' say."""

    def make_staff(user: AbstractBaseUser, *codenames: str) -> AbstractBaseUser:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
        return user

    return make_staff


@pytest.fixture
def client_as(client: Client) -> Callable[[AbstractBaseUser], Client]:
    """`client_as(user)`: the test's `client` signed in as `user` with a session, as people use the admin and the
    portal; the same client as the `client` fixture, so a test may go on using either name."""

    def signed_in(user: AbstractBaseUser) -> Client:
        client.force_login(user)
        return client

    return signed_in


@pytest.fixture
def reviewed(db):
    """A project to review, `churn`: two maintainers (alice, bob), a viewer (carol), a viewers' group (analysts,
    with dave) and a contributor on one artifact (erin); and a viewer of another project, `other`."""
    project = ProjectFactory(slug="churn")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    analysts = GroupFactory(name="analysts")
    dave = UserFactory(username="dave")
    dave.groups.add(analysts)
    model = ArtifactFactory(project=project, name="classifier")
    return SimpleNamespace(
        project=project,
        alice=alice,
        bob=bob,
        dave=dave,
        analysts=analysts,
        model=model,
        alice_maintains=grant(Role.MAINTAINER, on=project, user=alice),
        bob_maintains=grant(Role.MAINTAINER, on=project, user=bob, granted_by=alice),
        carol_views=grant(Role.VIEWER, on=project, user=UserFactory(username="carol"), granted_by=alice),
        analysts_view=grant(Role.VIEWER, on=project, group=analysts, granted_by=bob),
        erin_contributes=grant(Role.CONTRIBUTOR, on=model, user=UserFactory(username="erin"), granted_by=alice),
        elsewhere=grant(Role.VIEWER, on=ProjectFactory(slug="other")),
    )


@pytest.fixture
def receiver(settings):
    """A real HTTP receiver on 127.0.0.1 (tests/webhook_receiver.py), with loopback allowed as a webhook
    destination the way an operator allows an internal network (PROVENANT_WEBHOOK_ALLOWED_NETWORKS)."""
    import ipaddress

    from tests.webhook_receiver import running_receiver

    settings.PROVENANT_WEBHOOK_ALLOWED_NETWORKS = [ipaddress.ip_network("127.0.0.1/32")]
    with running_receiver() as running:
        yield running


# One Playwright for the whole session: a second one started while the first runs fails (its sync API refuses to
# run inside the first one's event loop).
@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is not at {CHROMIUM}: CI must install Debian's chromium (.ci/run does).")
        pytest.skip(f"Chromium is not at {CHROMIUM} (apt-get install chromium); browser tests skipped.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()
