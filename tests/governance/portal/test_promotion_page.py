"""A promotion request's page (governance/portal/views/promotions.py) answers "what changes if I approve?": the
candidate beside the model's production version (metrics with deltas judged by the policy's thresholds, the
parameters that differ, input datasets, commits, digests) with links to both, what is left to do, the gates once
with their history folded away, and a discussion anyone who may see the request may join."""

import re

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from artifacts.access.roles import Role
from artifacts.models import Run
from artifacts.services.integrity import blob_verify
from core.models import AuditEntry
from governance.registry.models import ModelVersion, PromotionComment, PromotionRequest
from governance.registry.services.promotions import model_rollback, promotion_approve, promotion_comment_add
from tests.artifacts.factories import (
    ArtifactFactory,
    ArtifactVersionFactory,
    DatasetFactory,
    DatasetVersionFactory,
    PublisherFactory,
    RunFactory,
    UserFactory,
    grant,
)
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory
from tests.governance.registry.promotions import maintainer_of, policy, promoted, request_for, version_of
from tests.pages import queries_for

pytestmark = pytest.mark.django_db

REPOSITORY = "https://github.com/example/scorer"


# Arranging ---------------------------------------------------------------------------------------------------------


def viewer_of(obj):
    return grant(Role.VIEWER, on=obj).user


def reviewer_of(obj):
    return grant(Role.REVIEWER, on=obj).user


def version_with_run(model, **run_fields) -> ModelVersion:
    """The model's next version, passing every default gate, its producing run recording `run_fields` (a run's
    parameters and code are fixed once recorded, so they are given here)."""
    publisher = PublisherFactory()
    dataset_version = DatasetVersionFactory(dataset=DatasetFactory(project=model.project), created_by=publisher)
    run = RunFactory(
        project=model.project, created_by=publisher, input_dataset_versions=[dataset_version], **run_fields
    )
    artifact_version = ArtifactVersionFactory(
        artifact=ArtifactFactory(project=model.project), created_by=publisher, run=run
    )
    blob_verify(blob=artifact_version.blob)
    return ModelVersionFactory(registered_model=model, artifact_version=artifact_version)


def candidate_against_production(**policy_values):
    """v1 in production and v2 asked for production, each with its run's metrics, parameters and commit, under a
    production policy with a floor on auc and a ceiling on latency_ms (unless told otherwise)."""
    model = RegisteredModelFactory()
    thresholds = [
        {"metric": "auc", "operator": ">=", "value": 0.9},
        {"metric": "latency_ms", "operator": "<=", "value": 50},
    ]
    policy(model.project, "production", metric_thresholds=thresholds, **policy_values)
    serving = version_with_run(
        model,
        metrics={"auc": 0.92, "latency_ms": 40, "accuracy": 0.91},
        parameters={"epochs": 5, "learning_rate": 0.05, "seed": 1},
        code_repository=REPOSITORY,
        code_commit="a" * 40,
    )
    promoted(serving)
    candidate = version_with_run(
        model,
        metrics={"auc": 0.95, "latency_ms": 45, "accuracy": 0.90},
        parameters={"epochs": 8, "learning_rate": 0.05, "seed": 1},
        code_repository=REPOSITORY,
        code_commit="b" * 40,
    )
    return model, serving, candidate, request_for(candidate)


def page_as(client, user, promotion: PromotionRequest):
    client.force_login(user)
    response = client.get(f"/promotions/{promotion.pk}/")
    assert response.status_code == 200
    return response


def comment(client, user, promotion: PromotionRequest, body: str, **kwargs):
    client.force_login(user)
    return client.post(f"/promotions/{promotion.pk}/", {"action": "comment", "comment-body": body}, **kwargs)


# What changes if it is approved ------------------------------------------------------------------------------------


