"""The supply-chain gates of a promotion policy (governance/registry/gates.py): "license allowed", an allowlist the
version's declared SPDX expression must be satisfied by, and "no known vulnerable dependency", the producing run's
pinned dependencies against the OSV data an operator imported. Each blocks a promotion to production through the
API, with a sentence naming what is wrong, and lets the next, fixed version through."""

import pytest

from artifacts.access.roles import Role
from artifacts.models import Project
from governance.registry.gates import gates_evaluate
from governance.registry.models import PromotionPolicy
from tests.artifacts.factories import ProjectFactory, grant
from tests.governance.factories import ModelVersionFactory, RegisteredModelFactory, artifact_version_with_lineage
from tests.governance.supplychain.osv import PYSEC_NUMPY, osv_imported, osv_record

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/model-versions/"
PROMOTIONS = "/api/v1/promotions/"
POLICIES = "/api/v1/promotion-policies/"


@pytest.fixture
def project() -> Project:
    return ProjectFactory()


def person(role: str, project: Project):
    return grant(role, on=project).user


def set_policy(api_as, project: Project, **values) -> dict:
    response = api_as(person(Role.MAINTAINER, project)).post(
        POLICIES, {"project": project.slug, "stage": "production", **values}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def promote(api_as, model, artifact_version) -> tuple[dict, dict]:
    """Register `artifact_version` as the next version of `model`, ask for production and have two reviewers
    approve, all through the API: answers the request after asking and after the second approval."""
    project = model.project
    pipeline = api_as(person(Role.CONTRIBUTOR, project))
    registered = pipeline.post(VERSIONS, {"model": model.pk, "artifact_version": artifact_version.pk}, format="json")
    assert registered.status_code == 201, registered.content
    asked = pipeline.post(
        PROMOTIONS,
        {"model_version": registered.json()["id"], "target_stage": "production", "justification": "Better recall."},
        format="json",
    )
    assert asked.status_code == 201, asked.content
    decided = None
    for _ in range(2):
        decided = api_as(person(Role.REVIEWER, project)).post(f"{PROMOTIONS}{asked.json()['id']}/approve/", {})
        assert decided.status_code == 200, decided.content
    return asked.json(), decided.json()


def gate(body: dict, name: str, key: str = "gates_at_request") -> tuple[bool, str]:
    (found,) = [(item["passed"], item["detail"]) for item in body[key] if item["gate"] == name]
    return found


# License allowed ---------------------------------------------------------------------------------------------------


def test_a_license_outside_the_allowlist_blocks_production_and_the_next_version_under_an_allowed_one_passes(
    api_as, project
):
    model = RegisteredModelFactory(project=project)
    policy = set_policy(api_as, project, allowed_licenses=["mit", "Apache-2.0"])
    assert policy["allowed_licenses"] == ["Apache-2.0", "MIT"]

    asked, decided = promote(api_as, model, artifact_version_with_lineage(project, license="GPL-3.0 AND MIT"))

    passed, detail = gate(asked, "license")
    assert not passed
    assert detail == (
        "'GPL-3.0-only AND MIT' is not satisfied by the allowed licenses (Apache-2.0, MIT): GPL-3.0-only is not "
        "allowed."
    )
    assert (decided["state"], decided["approvals_counted"]) == ("open", 2)
    assert decided["blocked_by"].startswith("Gates fail: license: 'GPL-3.0-only AND MIT' is not satisfied")

    # An OR is satisfied by one allowed side: the fixed version declares the dual license.
    asked, decided = promote(api_as, model, artifact_version_with_lineage(project, license="MIT OR GPL-3.0"))

    assert gate(asked, "license") == (
        True,
        "'MIT OR GPL-3.0-only' is satisfied by the allowed licenses (Apache-2.0, MIT).",
    )
    assert decided["state"] == "approved"
    assert api_as(person(Role.VIEWER, project)).get(f"{VERSIONS}{asked['model_version']}/").json()["stage"] == (
        "production"
    )


def test_a_version_that_declares_no_license_fails_the_gate_saying_what_to_do(project):
    version = ModelVersionFactory(
        registered_model=RegisteredModelFactory(project=project),
        artifact_version=artifact_version_with_lineage(project),
    )
    policy = PromotionPolicy(project=project, stage="production", version=1, allowed_licenses=["MIT"])

    (result,) = [
        r for r in gates_evaluate(policy, version, current_production=None, now=None) if r["gate"] == "license"
    ]

    assert not result["passed"]
    assert (
        "declares no license: publish the bytes again with their SPDX license (the policy allows MIT)"
        in (result["detail"])
    )


@pytest.mark.parametrize(
    ("declared", "passes"),
    [
        ("GPL-2.0-only WITH Classpath-exception-2.0", True),  # an exception only adds permissions
        ("Apache-2.0 AND (MIT OR GPL-3.0-only)", False),
        ("MIT AND GPL-2.0-or-later", True),
    ],
)
def test_the_allowlist_is_evaluated_as_the_expression_says(project, declared, passes):
    version = ModelVersionFactory(
        registered_model=RegisteredModelFactory(project=project),
        artifact_version=artifact_version_with_lineage(project, license=declared),
    )
    policy = PromotionPolicy(
        project=project, stage="production", version=1, allowed_licenses=["MIT", "GPL-2.0-only", "GPL-2.0-or-later"]
    )

    (result,) = [
        r for r in gates_evaluate(policy, version, current_production=None, now=None) if r["gate"] == "license"
    ]

    assert result["passed"] is passes


@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        (["MIT", "Foo-License-9"], "Unknown SPDX license identifier(s): Foo-License-9."),
        (["MIT OR Apache-2.0"], "'MIT OR Apache-2.0' is an expression: list each allowed license on its own"),
        ("MIT", 'Expected a list of items but got type "str".'),
    ],
)
def test_an_allowlist_that_is_not_spdx_identifiers_is_refused_by_name(api_as, project, allowed, message):
    response = api_as(person(Role.MAINTAINER, project)).post(
        POLICIES, {"project": project.slug, "stage": "production", "allowed_licenses": allowed}, format="json"
    )

    assert response.status_code == 400, response.content
    body = response.json()
    assert message in (body["detail"] if "detail" in body else body["allowed_licenses"][0])
    assert not PromotionPolicy.objects.filter(project=project).exists()


