"""The portal's registry pages (governance/portal/views/registry.py and views/promotions.py): models with their
versions, history, card and metrics; two versions compared; promotion requests with their gates, approvals and
decision forms (what a request's page compares: test_promotion_page.py). Who sees what is the access rule's (404
otherwise), and every decision goes through the promotion services."""

import re
import xml.etree.ElementTree as ET

import pytest
from django.conf import settings
from django.test import Client
from django.utils.html import escape

from artifacts.access.roles import Role
from artifacts.models import Run
from governance.portal.views.registry import code_compare_url
from governance.registry.models import ModelVersion, PromotionDecision, PromotionRequest, Stage
from governance.registry.services.registry import model_alias_set
from tests.artifacts.factories import UserFactory, grant
from tests.governance.factories import (
    ModelVersionFactory,
    PromotionRequestFactory,
    RegisteredModelFactory,
    artifact_version_with_lineage,
)
from tests.governance.registry.promotions import policy, promoted
from tests.pages import queries_for

pytestmark = pytest.mark.django_db


# Arranging ---------------------------------------------------------------------------------------------------------


def viewer_of(obj):
    return grant(Role.VIEWER, on=obj).user


def reviewer_of(obj):
    return grant(Role.REVIEWER, on=obj).user


def version_of(model, metrics=None) -> ModelVersion:
    return ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(model.project, metrics=metrics)
    )


def model_with_versions(count: int, **model_fields):
    model = RegisteredModelFactory(**model_fields)
    return model, [version_of(model) for _ in range(count)]


def page_as(client, user, url: str):
    client.force_login(user)
    return client.get(url)


def approve(client, reviewer, promotion: PromotionRequest, comment: str = ""):
    client.force_login(reviewer)
    return client.post(f"/promotions/{promotion.pk}/", {"action": "approve", "approve-comment": comment})


# Who sees what -----------------------------------------------------------------------------------------------------


def test_every_page_asks_who_you_are_first(client):
    model, (version,) = model_with_versions(1)
    promotion = PromotionRequestFactory(model_version=version)

    for url in ["/models/", f"/models/{model.pk}/", "/promotions/", f"/promotions/{promotion.pk}/"]:
        response = client.get(url)
        assert (response.status_code, response.url) == (302, f"/accounts/login/?next={url}")


def test_a_user_without_rights_gets_404_for_a_model_and_its_promotion(client):
    model, (version, _other) = model_with_versions(2)
    promotion = PromotionRequestFactory(model_version=version)
    client.force_login(UserFactory())

    assert client.get(f"/models/{model.pk}/").status_code == 404
    assert client.get(f"/models/{model.pk}/compare/?a=1&b=2").status_code == 404
    assert client.get(f"/promotions/{promotion.pk}/").status_code == 404
    assert client.post(f"/promotions/{promotion.pk}/", {"action": "approve"}).status_code == 404
    assert not PromotionDecision.objects.exists()


def test_the_model_list_shows_only_visible_models(client):
    seen, _ = model_with_versions(1, name="seen-model")
    RegisteredModelFactory(name="hidden-model")

    response = page_as(client, viewer_of(seen.project), "/models/")

    assert response.status_code == 200
    assert "seen-model" in response.text
    assert "hidden-model" not in response.text


def test_the_model_list_searches_by_name_description_and_project(client):
    churn = RegisteredModelFactory(name="churn", description="Who leaves next month")
    fraud = RegisteredModelFactory(name="fraud", project=churn.project)
    client.force_login(viewer_of(churn.project))

    by_description = client.get("/models/", {"q": "leaves"}).text
    by_project = client.get("/models/", {"q": churn.project.slug}).text
    nothing = client.get("/models/", {"q": "nothing-like-it"}).text

    assert f"/models/{churn.pk}/" in by_description
    assert f"/models/{fraud.pk}/" not in by_description
    assert f"/models/{churn.pk}/" in by_project
    assert f"/models/{fraud.pk}/" in by_project
    assert "No model you can see matches" in nothing


