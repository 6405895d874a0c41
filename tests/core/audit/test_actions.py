"""The audit log's vocabulary is one declared list: the code records nothing else, the list holds nothing the code
does not record, and it is published, in the schema and the README, apart from the webhook event types."""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings

from core.audit.actions import ACTION_PREFIXES, ANNOUNCED_AS, RECORDED_AS, AuditAction, UndeclaredAuditAction
from core.audit.recorder import AuditObject, audit_record
from core.events import SUBSCRIBABLE_TYPES, EventType
from core.models import AuditEntry
from governance.registry.models import PromotionDecision, PromotionRequest
from governance.registry.services.promotions import CLOSED_AS, DECIDED_AS

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)
#: The functions an action is handed to on its way to the log: the recorder, a change set's `audit`, and the uploads'
#: helper that ends a session.
RECORDERS = {"audit_record", "audit", "_session_end"}
ACTION_LITERAL = re.compile(r"^[a-z_]+\.[a-z_]+$")


def _recorded_in_code() -> tuple[set[str], set[str], set[str]]:
    """What the calls to the recorders name as their action: the members of AuditAction (`AuditAction.RUN_CREATED`),
    the actions written out as text, and the static prefixes of those built by an f-string."""
    members, literals, built = set(), set(), set()
    for path in [*ROOT.glob("core/**/*.py"), *ROOT.glob("governance/**/*.py"), *ROOT.glob("artifacts/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in RECORDERS:
                continue
            for argument in node.args:
                for part in ast.walk(argument):
                    if isinstance(part, ast.Attribute) and getattr(part.value, "id", "") == "AuditAction":
                        members.add(part.attr)
                    elif isinstance(part, ast.JoinedStr) and isinstance(part.values[0], ast.Constant):
                        if re.match(r"^[a-z_]+\.", part.values[0].value):
                            built.add(part.values[0].value)
                    elif isinstance(part, ast.Constant) and ACTION_LITERAL.match(str(part.value)):
                        literals.add(part.value)
    return members, literals, built


def test_every_action_the_code_records_is_declared():
    members, literals, built = _recorded_in_code()

    assert members, "the scan found no recorder calls: have audit_record or ChangeSet.audit been renamed?"
    assert members - set(AuditAction.__members__) == set()
    assert literals - set(AuditAction.values) == set()
    assert built == set(), "an action built from text escapes this check: pick an AuditAction member instead"


def test_every_declared_action_is_recorded_by_the_code():
    """No stale names in the published list: each is named at a call site, or is one the promotions pick by the
    state a request closes in or by a reviewer's decision."""
    members, literals, _ = _recorded_in_code()
    named = {AuditAction[member] for member in members} | set(literals)
    picked = {*CLOSED_AS.values(), *DECIDED_AS.values()}

    assert set(AuditAction) == named | picked


def test_every_state_a_promotion_request_closes_in_and_every_decision_has_its_action():
    assert set(CLOSED_AS) == set(PromotionRequest.State) - {PromotionRequest.State.OPEN}
    assert set(DECIDED_AS) == set(PromotionDecision.Decision)


def test_an_undeclared_action_is_refused_before_anything_is_written():
    before = AuditEntry.objects.count()

    with pytest.raises(UndeclaredAuditAction, match="not declared: add it"):
        audit_record("promotion.approved", obj=AuditObject(type="thing", id="1", label="thing"))

    assert AuditEntry.objects.count() == before


def test_every_event_type_says_which_actions_record_its_act():
    assert set(RECORDED_AS) == set(EventType.values)
    assert {action for actions in RECORDED_AS.values() for action in actions} <= set(AuditAction.values)


def test_every_action_says_which_event_types_announce_its_act_as_the_event_types_say():
    assert set(ANNOUNCED_AS) == set(AuditAction.values)
    assert ANNOUNCED_AS["promotion_request.approved_by_reviewer"] == ["promotion.approved"]
    assert ANNOUNCED_AS["blob.downloaded"] == []
    announced = {(event, action) for action, events in ANNOUNCED_AS.items() for event in events}
    assert announced == {(event, action) for event, actions in RECORDED_AS.items() for action in actions}


# Published --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _enum_named(field: dict) -> str:
    """The enum component a property refers to, directly or through the allOf that carries its own keywords."""
    reference = field.get("$ref") or field["allOf"][0]["$ref"]
    return reference.rsplit("/", 1)[1]


def test_the_schema_declares_the_audit_actions_as_an_enum(schema):
    components = schema["components"]["schemas"]

    assert components["AuditActionEnum"]["enum"] == AuditAction.values
    assert _enum_named(components["AuditEntry"]["properties"]["action"]) == "AuditActionEnum"


def test_the_schema_declares_the_action_filter_as_actions_and_prefixes(schema):
    parameters = schema["paths"]["/api/v1/audit/entries/"]["get"]["parameters"]
    action = next(parameter for parameter in parameters if parameter["name"] == "action")

    assert sorted(action["schema"]["enum"]) == sorted([*AuditAction.values, *ACTION_PREFIXES])
    assert "not webhook event types" in action["description"]


def test_the_schema_declares_the_event_types_as_enums(schema):
    components = schema["components"]["schemas"]

    assert components["EventTypeEnum"]["enum"] == EventType.values
    assert components["SubscribableEventTypeEnum"]["enum"] == SUBSCRIBABLE_TYPES
    for name in ("WebhookEndpoint", "WebhookEndpointCreateRequest", "PatchedWebhookEndpointUpdateRequest"):
        assert _enum_named(components[name]["properties"]["event_types"]["items"]) == "SubscribableEventTypeEnum"
    assert _enum_named(components["WebhookDelivery"]["properties"]["event_type"]) == "EventTypeEnum"
    assert _enum_named(components["EventType"]["properties"]["type"]) == "EventTypeEnum"
    payload = components["WebhookDeliveryDetail"]["properties"]["payload"]
    assert payload["properties"]["type"]["enum"] == EventType.values


def _readme_table(heading: str) -> set[str]:
    """The names in the first column of the table whose header row starts with `heading` (each in backticks)."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index(heading) :]
    rows = table[: table.index("\n\n")].splitlines()[2:]
    return {name for row in rows for name in re.findall(r"`([a-z_.]+)`", row.split("|")[1])}


def test_the_readme_lists_every_audit_action_and_event_type():
    assert _readme_table("| Audit action |") == set(AuditAction.values)
    assert _readme_table("| Event |") == set(EventType.values)