# No known vulnerable dependency ------------------------------------------------------------------------------------


def test_a_dependency_with_a_known_vulnerability_blocks_production_and_the_retrained_version_passes(
    api_as, project, tmp_path
):
    osv_imported(tmp_path, [osv_record(PYSEC_NUMPY), osv_record("PYSEC-2024-48", package="pillow")])
    model = RegisteredModelFactory(project=project)
    set_policy(api_as, project, block_vulnerable_dependencies=True)
    environment = {"python_version": "3.11.9", "dependencies": ["numpy==1.21.0", "pandas==2.2.3", "torch>=2"]}

    asked, decided = promote(api_as, model, artifact_version_with_lineage(project, environment=environment))

    passed, detail = gate(asked, "vulnerable_dependencies")
    assert not passed
    assert f"numpy==1.21.0 is affected by {PYSEC_NUMPY}. Retrain with fixed versions" in detail
    assert "1 unpinned requirement(s) could not be checked." in detail
    assert decided["state"] == "open"
    assert "vulnerable_dependencies: Run '" in decided["blocked_by"]

    fixed = {**environment, "dependencies": ["numpy==1.22.0", "pandas==2.2.3"]}
    asked, decided = promote(api_as, model, artifact_version_with_lineage(project, environment=fixed))

    passed, detail = gate(asked, "vulnerable_dependencies")
    assert passed, detail
    assert "None of the 2 pinned dependencies of run '" in detail
    assert "is affected by a vulnerability in the imported PyPI OSV data." in detail
    assert decided["state"] == "approved"


def test_without_imported_data_or_recorded_dependencies_the_gate_fails_saying_why(api_as, project, tmp_path):
    set_policy(api_as, project, block_vulnerable_dependencies=True)
    version = ModelVersionFactory(
        registered_model=RegisteredModelFactory(project=project),
        artifact_version=artifact_version_with_lineage(project),
    )
    policy = PromotionPolicy(project=project, stage="production", version=1, block_vulnerable_dependencies=True)

    def dependencies_gate():
        results = gates_evaluate(policy, version, current_production=None, now=None)
        return next(r for r in results if r["gate"] == "vulnerable_dependencies")

    assert "No OSV data for PyPI is imported" in dependencies_gate()["detail"]
    osv_imported(tmp_path, [osv_record(PYSEC_NUMPY)])
    assert dependencies_gate()["passed"] is True  # the factory's run pins numpy==2.1.0, fixed long before

    bare = ModelVersionFactory(
        registered_model=version.registered_model,
        artifact_version=artifact_version_with_lineage(project, environment={"python_version": "3.11.9"}),
    )
    (result,) = [
        r
        for r in gates_evaluate(policy, bare, current_production=None, now=None)
        if r["gate"] == "vulnerable_dependencies"
    ]
    assert not result["passed"]
    assert "records no dependencies (environment.dependencies" in result["detail"]


def test_both_gates_are_off_by_default(api_as, project):
    current = api_as(person(Role.VIEWER, project)).get(f"{POLICIES}current/", {"project": project.slug})

    assert current.status_code == 200, current.content
    assert {(p["stage"], tuple(p["allowed_licenses"]), p["block_vulnerable_dependencies"]) for p in current.json()} == {
        ("staging", (), False),
        ("production", (), False),
        ("archived", (), False),
    }