def test_the_model_list_says_when_there_is_nothing_to_see(client):
    response = page_as(client, UserFactory(), "/models/")

    assert "No models to show yet" in response.text


def test_the_promotion_list_shows_what_awaits_me_and_filters_by_state(client):
    model, (first, second) = model_with_versions(2)
    awaiting = PromotionRequestFactory(model_version=first)
    withdrawn = PromotionRequestFactory(model_version=second)
    PromotionRequestFactory(model_version=version_of(RegisteredModelFactory()))  # another project's
    client.force_login(withdrawn.requested_by)
    client.post(f"/promotions/{withdrawn.pk}/", {"action": "withdraw"})
    reviewer = reviewer_of(model.project)

    page = page_as(client, reviewer, "/promotions/")
    only_withdrawn = client.get("/promotions/", {"state": "withdrawn"})

    assert page.context["awaiting"] == [awaiting]
    assert list(page.context["page"].object_list) == [withdrawn, awaiting]
    assert list(only_withdrawn.context["page"].object_list) == [withdrawn]
    assert f'href="/promotions/{withdrawn.pk}/"' in only_withdrawn.text


# The model page ----------------------------------------------------------------------------------------------------


def test_the_model_card_is_rendered_and_a_script_in_it_is_stripped(client):
    model, _ = model_with_versions(
        1, model_card="# Fraud scorer\n\n**Intended use**: card payments.\n\n<script>alert('owned')</script>"
    )

    response = page_as(client, viewer_of(model.project), f"/models/{model.pk}/")

    assert "<h1>Fraud scorer</h1>" in response.text
    assert "<strong>Intended use</strong>" in response.text
    assert "<script>" not in response.text
    assert "alert(" not in response.text


def test_the_model_page_shows_versions_metrics_side_by_side_and_a_compare_form(client):
    model = RegisteredModelFactory()
    version_of(model, metrics={"accuracy": 0.91, "recall": 0.7})
    version_of(model, metrics={"accuracy": 0.93, "precision": 0.8})

    response = page_as(client, viewer_of(model.project), f"/models/{model.pk}/")

    assert [v.number for v in response.context["versions"]] == [2, 1]
    assert response.context["metric_rows"] == [
        ("accuracy", ["0.91", "0.93"]),
        ("precision", ["—", "0.8"]),
        ("recall", ["0.7", "—"]),
    ]
    assert f'action="/models/{model.pk}/compare/"' in response.text
    assert '<label for="compare-a">' in response.text


def test_a_version_on_a_restricted_artifact_stays_off_the_model_page(client):
    model, (shown, hidden) = model_with_versions(2)
    artifact = hidden.artifact_version.artifact
    artifact.restricted = True
    artifact.save(update_fields=["restricted"])

    response = page_as(client, viewer_of(model.project), f"/models/{model.pk}/")

    assert [v.number for v in response.context["versions"]] == [shown.number]
    assert client.get(f"/models/{model.pk}/compare/?a=1&b=2").status_code == 404


# Deciding a promotion ----------------------------------------------------------------------------------------------


def test_two_reviewers_approving_on_the_page_move_the_version_to_production(client):
    model, (version,) = model_with_versions(1)
    promotion = PromotionRequestFactory(model_version=version)
    first, second = reviewer_of(model.project), reviewer_of(model.project)

    response = approve(client, first, promotion, "Holdout looks right.")
    assert (response.status_code, response.url) == (302, f"/promotions/{promotion.pk}/")
    page = client.get(response.url)
    assert "Your approval is recorded" in page.text
    assert "1 of 2 required approvals count" in page.text

    approve(client, second, promotion)

    version.refresh_from_db()
    assert version.stage == "production"
    assert "is now in production" in client.get(f"/promotions/{promotion.pk}/").text
    model_page = client.get(f"/models/{model.pk}/")
    assert '<span class="badge production">Production</span>' in model_page.text
    assert f'href="/promotions/{promotion.pk}/"' in model_page.text  # the history links the request


