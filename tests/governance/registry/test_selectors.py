"""Reads of the registry (governance/registry/selectors.py): where a promotion request stands now, and the policy in
force for one project or many. They answer values and leave the objects they are given as they were."""

import pytest

from governance.registry.models import PromotionRequest
from governance.registry.selectors import (
    DEFAULT_POLICIES,
    Standing,
    policies_current,
    policy_current,
    promotion_request_standing,
)
from governance.registry.services.promotions import promotion_approve, promotion_withdraw
from tests.artifacts.factories import ProjectFactory
from tests.governance.registry.promotions import policy, request_for, reviewer_of

pytestmark = pytest.mark.django_db


def test_the_standing_of_an_open_request_says_what_blocks_it_and_sets_nothing_on_the_request(version):
    request = promotion_approve(request=request_for(version), reviewer=reviewer_of(version.registered_model.project))
    request = PromotionRequest.objects.get(pk=request.pk)
    attributes = dict(vars(request))

    standing = promotion_request_standing(request)

    assert isinstance(standing, Standing)
    assert (standing.policy.version, standing.approvals_counted) == (0, 1)
    assert [approval["counts"] for approval in standing.approvals] == [True]
    assert standing.blocked_by == "1 of 2 required approvals count."
    assert {gate["gate"]: gate["passed"] for gate in standing.gates_now}["integrity"] is True
    assert vars(request).keys() == attributes.keys()
    assert all(vars(request)[name] is value for name, value in attributes.items() if name != "_state")


def test_a_closed_request_is_blocked_by_nothing(version):
    request = request_for(version)
    promotion_withdraw(request=request, withdrawn_by=request.requested_by)

    standing = promotion_request_standing(PromotionRequest.objects.get(pk=request.pk))

    assert (standing.approvals_counted, standing.blocked_by) == (0, "")


def test_policies_current_answers_as_policy_current_does_for_each_project():
    saved, default = ProjectFactory(), ProjectFactory()
    policy(saved, "production", approvals_required=3)
    policy(saved, "production", approvals_required=4)

    policies = policies_current({saved.pk, default.pk}, "production")

    for project in (saved, default):
        one = policy_current(project, "production")
        assert (policies[project.pk].version, policies[project.pk].approvals_required) == (
            one.version,
            one.approvals_required,
        )
    assert (policies[saved.pk].version, policies[saved.pk].approvals_required) == (2, 4)
    assert policies[default.pk].approvals_required == DEFAULT_POLICIES["production"]["approvals_required"]
