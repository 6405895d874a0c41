"""The audit log: an append-only sequence of entries that form a Merkle tree, and the signed heads of that tree.

Entries are written by `core.audit.recorder.audit_record` alone, in the transaction of the act they record.
The database refuses to change or delete them; what the database cannot stop (its owner dropping the triggers)
the Merkle tree and the signed tree heads kept outside the database catch.
"""

from django.db import models


class AuditEntry(models.Model):
    """One recorded act: who did what to which object, when and from where. Its canonical JSON form (see
    `core.audit.recorder.entry_document`) is a leaf of the log's Merkle tree."""

    class ActorKind(models.TextChoices):
        USER = "user", "User"
        SYSTEM = "system", "System (worker, command)"
        ANONYMOUS = "anonymous", "Anonymous"

    seq = models.BigIntegerField(
        primary_key=True, help_text="Position in the log from 0, without gaps: the leaf index."
    )
    recorded_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    # Plain ids rather than foreign keys: the log is never rewritten by a cascade or blocked by one, and names the
    # actor and object as they were (the labels) even if those rows change later.
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=200, help_text="Username, or the task or command acting as system.")
    token_id = models.BigIntegerField(null=True, blank=True, help_text="The API token the request carried.")
    action = models.CharField(max_length=64, help_text="What was done, e.g. 'artifact_version.published'.")
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=100)
    object_label = models.CharField(max_length=300)
    project_id = models.BigIntegerField(null=True, blank=True)
    project_label = models.CharField(max_length=100, blank=True)
    artifact_id = models.BigIntegerField(
        null=True, blank=True, help_text="The artifact the object belongs to, so one filter finds all about it."
    )
    request_id = models.CharField(max_length=64, blank=True)
    source_ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    changes = models.TextField(help_text="What changed, as canonical JSON (before → after for changes).")
    leaf_hash = models.BinaryField(max_length=32, help_text="SHA-256(0x00 ‖ canonical entry).")

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "recorded_at"], name="audit_object_time"),
            models.Index(fields=["artifact_id", "recorded_at"], name="audit_artifact_time"),
            models.Index(fields=["project_id", "recorded_at"], name="audit_project_time"),
            # The actor filter lists an actor's entries newest first (ORDER BY seq DESC): an index per way of
            # naming the actor, each ending in seq, gives the page from a short backward read of the index, and
            # an actor with no entry from one lookup, whatever the log's size (benchmarks/README.md).
            models.Index(fields=["actor_user_id", "seq"], name="audit_actor_seq"),
            models.Index(fields=["actor_label", "seq"], name="audit_actor_label_seq"),
            models.Index(fields=["action", "recorded_at"], name="audit_action_time"),
            models.Index(fields=["recorded_at"], name="audit_time"),
        ]
        constraints = [models.CheckConstraint(condition=models.Q(seq__gte=0), name="audit_seq_from_zero")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_label} by {self.actor_label}"


class AuditLogHead(models.Model):
    """The log's size, in a single row. Every append locks and advances it in the appending transaction, so
    appends queue in commit order: no two get one number, and a rolled-back append frees its number."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_head_single_row")]

    def __str__(self) -> str:
        return f"{self.size} entries"


class AuditTreeNode(models.Model):
    """The hash of the perfect subtree of 2**level leaves that starts at leaf index * 2**level. Kept so a proof
    takes a few lookups instead of a walk over every leaf; it never changes once its leaves exist, and can be
    rebuilt from the entries."""

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="audit_node_unique")]

    def __str__(self) -> str:
        return f"level {self.level} #{self.index}"


class SignedTreeHead(models.Model):
    """The log's size and Merkle root at a moment, signed with the server's Ed25519 key. A copy is written to the
    blob storage (under Object Lock where the bucket has it), so it outlives a rollback of this database."""

    tree_size = models.BigIntegerField()
    root_hash = models.CharField(max_length=64, help_text="Merkle tree hash of the first tree_size entries, hex.")
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=16, help_text="First 16 hex digits of SHA-256 of the public key.")
    public_key = models.CharField(max_length=64, help_text="The Ed25519 public key, 32 bytes in base64.")
    signature = models.CharField(max_length=128, help_text="Ed25519 signature, base64.")
    storage_name = models.CharField(max_length=300, help_text="Where the copy lives in the blob storage.")
    locked_until = models.DateTimeField(
        null=True, blank=True, help_text="S3 Object Lock retention of the copy; empty where the bucket has none."
    )

    class Meta:
        ordering = ["-tree_size", "-signed_at"]
        indexes = [models.Index(fields=["tree_size", "signed_at"], name="audit_sth_size")]
        constraints = [models.CheckConstraint(condition=models.Q(tree_size__gte=0), name="audit_sth_size_positive")]

    def __str__(self) -> str:
        return f"tree head {self.tree_size} at {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"