def test_the_requester_sees_why_they_cannot_decide_and_their_approval_changes_nothing(client):
    model, (version,) = model_with_versions(1)
    promotion = PromotionRequestFactory(model_version=version)
    requester = promotion.requested_by
    grant(Role.REVIEWER, on=model.project, user=requester)

    page = page_as(client, requester, f"/promotions/{promotion.pk}/")

    assert "separation of duties" in page.text
    assert 'value="approve"' not in page.text
    assert 'value="reject"' not in page.text
    assert 'value="withdraw"' in page.text

    response = client.post(f"/promotions/{promotion.pk}/", {"action": "approve"}, follow=True)

    assert "You requested this promotion, so you cannot approve it" in response.text
    promotion.refresh_from_db()
    assert promotion.state == "open"
    assert not promotion.decisions.exists()


def test_a_reviewer_sees_the_forms_and_a_viewer_sees_why_not(client):
    model, (version,) = model_with_versions(1)
    promotion = PromotionRequestFactory(model_version=version)

    reviewer_page = page_as(client, reviewer_of(model.project), f"/promotions/{promotion.pk}/")
    viewer_page = page_as(client, viewer_of(model.project), f"/promotions/{promotion.pk}/")

    assert 'value="approve"' in reviewer_page.text
    assert 'value="reject"' in reviewer_page.text
    assert '<label for="id_reject-comment">' in reviewer_page.text
    assert 'value="approve"' not in viewer_page.text
    assert "needs the reviewer role" in viewer_page.text


def test_rejecting_needs_a_comment(client):
    model, (version,) = model_with_versions(1)
    promotion = PromotionRequestFactory(model_version=version)
    client.force_login(reviewer_of(model.project))

    refused = client.post(f"/promotions/{promotion.pk}/", {"action": "reject", "reject-comment": "   "})

    assert refused.status_code == 400
    assert "the comment is required" in refused.text
    promotion.refresh_from_db()
    assert promotion.state == "open"

    rejected = client.post(
        f"/promotions/{promotion.pk}/", {"action": "reject", "reject-comment": "Recall dropped."}, follow=True
    )

    assert "Rejected: request" in rejected.text
    assert "Recall dropped." in rejected.text
    promotion.refresh_from_db()
    assert promotion.state == "rejected"


def test_a_refusal_on_a_closed_request_is_a_message_not_an_error(client):
    model, (version,) = model_with_versions(1)
    promotion = PromotionRequestFactory(model_version=version)
    client.force_login(promotion.requested_by)
    client.post(f"/promotions/{promotion.pk}/", {"action": "withdraw"})

    response = approve(client, reviewer_of(model.project), promotion)

    assert response.status_code == 302
    assert f"Request #{promotion.pk} is withdrawn" in client.get(response.url).text


def test_the_promotion_page_shows_each_gate_with_its_reason(client):
    model, _ = model_with_versions(0)
    version = ModelVersionFactory(
        registered_model=model, artifact_version=artifact_version_with_lineage(model.project, verified=False)
    )
    promotion = PromotionRequestFactory(model_version=version, target_stage="staging")

    page = page_as(client, viewer_of(model.project), f"/promotions/{promotion.pk}/")

    assert '<span class="badge fail">fails</span>' in page.text
    assert "is not verified yet" in page.text
    assert promotion.digest in page.text
    assert escape(promotion.justification) in page.text


# Comparing two versions --------------------------------------------------------------------------------------------


def test_the_compare_page_highlights_metric_differences(client):
    model = RegisteredModelFactory()
    version_of(model, metrics={"accuracy": 0.91, "auc": 0.8})
    version_of(model, metrics={"accuracy": 0.93, "auc": 0.8})

    response = page_as(client, viewer_of(model.project), f"/models/{model.pk}/compare/?a=1&b=2")

    rows = {row.key: row for row in response.context["metrics"]}
    assert (rows["accuracy"].differs, rows["accuracy"].delta) == (True, "+0.02")
    assert not rows["auc"].differs
    assert '<tr class="changed">' in response.text  # no policy gives accuracy a direction: changed, not worse
    assert "+0.02" in response.text


