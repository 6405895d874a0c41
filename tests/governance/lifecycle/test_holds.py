"""Legal holds (governance/lifecycle/services/holds.py): placed and released by a project's auditors and
maintainers, on the project or one thing in it, with a reason; audited, announced, and never edited or deleted."""

import json

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from artifacts.access.roles import Role
from artifacts.models import VersionTombstone
from core.errors import Conflict, InvalidInput, NotAllowed
from core.events import EventType
from core.models import AuditEntry
from governance.lifecycle.models import LegalHold
from governance.lifecycle.services.holds import legal_hold_place, legal_hold_release
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    ProjectFactory,
    grant,
)
from tests.governance.factories import LegalHoldFactory
from tests.governance.registry.promotions import bodies, last_event_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def auditor(project):
    return grant(Role.AUDITOR, on=project).user


@pytest.fixture
def maintainer(project):
    return grant(Role.MAINTAINER, on=project).user


def audited(action: str) -> list[dict]:
    return [json.loads(entry.changes) for entry in AuditEntry.objects.filter(action=action).order_by("seq")]


def test_an_auditor_holds_a_whole_project_and_it_is_audited_and_announced(project, auditor):
    since = last_event_id()

    hold = legal_hold_place(project=project, placed_by=auditor, reason="Litigation 2026-114.")

    assert (hold.placed_by, hold.reason, hold.released_at) == (auditor, "Litigation 2026-114.", None)
    assert audited("legal_hold.placed") == [{"scope": "project", "reason": "Litigation 2026-114."}]
    (body,) = bodies(EventType.LEGAL_HOLD_PLACED, after=since)
    assert body["project"]["slug"] == project.slug
    assert body["data"]["legal_hold"] | {"placed_at": None, "url": None} == {
        "id": hold.pk,
        "scope": "project",
        "target": None,
        "reason": "Litigation 2026-114.",
        "placed_by": auditor.username,
        "placed_at": None,
        "active": True,
        "released_by": None,
        "released_at": None,
        "release_reason": "",
        "url": None,
    }


@pytest.mark.parametrize(
    ("scope", "make"),
    [
        ("artifact", lambda project: ArtifactFactory(project=project)),
        ("artifact_version", lambda project: ArtifactVersionFactory(artifact__project=project)),
        ("dataset", lambda project: DatasetFactory(project=project)),
        ("dataset_version", lambda project: DatasetVersionFactory(dataset__project=project)),
    ],
)
def test_a_maintainer_holds_one_thing_in_the_project(project, maintainer, scope, make):
    target = make(project)
    since = last_event_id()

    hold = legal_hold_place(project=project, placed_by=maintainer, reason="Regulator's request.", **{scope: target})

    assert getattr(hold, scope) == target
    assert audited("legal_hold.placed")[0][scope] == [None, target.pk]
    (body,) = bodies(EventType.LEGAL_HOLD_PLACED, after=since)
    assert body["data"]["legal_hold"]["scope"] == scope
    assert body["data"]["legal_hold"]["target"] == {"id": target.pk, "label": str(target)}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR, Role.REVIEWER])
def test_only_auditors_and_maintainers_place_holds(project, role):
    someone = grant(role, on=project).user

    with pytest.raises(NotAllowed, match="needs the auditor or maintainer role"):
        legal_hold_place(project=project, placed_by=someone, reason="Because.")

    assert not LegalHold.objects.exists()


def test_a_thing_of_another_project_is_refused_naming_the_field(project, auditor):
    elsewhere = ArtifactFactory()
    grant(Role.AUDITOR, on=elsewhere.project, user=auditor)

    with pytest.raises(InvalidInput, match=f"not in project '{project.slug}'") as refused:
        legal_hold_place(project=project, placed_by=auditor, reason="Case 7.", artifact=elsewhere)

    assert refused.value.field == "artifact"
    assert not LegalHold.objects.exists()


def test_a_thing_the_placer_may_not_see_is_refused_as_missing(project, auditor):
    restricted = ArtifactFactory(project=project, restricted=True)

    with pytest.raises(InvalidInput, match=f"^No artifact with id {restricted.pk}.$"):
        legal_hold_place(project=project, placed_by=auditor, reason="Case 7.", artifact=restricted)


