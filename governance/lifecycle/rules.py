"""Retention rules: their shape, checked, and what each criterion means. Pure: no query, no write.

A project's retention policy holds a list of rules (stored as JSON on RetentionPolicy.rules). The planner reads it
through `rules_clean`, which answers `Rule`s or raises InvalidInput naming the rule and the field at fault
("rules[2].older_than_days: ..."), so the API, the admin and the planner judge one text the same way.

How a version is selected:
- Rules are tried in order; the first rule whose every criterion holds selects the version, with that rule's
  action (archive or delete), and later rules never see it. A version no rule selects is kept.
- A criterion left out holds for every version. Criteria:
  - `kinds`: the artifact's kind (Artifact.Kind), or "dataset" for dataset versions. Absent or [] = every kind.
  - `run_statuses`: the status of the run that produced the version; "none" matches versions produced by no run.
    Absent = any run or none.
  - `older_than_days`: the version was published at least that many whole days (24 h) before the plan.
  - `keep_last_versions`: the N newest versions (by number) of each artifact or dataset, counting those not yet
    deleted, are never selected by this rule.
  - `keep_last_runs`: versions produced by the project's N newest runs (the last recorded: highest id) are never
    selected by this rule.
    Versions produced by no run are not kept by it: combine with `run_statuses` to spare them.
  - `stages`: "none" matches a version with no model version in any stage (never registered in the model
    registry, or registered without a stage); "archived" one with a model version in the archived stage. Absent =
    any stage. Production and staging versions are never archived or deleted (the planner keeps them, saying so),
    so naming those stages here is refused rather than ignored.
- Selection is not the last word: the planner keeps (action "keep" with a reason) a selected version that a legal
  hold, a production or staging stage, or another protection covers.

Safety: a delete rule must narrow what it deletes by age, by the newest versions or runs it keeps, or by run
status, so one rule cannot say "delete every version".
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from artifacts.models import Artifact, Run
from core.errors import InvalidInput

ARCHIVE = "archive"
DELETE = "delete"
ACTIONS = (ARCHIVE, DELETE)

#: What `kinds` may name: every artifact kind, and "dataset" for dataset versions.
DATASET_KIND = "dataset"
KINDS = (*Artifact.Kind.values, DATASET_KIND)

#: What `run_statuses` may name: every run status, and "none" for a version produced by no run.
NO_RUN = "none"
RUN_STATUSES = (*Run.Status.values, NO_RUN)

#: What `stages` may name. Production and staging are always protected (see the module's docstring).
NOT_REGISTERED = "none"
SELECTABLE_STAGES = (NOT_REGISTERED, "archived")
PROTECTED_STAGES = ("production", "staging")

FIELDS = (
    "name",
    "action",
    "kinds",
    "run_statuses",
    "older_than_days",
    "keep_last_versions",
    "keep_last_runs",
    "stages",
)
MAX_RULES = 50
#: RetentionPlanItem.rule keeps the selecting rule's name.
MAX_NAME_CHARS = 64
MAX_DAYS = 36_500
MAX_KEEP = 100_000


@dataclass(frozen=True)
class Rule:
    """One checked rule. Absent criteria are None (kinds: empty), meaning "any"."""

    name: str
    action: str
    kinds: frozenset[str] = frozenset()
    run_statuses: frozenset[str] | None = None
    older_than_days: int | None = None
    keep_last_versions: int | None = None
    keep_last_runs: int | None = None
    stages: frozenset[str] | None = None

    def matches(self, candidate: "Candidate") -> bool:
        """Whether every criterion of this rule holds for `candidate` (the reference meaning of each criterion; a
        set-based planner must agree with it)."""
        if self.kinds and candidate.kind not in self.kinds:
            return False
        if self.run_statuses is not None and (candidate.run_status or NO_RUN) not in self.run_statuses:
            return False
        if self.older_than_days is not None and candidate.age_days < self.older_than_days:
            return False
        if self.keep_last_versions is not None and candidate.version_rank <= self.keep_last_versions:
            return False
        if (
            self.keep_last_runs is not None
            and candidate.run_rank is not None
            and candidate.run_rank <= self.keep_last_runs
        ):
            return False
        if self.stages is not None:
            stages = candidate.stages - {NOT_REGISTERED}
            in_listed = bool(stages & self.stages) or (not stages and NOT_REGISTERED in self.stages)
            if not in_listed:
                return False
        return True

    def as_json(self) -> dict[str, Any]:
        """The rule in its stored shape: criteria left out stay out, sets become sorted lists."""
        stored: dict[str, Any] = {"name": self.name, "action": self.action}
        if self.kinds:
            stored["kinds"] = sorted(self.kinds)
        if self.run_statuses is not None:
            stored["run_statuses"] = sorted(self.run_statuses)
        for field in ("older_than_days", "keep_last_versions", "keep_last_runs"):
            if getattr(self, field) is not None:
                stored[field] = getattr(self, field)
        if self.stages is not None:
            stored["stages"] = sorted(self.stages)
        return stored


@dataclass(frozen=True)
class Candidate:
    """What the rules read of one version.

    `version_rank`: 1 for the newest not-deleted version of its artifact or dataset, 2 for the one before...
    `run_rank`: 1 if the version's run is the project's newest run (highest id), 2 the one before...; None for no
    run.
    `stages`: the stages of the model versions registered from it (empty if never registered).
    """

    kind: str
    run_status: str | None
    age_days: float
    version_rank: int
    run_rank: int | None = None
    stages: frozenset[str] = frozenset()


def rule_selecting(rules: Iterable[Rule], candidate: Candidate) -> Rule | None:
    """The first rule that selects `candidate`, or None (kept)."""
    return next((rule for rule in rules if rule.matches(candidate)), None)


def rules_clean(rules: Any) -> list[Rule]:
    """`rules` as sent (a JSON list), checked; InvalidInput naming the rule and the field at fault."""
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise InvalidInput("rules: a list of rules (objects), [] for none.", field="rules")
    if len(rules) > MAX_RULES:
        raise InvalidInput(f"rules: at most {MAX_RULES} rules.", field="rules")
    cleaned: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(rules):
        rule = _rule_clean(index, raw)
        if rule.name in seen:
            raise _fault(index, "name", f"'{rule.name}' names an earlier rule too; each rule has its own name.")
        seen.add(rule.name)
        cleaned.append(rule)
    return cleaned


def rules_stored(rules: Any) -> list[dict[str, Any]]:
    """`rules` checked and in their stored shape (what RetentionPolicy.rules holds)."""
    return [rule.as_json() for rule in rules_clean(rules)]


def _fault(index: int, field: str | None, message: str) -> InvalidInput:
    where = f"rules[{index}]" + (f".{field}" if field else "")
    return InvalidInput(f"{where}: {message}", field="rules")


def _rule_clean(index: int, raw: Any) -> Rule:
    if not isinstance(raw, dict):
        raise _fault(index, None, "each rule is an object with a name and an action.")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise _fault(index, unknown[0], f"not a rule field; a rule has {', '.join(FIELDS)}.")
    nulls = sorted(field for field, value in raw.items() if value is None)
    if nulls:
        raise _fault(index, nulls[0], "leave a criterion out to match any, rather than giving null.")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS or "\x00" in name:
        raise _fault(index, "name", f"a name of 1 to {MAX_NAME_CHARS} characters, not blank.")
    action = raw.get("action")
    if action not in ACTIONS:
        raise _fault(index, "action", "'archive' (move the bytes to a colder storage class) or 'delete'.")
    kinds = _choices(index, "kinds", raw.get("kinds"), KINDS, empty_means_any=True)
    run_statuses = _choices(index, "run_statuses", raw.get("run_statuses"), RUN_STATUSES)
    stages_raw = raw.get("stages")
    if isinstance(stages_raw, list):
        protected = [stage for stage in stages_raw if stage in PROTECTED_STAGES]
        if protected:
            raise _fault(
                index,
                "stages",
                f"'{protected[0]}' versions are always kept, whatever the rules say; a rule selects only "
                f"{' or '.join(repr(stage) for stage in SELECTABLE_STAGES)} versions.",
            )
    stages = _choices(index, "stages", stages_raw, SELECTABLE_STAGES)
    rule = Rule(
        name=name,
        action=action,
        kinds=kinds or frozenset(),
        run_statuses=run_statuses,
        older_than_days=_count(index, "older_than_days", raw.get("older_than_days"), 0, MAX_DAYS),
        keep_last_versions=_count(index, "keep_last_versions", raw.get("keep_last_versions"), 1, MAX_KEEP),
        keep_last_runs=_count(index, "keep_last_runs", raw.get("keep_last_runs"), 1, MAX_KEEP),
        stages=stages,
    )
    if rule.action == DELETE and not _narrows(rule):
        raise _fault(
            index,
            None,
            "a delete rule must say what it spares: set older_than_days (1 or more), keep_last_versions, "
            "keep_last_runs, or run_statuses (not all of them), so that one rule cannot delete every version.",
        )
    return rule


def _narrows(rule: Rule) -> bool:
    return bool(
        (rule.older_than_days or 0) >= 1
        or rule.keep_last_versions
        or rule.keep_last_runs
        or (rule.run_statuses is not None and rule.run_statuses != set(RUN_STATUSES))
    )


def _choices(
    index: int, field: str, value: Any, allowed: tuple[str, ...], *, empty_means_any: bool = False
) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fault(index, field, f"a list of names among {', '.join(allowed)}.")
    if not value:
        if empty_means_any:
            return None
        raise _fault(index, field, "an empty list matches nothing; leave the field out to match any.")
    unknown = [item for item in value if item not in allowed]
    if unknown:
        raise _fault(index, field, f"'{unknown[0][:100]}' is not one of {', '.join(allowed)}.")
    if len(set(value)) != len(value):
        raise _fault(index, field, "names each value once.")
    return frozenset(value)


def _count(index: int, field: str, value: Any, low: int, high: int) -> int | None:
    if value is None:
        return None
    # JSON true is a Python int; a count is never a boolean.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fault(index, field, f"a whole number from {low} to {high:,}.")
    return value