def test_metrics_stand_beside_productions_with_deltas_judged_by_the_policys_thresholds(client):
    model, serving, _, promotion = candidate_against_production()

    page = page_as(client, viewer_of(model.project), promotion)

    rows = {row.key: row for row in page.context["comparison"].metrics}
    auc, latency, accuracy = rows["auc"], rows["latency_ms"], rows["accuracy"]
    assert (auc.production, auc.candidate, auc.delta, auc.verdict, auc.threshold) == (
        "0.92",
        "0.95",
        "+0.03",
        "better",
        ">= 0.9",
    )
    assert (latency.delta, latency.direction, latency.verdict, latency.threshold) == ("+5", "lower", "worse", "<= 50")
    assert (accuracy.delta, accuracy.direction, accuracy.verdict) == ("-0.01", "", "changed")
    html = page.content.decode()
    assert '<span class="verdict better">+0.03 better</span>' in html
    assert '<span class="verdict worse">+5 worse</span>' in html
    assert '<span class="verdict changed">-0.01 changed</span>' in html
    assert f"Production v{serving.number}" in html


def test_a_metric_the_model_declares_is_judged_by_its_declaration(client):
    model, _, _, promotion = candidate_against_production()
    model.metric_directions = {"accuracy": "higher"}
    model.save(update_fields=["metric_directions"])

    page = page_as(client, viewer_of(model.project), promotion)

    accuracy = next(row for row in page.context["comparison"].metrics if row.key == "accuracy")
    assert (accuracy.direction, accuracy.verdict) == ("higher", "worse")  # 0.91 → 0.90
    assert '<span class="verdict worse">-0.01 worse</span>' in page.content.decode()


def test_only_the_parameters_that_differ_are_listed(client):
    model, _, _, promotion = candidate_against_production()

    page = page_as(client, viewer_of(model.project), promotion)

    assert [(row.key, row.a, row.b) for row in page.context["comparison"].parameters] == [("epochs", "5", "8")]
    assert "2 other parameters the same." in page.content.decode()


def test_the_commit_range_and_the_code_hosts_comparison_are_shown(client):
    model, _, _, promotion = candidate_against_production()

    html = page_as(client, viewer_of(model.project), promotion).content.decode()

    assert f"From <code>{'a' * 12}</code> (production) to <code>{'b' * 12}</code> (candidate)" in html
    assert f'href="{REPOSITORY}/compare/{"a" * 40}...{"b" * 40}"' in html


def test_input_datasets_of_both_sides_say_which_is_new(client):
    model, serving, candidate, promotion = candidate_against_production()
    shared = DatasetVersionFactory(dataset=DatasetFactory(project=model.project, name="labels"))
    for version in (serving, candidate):
        version.artifact_version.run.input_dataset_versions.add(shared)

    page = page_as(client, viewer_of(model.project), promotion)

    inputs = page.context["comparison"].inputs
    assert {(row.name, row.in_production, row.in_candidate) for row in inputs if row.name == "labels"} == {
        ("labels", True, True)
    }
    only_candidate = [row for row in inputs if row.in_candidate and not row.in_production]
    only_production = [row for row in inputs if row.in_production and not row.in_candidate]
    assert len(only_candidate) == len(only_production) == 1
    assert "<strong>(new)</strong>" in page.content.decode()


def test_the_page_links_the_candidate_production_their_runs_and_the_model(client):
    model, serving, candidate, promotion = candidate_against_production()

    html = page_as(client, viewer_of(model.project), promotion).content.decode()

    assert f'href="/versions/{candidate.artifact_version_id}/"' in html
    assert f'href="/versions/{serving.artifact_version_id}/"' in html
    assert f'href="/models/{model.pk}/"' in html
    assert f'href="/models/{model.pk}/compare/?a={serving.number}&amp;b={candidate.number}"' in html
    for version in (serving, candidate):
        try:
            run_page = reverse("portal:run", args=[version.artifact_version.run_id])
        except NoReverseMatch:  # no run pages yet: the run links to the version it produced
            run_page = f"/versions/{version.artifact_version_id}/"
        assert f'<a href="{run_page}"><code>{version.artifact_version.run.external_id}</code></a>' in html
    assert "/api/" not in " ".join(re.findall(r'href="([^"]*)"', html))


