"""Sortable, paginated portal tables (governance/portal/tables.py and its template tags): `?sort=` only ever orders
by a column the view allows, `?page=` is clamped, and nothing a visitor types causes a 500."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from artifacts.access.roles import Role
from artifacts.models import Project
from governance.portal.tables import parse_sort, sort_and_page
from tests.artifacts.factories import ProjectFactory, UserFactory, grant
from tests.governance.factories import PromotionRequestFactory, RegisteredModelFactory
from tests.governance.lifecycle.scenario import build

pytestmark = pytest.mark.django_db

SORTS = {"slug": "slug", "name": ("name", "slug")}


def _page(query: dict, per_page: int = 2):
    request = RequestFactory().get("/", query)
    return sort_and_page(request, Project.objects.all(), allowed_sorts=SORTS, default="slug", per_page=per_page)


@pytest.fixture
def projects():
    return [ProjectFactory(slug=slug, name=name) for slug, name in [("b", "Zed"), ("a", "Young"), ("c", "Ant")]]


def test_a_list_is_in_its_default_order_without_a_sort(projects):
    table = _page({}, per_page=10)

    assert [project.slug for project in table.page] == ["a", "b", "c"]
    assert (table.sorting.key, table.sorting.descending) == ("slug", False)


def test_a_sort_and_its_reverse_order_by_the_columns_fields(projects):
    assert [p.slug for p in _page({"sort": "name"}, per_page=10).page] == ["c", "a", "b"]
    assert [p.slug for p in _page({"sort": "-name"}, per_page=10).page] == ["b", "a", "c"]


@pytest.mark.parametrize("sort", ["password", "-created_by__password", "--slug", "", "slug;drop", "-"])
def test_a_sort_the_view_does_not_allow_is_ignored(projects, sort):
    table = _page({"sort": sort}, per_page=10)

    assert table.sorting.param == "slug"
    assert [p.slug for p in table.page] == ["a", "b", "c"]


@pytest.mark.parametrize(("page", "number"), [("2", 2), ("99", 2), ("0", 2), ("-1", 2), ("two", 1), ("", 1)])
def test_a_page_out_of_range_or_not_a_number_is_clamped(projects, page, number):
    assert _page({"page": page}).page.number == number


def test_the_default_sort_must_be_allowed():
    with pytest.raises(ValueError, match="not among the allowed"):
        parse_sort(None, SORTS, "owner")


def test_sorting_says_which_way_a_header_click_goes_and_the_aria_sort_of_each_column(projects):
    sorting = _page({"sort": "-name"}).sorting

    assert sorting.toggled("name") == "name"
    assert sorting.toggled("slug") == "slug"
    assert sorting.aria_sort("name") == "descending"
    assert sorting.aria_sort("slug") is None
    assert _page({"sort": "name"}).sorting.toggled("name") == "-name"


# The lists that use it ---------------------------------------------------------------------------------------------


def test_the_models_list_sorts_by_a_header_link_that_keeps_the_search(client):
    project = ProjectFactory(slug="zeta")
    first, second = (
        RegisteredModelFactory(name="alpha-scorer", project=project),
        RegisteredModelFactory(name="beta-scorer", project=project),
    )
    viewer = grant(Role.VIEWER, on=project).user
    client.force_login(viewer)

    ascending = client.get("/models/", {"q": "scorer"})
    descending = client.get("/models/", {"q": "scorer", "sort": "-name"})

    assert list(ascending.context["page"].object_list) == [first, second]
    assert list(descending.context["page"].object_list) == [second, first]
    assert '<th scope="col" aria-sort="ascending"><a class="sort" href="?q=scorer&amp;sort=-name">' in ascending.text
    assert '<th scope="col" aria-sort="descending"><a class="sort" href="?q=scorer&amp;sort=name">' in descending.text


@pytest.mark.parametrize("query", [{"sort": "registered_model__project__secret"}, {"page": "x"}, {"sort": "-"}])
def test_the_promotion_list_never_fails_on_a_bad_sort_or_page(client, query):
    promotion = PromotionRequestFactory()
    client.force_login(grant(Role.REVIEWER, on=promotion.registered_model.project).user)

    response = client.get("/promotions/", query)

    assert response.status_code == 200
    assert list(response.context["page"].object_list) == [promotion]


def test_the_promotion_list_sorts_by_expiry_and_keeps_its_filter_in_the_page_links(client):
    promotions = [PromotionRequestFactory() for _ in range(3)]
    reviewer = UserFactory()
    for promotion in promotions:
        grant(Role.REVIEWER, on=promotion.registered_model.project, user=reviewer)
    client.force_login(reviewer)

    response = client.get("/promotions/", {"state": "open", "sort": "expires"})

    expected = sorted(promotions, key=lambda p: (p.expires_at, p.pk))
    assert list(response.context["page"].object_list) == expected
    assert 'aria-sort="ascending"><a class="sort" href="?state=open&amp;sort=-expires">Expires' in response.text
    # The awaiting table above is not sortable (its order is the worklist's): only the five headers below are.
    assert response.context["awaiting"]
    assert response.text.count('<a class="sort"') == 5


def test_a_retention_plans_versions_sort_by_size_largest_first(client):
    scenario = build()
    client.force_login(scenario.viewer_of_both)
    url = reverse("portal:retention-plan", args=[scenario.plan.project.slug, scenario.plan.pk])

    largest_first = client.get(url, {"sort": "-size"})
    unknown = client.get(url, {"sort": "blob__storage_key", "page": "9"})

    sizes = [item.size for item in largest_first.context["page"].object_list]
    assert len(sizes) > 1
    assert sizes == sorted(sizes, reverse=True)
    assert 'aria-sort="descending"><a class="sort" href="?sort=size">Size' in largest_first.text
    assert unknown.status_code == 200
    assert [item.pk for item in unknown.context["page"].object_list] == sorted(
        item.pk for item in unknown.context["page"].object_list
    )
