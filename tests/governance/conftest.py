from types import SimpleNamespace

import pytest

from governance.roles import Role
from tests.artifacts.factories import ArtifactFactory, GroupFactory, ProjectFactory, UserFactory, grant


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
