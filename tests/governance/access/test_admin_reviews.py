"""Access reviews and role grants in the admin: campaigns opened, items kept as a record and linked to the portal
where they are decided, reports, flags, and grants given and revoked, all through the services, at a cost that does
not grow with the rows."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from artifacts.access.roles import Role, Verb
from artifacts.access.rule import can
from artifacts.models import Project, RoleGrant
from governance.access.models import AccessReviewCampaign, AccessReviewItem
from governance.access.services import item_decide
from tests.artifacts.factories import ArtifactFactory, GroupFactory, ProjectFactory, UserFactory, grant
from tests.governance.factories import AccessReviewCampaignFactory
from tests.pages import listed, messages_of

pytestmark = pytest.mark.django_db

KEEP, REVOKE, PENDING = AccessReviewItem.Decision.KEEP, AccessReviewItem.Decision.REVOKE, "pending"
CAMPAIGNS = reverse("admin:access_accessreviewcampaign_changelist")
OPEN_CAMPAIGN = reverse("admin:access_accessreviewcampaign_add")
ITEMS = reverse("admin:access_accessreviewitem_changelist")
GRANTS = reverse("admin:artifacts_rolegrant_changelist")
ADD_GRANT = reverse("admin:artifacts_rolegrant_add")

# What a reviewer's staff account is given, e.g. through a "reviewers" group.
REVIEWER_PERMISSIONS = (
    "view_accessreviewcampaign",
    "add_accessreviewcampaign",
    "view_accessreviewitem",
    "change_accessreviewitem",
    "view_rolegrant",
    "add_rolegrant",
    "delete_rolegrant",
    "view_project",
    "view_artifact",
)


def item_url(item: AccessReviewItem) -> str:
    return reverse("admin:access_accessreviewitem_change", args=[item.pk])


def report_url(campaign: AccessReviewCampaign, csv_file: bool = False) -> str:
    view = "report_csv" if csv_file else "report"
    return reverse(f"admin:access_accessreviewcampaign_{view}", args=[campaign.pk])


def when(at) -> dict[str, str]:
    """A datetime as the admin's split date and time inputs post it."""
    return {"due_at_0": f"{at:%Y-%m-%d}", "due_at_1": f"{at:%H:%M:%S}"}


def csv_rows(response) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def campaign(reviewed):
    """A review of `churn`, whose items alice and bob share (neither reviews their own grant)."""
    return AccessReviewCampaignFactory(project=reviewed.project, title="Churn Q3")


# Opening campaigns ------------------------------------------------------------------------------------


def test_a_superuser_opens_a_campaign_from_the_admin(admin_client, reviewed, settings):
    settings.PROVENANT_ACCESS_REVIEW_DUE_DAYS = 21
    form = admin_client.get(OPEN_CAMPAIGN)
    due = timezone.now() + timedelta(days=10)

    response = admin_client.post(OPEN_CAMPAIGN, {"project": reviewed.project.pk, "title": "", **when(due)}, follow=True)

    assert f"{timezone.now() + timedelta(days=21):%Y-%m-%d}" in form.content.decode()  # the default due date
    assert response.status_code == 200
    campaign = AccessReviewCampaign.objects.get()
    assert campaign.items.count() == 5
    assert campaign.opened_by.username == "admin"
    assert campaign.due_at.replace(microsecond=0) == due.replace(microsecond=0)


