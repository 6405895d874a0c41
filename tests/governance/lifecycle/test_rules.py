"""Retention rules as data: the shape every rule must have, and what each criterion selects."""

import pytest

from core.errors import InvalidInput
from governance.lifecycle.rules import Candidate, Rule, rule_selecting, rules_clean, rules_stored


def fault(rules) -> str:
    with pytest.raises(InvalidInput) as caught:
        rules_clean(rules)
    assert caught.value.field == "rules"
    return caught.value.message


def candidate(**overrides) -> Candidate:
    values = {"kind": "checkpoint", "run_status": "failed", "age_days": 40.0, "version_rank": 5, "run_rank": 9}
    return Candidate(**{**values, **overrides})


def test_a_full_rule_is_read_into_its_fields():
    [rule] = rules_clean(
        [
            {
                "name": "old-failed-checkpoints",
                "action": "delete",
                "kinds": ["checkpoint", "dataset"],
                "run_statuses": ["failed", "none"],
                "older_than_days": 30,
                "keep_last_versions": 3,
                "keep_last_runs": 2,
                "stages": ["none", "archived"],
            }
        ]
    )
    assert rule == Rule(
        name="old-failed-checkpoints",
        action="delete",
        kinds=frozenset({"checkpoint", "dataset"}),
        run_statuses=frozenset({"failed", "none"}),
        older_than_days=30,
        keep_last_versions=3,
        keep_last_runs=2,
        stages=frozenset({"none", "archived"}),
    )


def test_no_rules_and_an_empty_list_are_both_no_rules():
    assert rules_clean(None) == []
    assert rules_clean([]) == []