def test_the_compare_page_asks_for_two_versions(client):
    model, _ = model_with_versions(2)
    client.force_login(viewer_of(model.project))

    response = client.get(f"/models/{model.pk}/compare/?a=1&b=two", follow=True)

    assert "Pick two versions to compare." in response.text
    assert client.get(f"/models/{model.pk}/compare/?a=1&b=9").status_code == 404


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("https://github.com/acme/fraud", "https://github.com/acme/fraud/compare/aaa1111...bbb2222"),
        ("https://gitlab.com/acme/fraud.git", "https://gitlab.com/acme/fraud/compare/aaa1111...bbb2222"),
        ("git@github.com:acme/fraud.git", "https://github.com/acme/fraud/compare/aaa1111...bbb2222"),
        ("https://token@github.com/acme/fraud/", "https://github.com/acme/fraud/compare/aaa1111...bbb2222"),
        ("https://git.example.com/ml/churn.git", None),
        ("javascript:alert(1)//github.com/a/b", None),
        ("https://github.com/acme", None),
    ],
)
def test_a_code_diff_is_linked_only_on_github_or_gitlab(repository, expected):
    assert code_compare_url(repository, "aaa1111", "bbb2222") == expected


# Query counts ------------------------------------------------------------------------------------------------------


def test_the_model_pages_cost_the_same_queries_for_one_or_ten_versions(client):
    few, _ = model_with_versions(2)
    many, _ = model_with_versions(10, project=few.project)
    for number in (3, 4):  # a history: v3 into production, then replaced by v4
        promotion = PromotionRequestFactory(model_version=many.versions.get(number=number))
        approve(client, reviewer_of(few.project), promotion)
        approve(client, reviewer_of(few.project), promotion)
    client.force_login(reviewer_of(few.project))

    for url in ["/models/{pk}/", "/models/{pk}/compare/?a=1&b=2"]:
        assert queries_for(client, url.format(pk=few.pk)) == queries_for(client, url.format(pk=many.pk))

    one_model = queries_for(client, "/models/")
    for _ in range(9):
        model_with_versions(1, project=few.project)
    assert queries_for(client, "/models/") == one_model


def test_the_promotion_pages_cost_the_same_queries_for_one_or_ten_requests(client):
    model, versions = model_with_versions(10)
    reviewer = reviewer_of(model.project)
    first = PromotionRequestFactory(model_version=versions[0])
    approve(client, reviewer_of(model.project), first)
    client.force_login(reviewer)
    one_request, one_detail = queries_for(client, "/promotions/"), queries_for(client, f"/promotions/{first.pk}/")

    for version in versions[1:]:
        PromotionRequestFactory(model_version=version)

    assert queries_for(client, "/promotions/") == one_request
    assert queries_for(client, f"/promotions/{first.pk}/") == one_detail


def test_a_decision_without_the_csrf_token_is_refused(client):
    model, (version,) = model_with_versions(1)
    promotion = PromotionRequestFactory(model_version=version)
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(reviewer_of(model.project))

    response = guarded.post(f"/promotions/{promotion.pk}/", {"action": "approve"})

    assert response.status_code == 403
    assert not promotion.decisions.exists()


def test_someone_who_reads_the_artifacts_alone_does_not_see_their_runs_on_the_model_pages(client):
    """A grant on an artifact reaches its versions, not its project's runs: the API answers 404 for them."""
    model = RegisteredModelFactory()
    first, second = ModelVersionFactory(registered_model=model), ModelVersionFactory(registered_model=model)
    reader = UserFactory()
    for version in (first, second):
        grant(Role.VIEWER, on=version.artifact_version.artifact, user=reader)
        Run.objects.filter(pk=version.artifact_version.run_id).update(metrics={"secret_metric": 0.123456})
    client.force_login(reader)

    page = client.get(f"/models/{model.pk}/").content.decode()
    compare = client.get(f"/models/{model.pk}/compare/?a=1&b=2").content.decode()

    assert "0.123456" not in page
    assert "0.123456" not in compare
    assert first.artifact_version.run.external_id not in compare
    assert "in a project you may not read" in compare