def test_the_digests_of_both_sides_are_shown(client):
    model, serving, candidate, promotion = candidate_against_production()

    html = page_as(client, viewer_of(model.project), promotion).content.decode()

    assert f"sha256:{candidate.artifact_version.blob.digest}" in html
    assert f'production serves <code class="digest">sha256:{serving.artifact_version.blob.digest}</code>' in html


def test_without_a_production_version_the_candidate_stands_alone(client):
    model = RegisteredModelFactory()
    candidate = version_with_run(model, metrics={"auc": 0.95}, parameters={"epochs": 8})
    promotion = request_for(candidate)

    page = page_as(client, viewer_of(model.project), promotion)

    html = page.content.decode()
    assert page.context["comparison"].production is None
    assert f"No version of {model.name} you may see is in production." in html
    assert ">Change</th>" not in html
    assert "Parameters that differ" not in html
    assert "epochs" in html


def test_a_version_in_no_stage_is_said_so_not_in_none(client):
    model = RegisteredModelFactory()
    promotion = request_for(version_of(model))

    html = page_as(client, viewer_of(model.project), promotion).content.decode()

    assert "in no stage yet" in html
    assert "None" not in re.sub(r"<[^>]+>", "", html)


def test_a_production_version_the_user_may_not_see_is_not_compared(client):
    model = RegisteredModelFactory()
    serving = version_of(model)
    promoted(serving)
    candidate = version_of(model)
    promotion = request_for(candidate)
    reader = grant(Role.VIEWER, on=candidate.artifact_version.artifact).user

    page = page_as(client, reader, promotion)

    assert page.context["comparison"].production is None
    assert f"/versions/{serving.artifact_version_id}/" not in page.content.decode()


# What is left to do, and the gates ---------------------------------------------------------------------------------


def test_it_says_how_many_more_approvals_are_needed_and_who_may_not_give_them(client):
    model, _, candidate, promotion = candidate_against_production()
    promotion_approve(request=promotion, reviewer=reviewer_of(model.project))

    html = page_as(client, viewer_of(model.project), promotion).content.decode()

    assert "1 more distinct approval needed" in html
    assert f"{promotion.requested_by.get_username()} (who requested it)" in html
    assert f"{candidate.created_by.get_username()} (who made the version)" in html


def test_a_rollbacks_review_does_not_list_gates_as_left_to_do(client):
    model = RegisteredModelFactory()
    first, second = version_of(model), version_of(model)
    promoted(first)
    promoted(second)
    review = model_rollback(registered_model=model, rolled_back_by=maintainer_of(model.project), justification="Pager.")
    Run.objects.filter(pk=first.artifact_version.run_id).update(metrics={})  # a gate would fail, if it counted
    policy(model.project, "production", metric_thresholds=[{"metric": "auc", "operator": ">=", "value": 0.9}])

    page = page_as(client, viewer_of(model.project), review)

    assert not all(gate["passed"] for gate in page.context["standing"].gates_now)
    assert page.context["left"].failing_gates == []
    assert "Gates block nothing here" in page.content.decode()


def test_the_gates_are_shown_once_now_and_their_history_with_its_times_is_folded_away(client):
    model, _, _, promotion = candidate_against_production()
    promotion_approve(request=promotion, reviewer=reviewer_of(model.project))
    promotion.refresh_from_db()

    html = page_as(client, viewer_of(model.project), promotion).content.decode()

    before_details, details = html.split('<details class="gate-history"', 1)
    assert before_details.count('<table class="gates"') == 1
    assert 'id="gates-now"' in before_details
    assert details.count('<table class="gates"') == 2
    assert f"When requested, {promotion.requested_at:%Y-%m-%d %H:%M} UTC" in details
    assert f"When approval was last weighed, {promotion.gates_weighed_at:%Y-%m-%d %H:%M} UTC" in details
    assert "auc = 0.95 (&gt;= 0.9)" in before_details  # the gate's figure, and production's beside it above
    assert before_details.index("Production v1") < before_details.index('id="gates-now"')