def test_stored_shape_leaves_out_absent_criteria_and_sorts_lists():
    stored = rules_stored(
        [
            {"name": "cold", "action": "archive", "kinds": ["model", "checkpoint"]},
            {"name": "rest", "action": "archive", "kinds": []},
        ]
    )
    assert stored == [
        {"name": "cold", "action": "archive", "kinds": ["checkpoint", "model"]},
        {"name": "rest", "action": "archive"},
    ]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"name": "x"}, "rules: a list of rules"),
        (["x"], "rules[0]: each rule is an object"),
        ([{"name": "a", "action": "archive", "colour": "red"}], "rules[0].colour: not a rule field"),
        ([{"action": "archive"}], "rules[0].name: a name of 1 to 64 characters"),
        ([{"name": " ", "action": "archive"}], "rules[0].name: a name of 1 to 64"),
        ([{"name": "a" * 65, "action": "archive"}], "rules[0].name: a name of 1 to 64"),
        ([{"name": "a", "action": "shred"}], "rules[0].action: 'archive'"),
        (
            [{"name": "a", "action": "archive"}, {"name": "a", "action": "archive"}],
            "rules[1].name: 'a' names an earlier rule too",
        ),
        ([{"name": "a", "action": "archive", "kinds": ["tokenizer"]}], "rules[0].kinds: 'tokenizer' is not one of"),
        ([{"name": "a", "action": "archive", "kinds": "model"}], "rules[0].kinds: a list of names among"),
        ([{"name": "a", "action": "archive", "kinds": ["model", "model"]}], "rules[0].kinds: names each value once"),
        ([{"name": "a", "action": "archive", "run_statuses": []}], "rules[0].run_statuses: an empty list matches"),
        ([{"name": "a", "action": "archive", "run_statuses": ["lost"]}], "rules[0].run_statuses: 'lost' is not"),
        ([{"name": "a", "action": "archive", "older_than_days": -1}], "rules[0].older_than_days: a whole number"),
        ([{"name": "a", "action": "archive", "older_than_days": 1.5}], "rules[0].older_than_days: a whole number"),
        ([{"name": "a", "action": "archive", "older_than_days": True}], "rules[0].older_than_days: a whole number"),
        ([{"name": "a", "action": "archive", "keep_last_versions": 0}], "rules[0].keep_last_versions: a whole"),
        ([{"name": "a", "action": "archive", "keep_last_runs": "3"}], "rules[0].keep_last_runs: a whole number"),
        ([{"name": "a", "action": "archive", "stages": ["production"]}], "rules[0].stages: 'production' versions"),
        ([{"name": "a", "action": "archive", "stages": ["none", "staging"]}], "rules[0].stages: 'staging' versions"),
        ([{"name": "a", "action": "archive", "stages": ["retired"]}], "rules[0].stages: 'retired' is not one of"),
        ([{"name": "a", "action": "archive", "stages": None}], "rules[0].stages: leave a criterion out"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_rule_and_field(rules, expected):
    assert fault(rules).startswith(expected)


def test_too_many_rules_are_refused():
    assert "at most 50 rules" in fault([{"name": f"r{i}", "action": "archive"} for i in range(51)])


@pytest.mark.parametrize(
    "rule",
    [
        {"name": "all", "action": "delete"},
        {"name": "all", "action": "delete", "older_than_days": 0, "kinds": ["checkpoint"], "stages": ["none"]},
        {"name": "all", "action": "delete", "run_statuses": ["running", "completed", "failed", "cancelled", "none"]},
    ],
)
def test_a_delete_rule_that_spares_nothing_is_refused(rule):
    assert "a delete rule must say what it spares" in fault([{"name": "ok", "action": "archive"}, rule])


@pytest.mark.parametrize(
    "narrowing",
    [{"older_than_days": 1}, {"keep_last_versions": 1}, {"keep_last_runs": 1}, {"run_statuses": ["failed"]}],
)
def test_a_delete_rule_that_spares_something_is_accepted(narrowing):
    [rule] = rules_clean([{"name": "d", "action": "delete", **narrowing}])
    assert rule.action == "delete"


def test_an_archive_rule_may_select_every_version():
    assert rules_clean([{"name": "cold", "action": "archive"}])[0].matches(candidate())


def test_each_criterion_holds_or_not():
    rule = Rule(name="r", action="archive", kinds=frozenset({"checkpoint"}))
    assert rule.matches(candidate())
    assert not rule.matches(candidate(kind="dataset"))
    rule = Rule(name="r", action="archive", run_statuses=frozenset({"none"}))
    assert rule.matches(candidate(run_status=None, run_rank=None))
    assert not rule.matches(candidate())
    rule = Rule(name="r", action="archive", older_than_days=30)
    assert rule.matches(candidate(age_days=30.0))
    assert not rule.matches(candidate(age_days=29.9))
    rule = Rule(name="r", action="archive", keep_last_versions=3)
    assert rule.matches(candidate(version_rank=4))
    assert not rule.matches(candidate(version_rank=3))
    rule = Rule(name="r", action="archive", keep_last_runs=2)
    assert rule.matches(candidate(run_rank=3))
    assert not rule.matches(candidate(run_rank=2))


def test_keep_last_runs_does_not_spare_versions_made_by_no_run():
    rule = Rule(name="r", action="archive", keep_last_runs=2)
    assert rule.matches(candidate(run_status=None, run_rank=None))


def test_stage_none_means_not_registered_or_registered_without_a_stage():
    rule = Rule(name="r", action="archive", stages=frozenset({"none"}))
    assert rule.matches(candidate(stages=frozenset()))
    assert rule.matches(candidate(stages=frozenset({"none"})))
    assert not rule.matches(candidate(stages=frozenset({"archived"})))
    assert not rule.matches(candidate(stages=frozenset({"production"})))
    archived = Rule(name="r", action="archive", stages=frozenset({"archived"}))
    assert archived.matches(candidate(stages=frozenset({"archived", "none"})))
    assert not archived.matches(candidate(stages=frozenset()))


def test_the_first_matching_rule_selects():
    rules = rules_clean(
        [
            {"name": "keep-models-cold", "action": "archive", "kinds": ["model"]},
            {"name": "drop-old", "action": "delete", "older_than_days": 10},
        ]
    )
    assert rule_selecting(rules, candidate(kind="model")).name == "keep-models-cold"
    assert rule_selecting(rules, candidate()).name == "drop-old"
    assert rule_selecting(rules, candidate(age_days=1.0)) is None