def test_a_hold_names_at_most_one_thing(project, auditor):
    version = ArtifactVersionFactory(artifact__project=project)

    with pytest.raises(InvalidInput, match="place one hold for each"):
        legal_hold_place(
            project=project, placed_by=auditor, reason="Case 7.", artifact=version.artifact, artifact_version=version
        )


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_hold_without_a_reason_is_refused(project, auditor, reason):
    with pytest.raises(InvalidInput, match="Say why") as refused:
        legal_hold_place(project=project, placed_by=auditor, reason=reason)

    assert refused.value.field == "reason"


def test_a_deleted_version_cannot_be_held(project, auditor):
    version = ArtifactVersionFactory(artifact__project=project)
    VersionTombstone.objects.create(
        project=project, artifact_version=version, deleted_at=timezone.now(), reason="Retention."
    )
    version.refresh_from_db()

    with pytest.raises(Conflict, match="nothing of it is left to hold"):
        legal_hold_place(project=project, placed_by=auditor, reason="Case 7.", artifact_version=version)


def test_several_holds_may_cover_the_same_thing(project, auditor):
    artifact = ArtifactFactory(project=project)

    first = legal_hold_place(project=project, placed_by=auditor, reason="Case 7.", artifact=artifact)
    second = legal_hold_place(project=project, placed_by=auditor, reason="Case 8.", artifact=artifact)

    assert first != second
    assert LegalHold.objects.active().count() == 2


def test_releasing_records_who_when_and_why_and_is_announced(project, auditor, maintainer):
    hold = LegalHoldFactory(project=project, placed_by=auditor)
    since = last_event_id()

    released = legal_hold_release(hold=hold, released_by=maintainer, reason="Case closed.")

    stored = LegalHold.objects.get(pk=hold.pk)
    assert (stored.released_by, stored.release_reason) == (maintainer, "Case closed.")
    assert stored.released_at == released.released_at is not None
    assert not LegalHold.objects.active().exists()
    (entry,) = audited("legal_hold.released")
    assert entry["released_by"] == [None, maintainer.pk]
    assert entry["release_reason"] == ["", "Case closed."]
    (body,) = bodies(EventType.LEGAL_HOLD_RELEASED, after=since)
    hold_document = body["data"]["legal_hold"]
    assert (hold_document["active"], hold_document["released_by"]) == (False, maintainer.username)
    assert hold_document["release_reason"] == "Case closed."


def test_releasing_twice_is_a_conflict_naming_the_first_release(project, auditor):
    hold = LegalHoldFactory(project=project, placed_by=auditor)
    legal_hold_release(hold=hold, released_by=auditor, reason="Case closed.")

    with pytest.raises(Conflict, match=f"released already, by {auditor.username} on .* \\(Case closed.\\)"):
        legal_hold_release(hold=hold, released_by=auditor, reason="Again.")

    assert len(audited("legal_hold.released")) == 1


def test_only_auditors_and_maintainers_release_holds(project):
    hold = LegalHoldFactory(project=project)
    contributor = grant(Role.CONTRIBUTOR, on=project).user

    with pytest.raises(NotAllowed, match="Releasing legal holds"):
        legal_hold_release(hold=hold, released_by=contributor, reason="Not mine to keep.")

    assert LegalHold.objects.active().count() == 1


def test_a_release_without_a_reason_is_refused(project, auditor):
    hold = LegalHoldFactory(project=project, placed_by=auditor)

    with pytest.raises(InvalidInput, match="Say why"):
        legal_hold_release(hold=hold, released_by=auditor, reason=" ")

    assert LegalHold.objects.active().count() == 1


def test_a_hold_is_never_rewritten_nor_deleted(project, auditor):
    hold = LegalHoldFactory(project=project, placed_by=auditor)
    holds = LegalHold.objects.filter(pk=hold.pk)

    for statement in (lambda: holds.update(reason="Nothing to see."), holds.delete):
        with pytest.raises(IntegrityError), transaction.atomic():
            statement()
    legal_hold_release(hold=hold, released_by=auditor, reason="Case closed.")
    with pytest.raises(IntegrityError), transaction.atomic():
        holds.update(release_reason="Rewritten.")

    assert LegalHold.objects.get(pk=hold.pk).release_reason == "Case closed."