def test_every_scrolling_table_can_be_reached_by_keyboard_and_is_named(client):
    model, _, _, promotion = candidate_against_production()
    promotion_approve(request=promotion, reviewer=reviewer_of(model.project))

    html = page_as(client, viewer_of(model.project), promotion).content.decode()

    wrappers = re.findall(r'<div class="table-wrap"[^>]*>', html)
    assert len(wrappers) >= 6  # metrics, parameters, inputs, gates now, at request, at the last weighing
    for wrapper in wrappers:
        assert 'tabindex="0"' in wrapper, wrapper
        assert 'role="region"' in wrapper, wrapper
        assert re.search(r'aria-label="[^"]+"', wrapper), wrapper


# The discussion ----------------------------------------------------------------------------------------------------


def test_a_viewer_comments_on_the_page_and_everyone_who_sees_the_request_reads_it(client):
    model, _, _, promotion = candidate_against_production()
    viewer = viewer_of(model.project)

    response = comment(client, viewer, promotion, "Was the October holdout labelled yet?")

    added = PromotionComment.objects.get()
    assert (response.status_code, response.url) == (302, f"/promotions/{promotion.pk}/#comment-{added.pk}")
    assert (added.author, added.body) == (viewer, "Was the October holdout labelled yet?")
    assert AuditEntry.objects.filter(action="promotion_request.commented", object_id=str(promotion.pk)).count() == 1
    html = page_as(client, reviewer_of(model.project), promotion).content.decode()
    assert f'id="comment-{added.pk}"' in html
    assert "Was the October holdout labelled yet?" in html
    assert viewer.get_username() in html
    promotion.refresh_from_db()
    assert (promotion.state, promotion.decisions.count()) == ("open", 0)


@pytest.mark.parametrize("body", ["", "   "])
def test_an_empty_comment_is_answered_with_a_message_not_an_error(client, body):
    model, _, _, promotion = candidate_against_production()

    response = comment(client, viewer_of(model.project), promotion, body)

    assert response.status_code == 400
    assert "Write something: the comment is empty." in response.content.decode()
    assert not PromotionComment.objects.exists()


def test_someone_who_may_not_see_the_request_can_neither_read_nor_comment(client):
    model, _, _, promotion = candidate_against_production()
    promotion_comment_add(request=promotion, author=reviewer_of(model.project), body="Internal context.")

    response = comment(client, UserFactory(), promotion, "Hello?")

    assert response.status_code == 404
    assert client.get(f"/promotions/{promotion.pk}/").status_code == 404
    assert PromotionComment.objects.count() == 1


def test_a_comment_without_the_csrf_token_is_refused(client):
    model, _, _, promotion = candidate_against_production()
    guarded = Client(enforce_csrf_checks=True)

    response = comment(guarded, viewer_of(model.project), promotion, "Hello?")

    assert response.status_code == 403
    assert not PromotionComment.objects.exists()


# Cost --------------------------------------------------------------------------------------------------------------


def test_the_page_costs_no_more_queries_with_more_comments_and_inputs(client, django_assert_max_num_queries):
    """(Each approval costs one query still: whether its reviewer holds the role now is asked per reviewer.)"""
    model, serving, candidate, promotion = candidate_against_production()
    reader = reviewer_of(model.project)
    promotion_comment_add(request=promotion, author=reader, body="First.")
    promotion_approve(request=promotion, reviewer=reviewer_of(model.project))
    client.force_login(reader)
    one = queries_for(client, f"/promotions/{promotion.pk}/")

    for number in range(9):
        promotion_comment_add(request=promotion, author=reviewer_of(model.project), body=f"Comment {number}.")
    for version in (serving, candidate):
        for _ in range(5):
            dataset_version = DatasetVersionFactory(dataset=DatasetFactory(project=model.project))
            version.artifact_version.run.input_dataset_versions.add(dataset_version)

    with django_assert_max_num_queries(one):
        assert client.get(f"/promotions/{promotion.pk}/").status_code == 200
