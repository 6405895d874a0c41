"""The audit log as the API shows it: each entry in the very form the log hashes and exports (see
`core.audit.recorder.entry_document`), so what an auditor reads here is what the proofs cover."""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.audit.actions import AuditAction
from core.audit.recorder import format_time, tree_head_document
from core.models import AuditEntry, SignedTreeHead

HEX_HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


class AuditActorSerializer(serializers.Serializer):
    # Plain text in the schema: a choice field named "kind" would collide with the artifact kinds' enum.
    kind = serializers.CharField(source="actor_kind", help_text="user, system or anonymous.")
    user_id = serializers.IntegerField(source="actor_user_id", allow_null=True)
    label = serializers.CharField(source="actor_label")
    token_id = serializers.IntegerField(allow_null=True, help_text="The API token the request carried.")


class AuditObjectSerializer(serializers.Serializer):
    type = serializers.CharField(source="object_type")
    id = serializers.CharField(source="object_id")
    label = serializers.CharField(source="object_label")


class AuditProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="project_id", allow_null=True)
    label = serializers.CharField(source="project_label", help_text="The project's slug.")


class AuditRequestSerializer(serializers.Serializer):
    id = serializers.CharField(source="request_id")
    ip = serializers.CharField(source="source_ip")
    user_agent = serializers.CharField()


class AuditEntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="Position in the log from 0: the entry's leaf index.")
    time = serializers.SerializerMethodField()
    actor = AuditActorSerializer(source="*")
    action = serializers.ChoiceField(
        choices=AuditAction.choices,
        help_text="What was done, from the audit log's own vocabulary (not the webhook event types).",
    )
    object = AuditObjectSerializer(source="*")
    project = AuditProjectSerializer(source="*")
    artifact_id = serializers.IntegerField(allow_null=True)
    request = AuditRequestSerializer(source="*")
    changes = serializers.SerializerMethodField()
    leaf_hash = serializers.SerializerMethodField()

    @extend_schema_field({"type": "string", "format": "date-time", "example": "2026-01-31T12:00:00.000000Z"})
    def get_time(self, entry: AuditEntry) -> str:
        return format_time(entry.recorded_at)

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_changes(self, entry: AuditEntry) -> dict:
        return json.loads(entry.changes)

    @extend_schema_field(HEX_HASH)
    def get_leaf_hash(self, entry: AuditEntry) -> str:
        return bytes(entry.leaf_hash).hex()


class TreeHeadSerializer(serializers.Serializer):
    """A signed tree head exactly as it was signed (and as the export and the verifier's --tree-head read it)."""

    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField()
    signed_at = serializers.CharField(help_text="UTC, with microseconds: part of the signed message.")
    key_id = serializers.CharField()
    public_key = serializers.CharField(help_text="Ed25519 public key, base64.")
    signature = serializers.CharField(help_text="Ed25519 signature, base64.")

    def to_representation(self, head: SignedTreeHead) -> dict:
        return tree_head_document(head)


class InclusionProofSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    root_hash = serializers.CharField(help_text="The root of the tree of tree_size entries.")
    audit_path = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 inclusion proof, hex.")
    tree_head = TreeHeadSerializer(allow_null=True, help_text="The head signed at tree_size, if one was.")
    entry = serializers.DictField(help_text="The entry as hashed: its canonical JSON is the leaf.")


class ConsistencyProofSerializer(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    first_root = serializers.CharField()
    second_root = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="RFC 9162 consistency proof, hex.")
    first_head = TreeHeadSerializer(allow_null=True)
    second_head = TreeHeadSerializer(allow_null=True)


class PublicKeySerializer(serializers.Serializer):
    key_id = serializers.CharField()
    public_key = serializers.CharField(help_text="Ed25519 public key, base64.")
    pem = serializers.CharField()
    algorithm = serializers.CharField()


class InclusionQuerySerializer(serializers.Serializer):
    tree_size = serializers.IntegerField(
        required=False, min_value=1, max_value=2**62, help_text="Default: the latest signed head holding the entry."
    )


class ConsistencyQuerySerializer(serializers.Serializer):
    first = serializers.IntegerField(min_value=0, max_value=2**62)
    second = serializers.IntegerField(min_value=0, max_value=2**62)