def test_a_model_card_cannot_make_readers_load_an_image_from_elsewhere(client):
    model = RegisteredModelFactory(model_card="# Card\n\n![pixel](https://tracker.example/pixel.gif)")
    client.force_login(UserFactory(is_superuser=True))

    html = client.get(f"/models/{model.pk}/").content.decode()

    assert "tracker.example" not in html
    assert "<img" not in html


# Aliases after a promotion, metric directions and charts -------------------------------------------------------------


def test_an_alias_stays_on_its_version_when_a_promotion_archives_it_and_the_list_says_so(client):
    model = RegisteredModelFactory(name="fraud-scorer")
    first, second = version_of(model), version_of(model)
    promoted(first)
    model_alias_set(registered_model=model, name="champion", model_version=first, set_by=first.created_by)

    promoted(second)  # the production policy's default: the version it replaces is archived

    first.refresh_from_db()
    assert first.stage == Stage.ARCHIVED
    assert model.aliases.get(name="champion").model_version == first  # promotions never move an alias
    html = page_as(client, viewer_of(model.project), "/models/").text
    assert '<span class="badge archived">champion → v1 (archived)</span>' in html

    model_alias_set(registered_model=model, name="champion", model_version=second, set_by=second.created_by)
    html = client.get("/models/").text
    assert '<span class="badge info">champion → v2</span>' in html
    assert "(archived)" not in html


def test_metric_names_and_version_numbers_are_shown_as_recorded_not_capitalised(client):
    model = RegisteredModelFactory()
    version_of(model, metrics={"auc": 0.8, "F1_macro": 0.5})
    version_of(model, metrics={"auc": 0.9, "F1_macro": 0.6})

    detail = page_as(client, viewer_of(model.project), f"/models/{model.pk}/").text
    compare = client.get(f"/models/{model.pk}/compare/?a=1&b=2").text

    assert '<table class="keys" aria-labelledby="metric-table">' in detail
    assert '<th scope="row">auc</th>' in detail
    assert '<table class="diff keys" aria-labelledby="metrics">' in compare
    assert '<th scope="row">F1_macro</th>' in compare
    stylesheet = (settings.BASE_DIR / "static" / "portal" / "registry.css").read_text()
    assert re.search(r"table\.keys th \{[^}]*text-transform: none", stylesheet)


def test_compare_marks_each_metric_better_or_worse_by_its_policy_threshold(client):
    model = RegisteredModelFactory()
    policy(
        model.project,
        "production",
        metric_thresholds=[
            {"metric": "accuracy", "operator": ">=", "value": 0.5},
            {"metric": "loss", "operator": "<=", "value": 1.0},
        ],
    )
    policy(model.project, "staging", metric_thresholds=[{"metric": "latency_ms", "operator": "<", "value": 90}])
    version_of(model, metrics={"accuracy": 0.91, "loss": 0.30, "latency_ms": 40, "auc": 0.7, "recall": 0.5})
    version_of(model, metrics={"accuracy": 0.93, "loss": 0.35, "latency_ms": 30, "auc": 0.8, "recall": 0.5})

    response = page_as(client, viewer_of(model.project), f"/models/{model.pk}/compare/?a=1&b=2")

    rows = {row.key: row for row in response.context["metrics"]}
    verdicts = {key: (row.verdict, row.differs) for key, row in rows.items()}
    assert verdicts == {
        "accuracy": ("better", True),  # higher is better, and it rose
        "loss": ("worse", True),  # lower is better, and it rose
        "latency_ms": ("better", True),  # from the staging policy
        "auc": ("", True),  # no policy names it: it only differs
        "recall": ("", False),
    }
    html = response.text
    assert '<tr class="better">' in html
    assert "▲ better" in html
    assert '<tr class="worse">' in html
    assert "▼ worse" in html
    assert '<tr class="changed">' in html  # auc
    assert "<code>loss</code> lower is better" in html


