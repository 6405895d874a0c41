"""Permission checks are spelled one way: `Model.objects.visible_to(user)`, `Model.objects.where(user, verb)` and
`can(user, verb, obj)`, all from one project-scoped queryset base (artifacts.access.querysets).

The rule's condition builders are its own vocabulary and its querysets'. A filter written with them anywhere else is
a second spelling of the rule that the next change to it would miss, so this test reads the code for one.
"""

import ast
from pathlib import Path

import pytest
from django.apps import apps
from django.db.models import Model

from artifacts.access.querysets import ProjectScopedQuerySet
from artifacts.access.roles import Role, Verb
from artifacts.access.rule import can
from artifacts.models import RunArtifactInput
from tests.artifacts.factories import ArtifactVersionFactory, DatasetVersionFactory, UserFactory, grant

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("core", "artifacts", "governance", "config")
RULE = ROOT / "artifacts" / "access" / "rule.py"
#: The access rule's condition builders (artifacts.access.rule).
CONDITIONS = {"projects_where", "artifacts_where", "artifact_ids_where", "artifacts_granted", "visible_projects"}


def source_modules() -> list[Path]:
    return sorted(
        path for package in PACKAGES for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts
    )


def rule_conditions_outside_querysets(path: Path, root: Path = ROOT) -> list[str]:
    """`module:line name` for each use of a rule condition builder outside a QuerySet class."""
    found = []

    def visit(node: ast.AST, in_queryset: bool) -> None:
        if isinstance(node, ast.ClassDef):
            in_queryset = in_queryset or node.name.endswith("QuerySet")
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if name in CONDITIONS and not in_queryset:
            found.append(f"{path.relative_to(root)}:{node.lineno} {name}")
        for child in ast.iter_child_nodes(node):
            visit(child, in_queryset)

    visit(ast.parse(path.read_text(), filename=str(path)), in_queryset=False)
    return found


def test_the_rules_conditions_are_used_by_querysets_alone():
    modules = [path for path in source_modules() if path != RULE]
    assert modules, "no source module found"
    assert [use for path in modules for use in rule_conditions_outside_querysets(path)] == []


def test_the_check_finds_a_condition_written_outside_a_queryset(tmp_path):
    module = tmp_path / "admin.py"
    module.write_text(
        "from artifacts.access import rule\n\n\n"
        "def options(user):\n"
        "    return Project.objects.filter(rule.projects_where(user, 'manage'))\n\n\n"
        "class SomeQuerySet:\n"
        "    def mine(self, user):\n"
        "        return self.filter(projects_where(user, 'view'))\n"
    )
    assert rule_conditions_outside_querysets(module, tmp_path) == ["admin.py:5 projects_where"]


def project_models() -> list[type[Model]]:
    """Every concrete model of Provenant's own apps with a foreign key or id naming a project."""
    own = [config for config in apps.get_app_configs() if config.name.split(".")[0] in PACKAGES]
    return [
        model
        for config in own
        for model in config.get_models()
        if any(field.name in ("project", "project_id") for field in model._meta.get_fields())
    ]


def test_every_model_in_a_project_has_the_scoped_queryset():
    """A model naming its project gets `visible_to` and `where` from the base, or its reads would need a filter of
    their own. Core's audit log and outbox name projects by id but sit below the rule: their areas read them
    through scoped querysets of their own (governance.audit.selectors, governance.webhooks.models). An API token's
    project restricts it rather than holding it: tokens are read as their user's (governance.access.selectors)."""
    below_the_rule = {"AuditEntry", "Event", "ApiToken"}
    unscoped = [
        model.__name__
        for model in project_models()
        if model.__name__ not in below_the_rule and not isinstance(model._default_manager.all(), ProjectScopedQuerySet)
    ]
    assert project_models()
    assert unscoped == []


@pytest.mark.django_db
def test_can_asks_the_models_own_queryset_in_one_query(django_assert_num_queries):
    secret = ArtifactVersionFactory(artifact__restricted=True)
    project = secret.artifact.project
    dataset_version = DatasetVersionFactory(dataset__project=project)
    viewer = grant(Role.VIEWER, on=project).user
    superuser = UserFactory(is_superuser=True)
    with django_assert_num_queries(1):
        assert can(viewer, Verb.VIEW, dataset_version)
    with django_assert_num_queries(1):
        assert not can(viewer, Verb.VIEW, secret)
    with django_assert_num_queries(1):
        assert not can(viewer, Verb.MANAGE, project)
    with django_assert_num_queries(0):
        assert can(superuser, Verb.MANAGE, secret)


@pytest.mark.django_db
def test_can_refuses_a_model_no_rule_applies_to():
    with pytest.raises(TypeError, match="No access rule applies"):
        can(UserFactory(), Verb.VIEW, RunArtifactInput(pk=1))