def test_named_reviewers_replace_the_maintainers(admin_client, reviewed):
    UserFactory(username="auditor")

    admin_client.post(OPEN_CAMPAIGN, {"project": reviewed.project.pk, "reviewer_usernames": "auditor, alice",
                                      **when(timezone.now() + timedelta(days=3))})  # fmt: skip

    reviewers = set(AccessReviewItem.objects.values_list("reviewer__username", flat=True))
    assert reviewers == {"auditor", "alice"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"reviewer_usernames": "nobody, alice"}, "There is no user named nobody."),
        ({"due_at_0": "soon", "due_at_1": "12:00"}, "Enter a valid date."),
    ],
)
def test_bad_input_on_the_open_form_is_shown_on_the_form(admin_client, reviewed, data, message):
    response = admin_client.post(
        OPEN_CAMPAIGN, {"project": reviewed.project.pk, **when(timezone.now() + timedelta(days=3)), **data}
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AccessReviewCampaign.objects.exists()


@pytest.mark.parametrize(
    ("scope", "message"),
    [("past", "The due date must be in the future."), ("empty", "There is no grant on project empty to review.")],
)
def test_what_the_service_refuses_is_said_and_opens_nothing(admin_client, reviewed, scope, message):
    project = ProjectFactory(slug="empty") if scope == "empty" else reviewed.project
    days = -1 if scope == "past" else 3

    response = admin_client.post(
        OPEN_CAMPAIGN, {"project": project.pk, **when(timezone.now() + timedelta(days=days))}, follow=True
    )

    assert response.status_code == 200
    assert message in messages_of(response)
    assert not AccessReviewCampaign.objects.exists()


def test_a_maintainer_reviews_their_project_and_only_a_superuser_every_project(client, reviewed, staff, client_as):
    client_as(staff(reviewed.alice, *REVIEWER_PERMISSIONS))
    other = ProjectFactory(slug="secret")
    grant(Role.VIEWER, on=other)
    due = when(timezone.now() + timedelta(days=3))

    everything = client.post(OPEN_CAMPAIGN, {"project": "", **due})
    foreign = client.post(OPEN_CAMPAIGN, {"project": other.pk, **due})
    own = client.post(OPEN_CAMPAIGN, {"project": reviewed.project.pk, **due})

    assert "Only a superuser reviews every project at once" in everything.content.decode()
    assert "Select a valid choice" in foreign.content.decode()
    assert ">secret</option>" not in foreign.content.decode()  # a project she may not see is not named back
    assert own.status_code == 302
    assert list(AccessReviewCampaign.objects.values_list("project__slug", flat=True)) == ["churn"]


def test_the_campaign_list_shows_progress_state_and_the_overdue_flag(admin_client, campaign):
    item = campaign.items.select_related("reviewer").first()
    item_decide(item=item, decision=KEEP, comment="", decided_by=item.reviewer)
    AccessReviewCampaign.objects.filter(pk=campaign.pk).update(
        opened_at=timezone.now() - timedelta(days=30), due_at=timezone.now() - timedelta(days=1)
    )

    response = admin_client.get(CAMPAIGNS)
    overdue = admin_client.get(CAMPAIGNS, {"overdue": "yes"})
    on_time = admin_client.get(CAMPAIGNS, {"overdue": "no"})

    page = response.content.decode()
    assert "1 of 5" in page
    assert f"?campaign__id__exact={campaign.pk}" in page
    assert report_url(campaign) in page
    assert report_url(campaign, csv_file=True) in page
    assert listed(overdue) == [campaign]
    assert listed(on_time) == []


def test_a_campaign_page_links_its_items_and_report_and_edits_nothing(admin_client, campaign):
    page = admin_client.get(reverse("admin:access_accessreviewcampaign_change", args=[campaign.pk]))

    assert page.status_code == 200
    assert report_url(campaign) in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    delete = reverse("admin:access_accessreviewcampaign_delete", args=[campaign.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403


# Items: a record here, decided in the portal ----------------------------------------------------------
#
# Keeping and revoking are the portal's (tests/governance/portal/test_reviews.py); the rules behind them are the
# review services' (test_reviews.py).


def test_a_reviewer_starts_on_their_own_items_and_may_see_everyone_s(client, campaign, reviewed, staff, client_as):
    client_as(staff(reviewed.alice, *REVIEWER_PERMISSIONS))

    mine = listed(client.get(ITEMS))
    everyone = listed(client.get(ITEMS, {"reviewer": "all"}))

    assert mine
    assert {item.reviewer for item in mine} == {reviewed.alice}
    assert len(everyone) == 5


def test_the_admin_offers_no_decision_and_links_each_pending_item_to_the_portal(
    client, campaign, reviewed, staff, client_as
):
    item = campaign.items.select_related("reviewer").get(grant=reviewed.carol_views)
    client_as(staff(item.reviewer, *REVIEWER_PERMISSIONS))  # the change permission included: it offers nothing

    listing = client.get(ITEMS).content.decode()
    page = client.get(item_url(item))
    posted = client.post(item_url(item), {"decision": REVOKE, "comment": "No longer on the project."})
    acted = client.post(ITEMS, {"action": "revoke_selected", "_selected_action": [item.pk], "index": 0})

    assert 'name="action"' not in listing
    assert 'name="decision"' not in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    portal = f"{reverse('portal:access-reviews')}?campaign={campaign.pk}"
    assert f'Its reviewer keeps or revokes it <a href="{portal}">in the portal</a>' in page.content.decode()
    assert posted.status_code == 403
    assert acted.status_code == 200  # no actions: the list again, nothing run
    item.refresh_from_db()
    assert item.decision == PENDING
    assert RoleGrant.objects.filter(pk=reviewed.carol_views.pk).exists()


def test_a_decided_item_is_shown_with_its_decision_and_no_link(admin_client, campaign, reviewed):
    item = campaign.items.get(grant=reviewed.carol_views)
    item_decide(item=item, decision=REVOKE, comment="Left the team.", decided_by=item.reviewer)

    body = admin_client.get(item_url(item)).content.decode()

    assert "Left the team." in body
    assert "in the portal" not in body


def test_a_campaign_page_links_to_where_its_items_are_decided(admin_client, campaign):
    body = admin_client.get(reverse("admin:access_accessreviewcampaign_change", args=[campaign.pk])).content.decode()

    portal = f"{reverse('portal:access-reviews')}?campaign={campaign.pk}"
    assert f'Reviewers keep or revoke their items <a href="{portal}">in the portal</a>' in body


def test_staff_without_a_role_on_the_project_see_only_their_own_items(client, campaign, reviewed, staff, client_as):
    outsider = staff(UserFactory(), *REVIEWER_PERMISSIONS)

    client_as(outsider)

    assert listed(client.get(ITEMS, {"reviewer": "all"})) == []
    assert listed(client.get(CAMPAIGNS)) == []
    assert client.get(report_url(campaign)).status_code == 404
    assert client.get(report_url(campaign, csv_file=True)).status_code == 404


# Flags, filters and reports ---------------------------------------------------------------------------


def test_items_filter_by_unused_decision_and_campaign(admin_client, campaign, reviewed):
    item = campaign.items.get(grant=reviewed.carol_views)
    item_decide(item=item, decision=KEEP, comment="", decided_by=item.reviewer)

    unused = listed(admin_client.get(ITEMS, {"unused": "yes"}))
    kept = listed(admin_client.get(ITEMS, {"decision__exact": KEEP}))
    of_campaign = listed(admin_client.get(ITEMS, {"campaign__id__exact": campaign.pk}))

    assert len(unused) == 3  # alice and bob granted roles in churn (the log records it); nobody else did anything
    assert kept == [item]
    assert len(of_campaign) == 5


def test_the_report_shows_every_decision_as_a_page_and_as_csv(admin_client, campaign, reviewed):
    comments = {}
    for item in campaign.items.select_related("reviewer"):
        if item.grant_id == reviewed.carol_views.pk:
            item_decide(item=item, decision=REVOKE, comment='=HYPERLINK("http://evil")', decided_by=item.reviewer)
            comments[item.grantee_label] = "=HYPERLINK"
        elif item.grant_id != reviewed.erin_contributes.pk:
            item_decide(item=item, decision=KEEP, comment=f"Still needed by {item.grantee_label}.",
                        decided_by=item.reviewer)  # fmt: skip

    page = admin_client.get(report_url(campaign))
    download = admin_client.get(report_url(campaign, csv_file=True))

    html = page.content.decode()
    assert page.status_code == 200
    assert "project churn" in html
    assert "5 grants under review: 4 reviewed (3 kept, 1 revoked), 1 pending" in html
    for grantee in ("user alice", "user bob", "user carol", "group analysts", "user erin"):
        assert grantee in html
    assert "Still needed by group analysts." in html
    assert download["Content-Type"].startswith("text/csv")
    rows = {row["grantee"]: row for row in csv_rows(download)}
    assert set(rows) == {"user alice", "user bob", "user carol", "group analysts", "user erin"}
    assert rows["user carol"]["decision"] == "revoke"
    assert rows["user carol"]["comment"] == '\'=HYPERLINK("http://evil")'  # a formula is shown, never run
    assert rows["user erin"]["decision"] == "pending"
    assert rows["group analysts"]["comment"] == "Still needed by group analysts."
    assert rows["user alice"]["reviewer"] == "bob"
    assert rows["user alice"]["decided_by"] == "bob"
    assert rows["user alice"]["unused"] == "no"  # she granted carol's and erin's roles
    assert rows["user erin"]["unused"] == "yes"


def test_a_reviewer_s_report_lists_what_they_may_see(client, reviewed, staff, client_as):
    outsider_project = ProjectFactory(slug="elsewhere")
    grant(Role.VIEWER, on=outsider_project, user=UserFactory(username="zed"))
    campaign = AccessReviewCampaignFactory(project=None)
    client_as(staff(reviewed.carol_views.user, *REVIEWER_PERMISSIONS))

    rows = csv_rows(client.get(report_url(campaign, csv_file=True)))

    assert {row["project"] for row in rows} == {"churn"}


# Query counts -----------------------------------------------------------------------------------------


def queries_for(client, url: str, params: dict | None = None) -> int:
    client.get(url, params)  # warm the content type and permission caches
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured)


def add_viewers(project, count: int) -> None:
    group = GroupFactory()
    for _ in range(count):
        grant(Role.VIEWER, on=project)
    grant(Role.VIEWER, on=project, group=group)


@pytest.mark.parametrize("url", [ITEMS, GRANTS, CAMPAIGNS])
@pytest.mark.parametrize("superuser", [False, True], ids=["staff reviewer", "superuser"])
def test_the_lists_cost_the_same_queries_for_5_rows_as_for_50(client, url, superuser, staff, client_as):
    reviewer = UserFactory(is_superuser=superuser)
    project = ProjectFactory()
    grant(Role.MAINTAINER, on=project, user=reviewer)
    grant(Role.MAINTAINER, on=project)
    add_viewers(project, 3)
    AccessReviewCampaignFactory(project=project)
    client_as(staff(reviewer, *REVIEWER_PERMISSIONS))
    few = queries_for(client, url, {"reviewer": "all"} if url == ITEMS else None)

    add_viewers(project, 45)
    for _ in range(4):
        AccessReviewCampaignFactory(project=project)
    many = queries_for(client, url, {"reviewer": "all"} if url == ITEMS else None)

    assert many == few


# Role grants ------------------------------------------------------------------------------------------


def test_grants_are_given_through_the_service_to_a_user_or_a_group(admin_client, reviewed):
    newcomer = UserFactory(username="newcomer")
    GroupFactory(name="auditors")

    to_user = admin_client.post(ADD_GRANT, {"project": reviewed.project.pk, "username": "newcomer", "role": "viewer"})
    to_group = admin_client.post(
        ADD_GRANT, {"artifact": reviewed.model.pk, "group_name": "auditors", "role": "auditor"}
    )

    assert to_user.status_code == to_group.status_code == 302
    assert can(newcomer, Verb.VIEW, reviewed.project)
    on_model = RoleGrant.objects.get(group__name="auditors")
    assert (on_model.project, on_model.artifact, on_model.role) == (reviewed.project, reviewed.model, Role.AUDITOR)
    assert on_model.granted_by.username == "admin"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "nobody"}, "There is no user named &#x27;nobody&#x27;."),
        ({"username": "carol", "group_name": "analysts"}, "Name one user or one group."),
        ({"username": "", "group_name": ""}, "Name one user or one group."),
        ({"project": ""}, "Choose the project, or the artifact, to grant the role on."),
        ({"artifact": "other-model"}, "is not in project churn."),
        ({"role": "owner"}, "Select a valid choice."),
    ],
)
def test_a_grant_form_names_what_is_wrong(admin_client, reviewed, data, message):
    if data.get("artifact") == "other-model":
        data["artifact"] = ArtifactFactory(project=reviewed.elsewhere.project).pk
    before = RoleGrant.objects.count()

    response = admin_client.post(
        ADD_GRANT, {"project": reviewed.project.pk, "username": "carol", "role": "auditor", **data}
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert RoleGrant.objects.count() == before


def test_granting_takes_the_maintainer_role_on_the_object(client, reviewed, staff, client_as):
    client_as(staff(reviewed.carol_views.user, *REVIEWER_PERMISSIONS))

    viewed = client.post(ADD_GRANT, {"project": reviewed.project.pk, "username": "carol", "role": "maintainer"})
    unseen = client.post(ADD_GRANT, {"project": reviewed.elsewhere.project_id, "username": "carol", "role": "viewer"})

    assert "Granting roles on churn takes the maintainer role on it." in viewed.content.decode()
    assert ">churn</option>" in viewed.content.decode()  # what the check below would catch
    assert "Select a valid choice" in unseen.content.decode()
    assert ">other</option>" not in unseen.content.decode()
    assert not RoleGrant.objects.filter(user__username="carol").exclude(pk=reviewed.carol_views.pk).exists()


def test_the_delete_view_revokes_through_the_service(admin_client, reviewed):
    delete = reverse("admin:artifacts_rolegrant_delete", args=[reviewed.carol_views.pk])

    confirm = admin_client.get(delete)
    response = admin_client.post(delete, {"post": "yes"}, follow=True)

    assert confirm.status_code == 200
    assert f"Revoked {reviewed.carol_views}." in messages_of(response)
    assert not can(reviewed.carol_views.user, Verb.VIEW, reviewed.project)


def test_the_last_maintainer_is_not_revoked_from_the_delete_view(admin_client):
    only = grant(Role.MAINTAINER, on=ProjectFactory(slug="solo"))
    delete = reverse("admin:artifacts_rolegrant_delete", args=[only.pk])

    response = admin_client.post(delete, {"post": "yes"}, follow=True)

    assert response.status_code == 200
    assert any("last maintainer of project solo" in note for note in messages_of(response))
    assert RoleGrant.objects.filter(pk=only.pk).exists()


def test_the_revoke_action_revokes_each_grant_it_may_and_says_why_not_the_others(client, reviewed, staff, client_as):
    client_as(staff(reviewed.alice, *REVIEWER_PERMISSIONS))
    secret = grant(Role.VIEWER, on=ProjectFactory(slug="secret"))
    grant(Role.VIEWER, on=secret.project, user=reviewed.alice)  # she sees it, but does not maintain it

    response = client.post(
        GRANTS,
        {"action": "revoke_grants", "_selected_action": [reviewed.carol_views.pk, secret.pk], "index": 0},
        follow=True,
    )

    notes = " ".join(messages_of(response))
    assert "Revoked 1 grant(s)." in notes
    assert "takes the maintainer role on its project secret" in notes
    assert RoleGrant.objects.filter(pk=secret.pk).exists()
    assert not RoleGrant.objects.filter(pk=reviewed.carol_views.pk).exists()


def test_grants_are_never_edited_nor_deleted_in_bulk(admin_client, reviewed):
    change = reverse("admin:artifacts_rolegrant_change", args=[reviewed.carol_views.pk])

    page = admin_client.get(change)
    refused = admin_client.post(change, {"role": Role.MAINTAINER})
    actions = admin_client.get(GRANTS).content.decode()

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert refused.status_code == 403
    assert "delete_selected" not in actions
    assert "revoke_grants" in actions
    reviewed.carol_views.refresh_from_db()
    assert reviewed.carol_views.role == Role.VIEWER


def test_grants_are_found_and_filtered(admin_client, reviewed):
    assert set(listed(admin_client.get(GRANTS, {"q": "carol"}))) == {reviewed.carol_views}
    assert set(listed(admin_client.get(GRANTS, {"q": "analysts"}))) == {reviewed.analysts_view}
    assert set(listed(admin_client.get(GRANTS, {"q": "other"}))) == {reviewed.elsewhere}
    assert set(listed(admin_client.get(GRANTS, {"scope": "artifact"}))) == {reviewed.erin_contributes}
    assert set(listed(admin_client.get(GRANTS, {"grantee": "group"}))) == {reviewed.analysts_view}
    assert len(listed(admin_client.get(GRANTS, {"role__exact": "maintainer"}))) == 2


def test_staff_see_the_grants_of_projects_they_may_see(client, reviewed, staff, client_as):
    client_as(staff(reviewed.carol_views.user, *REVIEWER_PERMISSIONS))

    shown = set(listed(client.get(GRANTS)))

    assert reviewed.elsewhere not in shown
    assert reviewed.carol_views in shown
    hidden = reverse("admin:artifacts_rolegrant_change", args=[reviewed.elsewhere.pk])
    assert client.get(hidden, follow=True).redirect_chain[-1][0] == reverse("admin:index")


@pytest.mark.parametrize("path", ["abc/report/", "999/report/", "999/report.csv", "abc/report.csv"])
def test_a_report_of_no_such_campaign_answers_404(admin_client, path):
    assert admin_client.get(f"{CAMPAIGNS}{path}").status_code == 404


@pytest.mark.parametrize(
    "params", [{"reviewer": "bogus"}, {"unused": "maybe"}, {"decision__exact": "perhaps"}, {"campaign__id__exact": "x"}]
)
def test_odd_filter_values_never_break_the_item_list(admin_client, campaign, params):
    assert admin_client.get(ITEMS, params).status_code in (200, 302)


# The project picker of the open form ------------------------------------------------------------------

AUTOCOMPLETE = reverse("admin:autocomplete")
PROJECT_PICKER = {"app_label": "access", "model_name": "accessreviewcampaign", "field_name": "project"}


def picked(response) -> list[str]:
    assert response.status_code == 200, response.status_code
    return sorted(result["text"] for result in response.json()["results"])


@pytest.fixture
def maintainer_in_reviewers_group(reviewed, staff):
    """A project maintainer as the README says to set one up: staff, in a "reviewers" group holding the add
    permission on access reviews, and not the view permission on projects. She audits `audited`, views `viewed`."""
    maintainer = reviewed.alice
    maintainer.is_staff = True
    maintainer.save(update_fields=["is_staff"])
    reviewers = GroupFactory(name="reviewers")
    reviewers.permissions.add(
        *Permission.objects.filter(codename__in=["add_accessreviewcampaign", "view_accessreviewcampaign"])
    )
    maintainer.groups.add(reviewers)
    grant(Role.AUDITOR, on=ProjectFactory(slug="audited", name="audited"), user=maintainer)
    grant(Role.VIEWER, on=ProjectFactory(slug="viewed", name="viewed"), user=maintainer)
    ProjectFactory(slug="unseen", name="unseen")
    return maintainer


def test_a_maintainer_s_project_picker_offers_exactly_the_projects_she_may_review(
    client, maintainer_in_reviewers_group
):
    client.force_login(maintainer_in_reviewers_group)

    response = client.get(AUTOCOMPLETE, PROJECT_PICKER)

    assert picked(response) == sorted([str(reviewed_project) for reviewed_project in
                                       Project.objects.filter(slug__in=["churn", "audited"])])  # fmt: skip
    assert picked(client.get(AUTOCOMPLETE, {**PROJECT_PICKER, "term": "aud"})) == ["audited"]
    assert picked(client.get(AUTOCOMPLETE, {**PROJECT_PICKER, "term": "viewed"})) == []


def test_the_picker_does_not_open_the_projects_admin_nor_other_pickers_to_her(client, maintainer_in_reviewers_group):
    client.force_login(maintainer_in_reviewers_group)

    assert client.get(reverse("admin:artifacts_project_changelist")).status_code == 403
    other_picker = {"app_label": "access", "model_name": "accessreviewitem", "field_name": "project"}
    assert client.get(AUTOCOMPLETE, other_picker).status_code == 403


def test_staff_who_may_not_open_a_campaign_get_no_projects_from_the_picker(client, reviewed, staff):
    client.force_login(staff(reviewed.bob, "view_accessreviewcampaign"))

    assert client.get(AUTOCOMPLETE, PROJECT_PICKER).status_code == 403


def test_a_superuser_s_picker_offers_every_project(admin_client, reviewed):
    ProjectFactory(slug="unseen", name="unseen")

    assert len(picked(admin_client.get(AUTOCOMPLETE, PROJECT_PICKER))) == Project.objects.count()


def test_a_maintainer_opens_a_campaign_on_the_project_her_picker_offered(client, maintainer_in_reviewers_group):
    client.force_login(maintainer_in_reviewers_group)
    [first, *_] = client.get(AUTOCOMPLETE, {**PROJECT_PICKER, "term": "aud"}).json()["results"]

    response = client.post(OPEN_CAMPAIGN, {"project": first["id"], **when(timezone.now() + timedelta(days=3))})

    assert response.status_code == 302
    assert AccessReviewCampaign.objects.get().project.slug == "audited"