def test_a_direction_the_model_declares_colours_compare_and_outranks_the_policy(client):
    model = RegisteredModelFactory(metric_directions={"latency_ms": "lower", "accuracy": "lower"})
    policy(model.project, "production", metric_thresholds=[{"metric": "accuracy", "operator": ">=", "value": 0.5}])
    version_of(model, metrics={"accuracy": 0.91, "latency_ms": 40})
    version_of(model, metrics={"accuracy": 0.93, "latency_ms": 30})

    response = page_as(client, viewer_of(model.project), f"/models/{model.pk}/compare/?a=1&b=2")

    verdicts = {row.key: row.verdict for row in response.context["metrics"]}
    # The model's word wins over the threshold's (an odd declaration here, to tell the two apart).
    assert verdicts == {"accuracy": "worse", "latency_ms": "better"}
    assert "<code>latency_ms</code> lower is better" in response.text


def test_without_a_threshold_compare_says_only_that_a_metric_differs(client):
    model = RegisteredModelFactory()
    version_of(model, metrics={"accuracy": 0.91})
    version_of(model, metrics={"accuracy": 0.81})

    html = page_as(client, viewer_of(model.project), f"/models/{model.pk}/compare/?a=1&b=2").text

    assert '<tr class="changed">' in html
    assert "worse" not in html.split('id="metrics"')[1].split("</table>")[0]
    assert "Neither the model nor a promotion policy of this project says which way" in html


SVG = "{http://www.w3.org/2000/svg}"


def test_the_model_page_draws_a_chart_per_metric_with_its_numbers_in_a_table(client):
    model = RegisteredModelFactory()
    policy(model.project, "production", metric_thresholds=[{"metric": "auc", "operator": ">=", "value": 0.5}])
    version_of(model, metrics={"auc": 0.8, "recall": 0.5})
    version_of(model, metrics={"auc": 0.85})
    version_of(model, metrics={"auc": 0.9, "recall": 0.6})

    response = page_as(client, viewer_of(model.project), f"/models/{model.pk}/")

    charts = {chart.key: chart for chart in response.context["metric_charts"]}
    assert charts["auc"].rows == [(1, "0.8"), (2, "0.85"), (3, "0.9")]
    assert charts["recall"].rows == [(1, "0.5"), (3, "0.6")]  # only the versions that recorded it
    auc = ET.fromstring(str(charts["auc"].svg))  # noqa: S314 (the page's own markup under test)
    assert auc.get("role") == "img"
    assert auc.find(f"{SVG}title").text == "auc by version"
    assert "Higher is better" in auc.find(f"{SVG}desc").text
    assert auc.get("aria-labelledby") == auc.find(f"{SVG}title").get("id")
    line = [tuple(map(float, p.split(","))) for p in auc.find(f"{SVG}polyline").get("points").split()]
    assert [x for x, _ in line] == sorted(x for x, _ in line)  # versions left to right
    assert line[0][1] > line[1][1] > line[2][1]  # a rising metric climbs (SVG's y grows downwards)
    recall = ET.fromstring(str(charts["recall"].svg))  # noqa: S314
    assert [c.find(f"{SVG}title").text for c in recall.iter(f"{SVG}circle")] == ["v1: 0.5", "v3: 0.6"]
    html = response.text
    assert html.count('<figure class="metric-chart card"') == 2
    assert '<caption class="visually-hidden">auc by version</caption>' in html


def test_the_model_page_has_copy_buttons_for_each_digest(client):
    model, (first, _second) = model_with_versions(2)

    html = page_as(client, viewer_of(model.project), f"/models/{model.pk}/").text

    assert (
        f'data-copy-text="{first.artifact_version.blob.prefixed_digest}" data-copy-what="digest of v1" '
        'aria-label="Copy digest of v1">Copy</button>'
    ) in html
    assert '<script src="/static/portal/copy.js" defer></script>' in html


def test_the_model_page_query_count_does_not_grow_with_versions_and_metrics(client):
    def queries(count: int) -> int:
        model = RegisteredModelFactory()
        for n in range(count):
            version_of(model, metrics={f"metric_{m}": n / 10 for m in range(count)})
        client.force_login(viewer_of(model.project))
        return queries_for(client, f"/models/{model.pk}/")

    assert queries(1) == queries(6)
