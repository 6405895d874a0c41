"""Trusted keys in the admin: a maintainer adds one through the service (audited) and revokes it with the action;
another project's staff neither sees nor revokes it; signatures are read-only."""

import pytest
from django.urls import reverse

from artifacts.access.roles import Role
from core.models import AuditEntry
from governance.supplychain.models import TrustedSigningKey
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.governance.supplychain import signing
from tests.governance.supplychain.factories import TrustedSigningKeyFactory

pytestmark = pytest.mark.django_db

KEYS = reverse("admin:supplychain_trustedsigningkey_changelist")
ADD_KEY = reverse("admin:supplychain_trustedsigningkey_add")
PERMISSIONS = ("view_trustedsigningkey", "add_trustedsigningkey", "change_trustedsigningkey", "view_project")


def maintainer_of(project, staff):
    user = UserFactory()
    grant(Role.MAINTAINER, on=project, user=user)
    return staff(user, *PERMISSIONS)


def test_a_maintainer_adds_a_key_and_revokes_it(client_as, staff, tmp_path):
    project = ProjectFactory()
    client = client_as(maintainer_of(project, staff))
    key = signing.ec_key(tmp_path)

    added = client.post(
        ADD_KEY, {"project": project.pk, "name": "release-ci", "method": "key", "pem": key.public_pem}, follow=True
    )

    assert added.status_code == 200
    trusted = TrustedSigningKey.objects.get()
    assert (trusted.name, trusted.project, len(trusted.fingerprint)) == ("release-ci", project, 64)
    assert AuditEntry.objects.filter(action="trusted_signing_key.added").count() == 1

    client.post(KEYS, {"action": "revoke", "_selected_action": [trusted.pk], "index": 0}, follow=True)

    trusted.refresh_from_db()
    assert trusted.revoked_at is not None
    assert AuditEntry.objects.filter(action="trusted_signing_key.revoked").count() == 1


def test_staff_of_another_project_neither_see_nor_revoke_the_key(client_as, staff, tmp_path):
    theirs = TrustedSigningKeyFactory(pem=signing.ec_key(tmp_path).public_pem)
    client = client_as(maintainer_of(ProjectFactory(), staff))

    listing = client.get(KEYS)
    client.post(KEYS, {"action": "revoke", "_selected_action": [theirs.pk], "index": 0}, follow=True)

    assert theirs.name not in listing.content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
