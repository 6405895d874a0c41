from core.models.audit import AuditEntry, AuditLogHead, AuditTreeNode, SignedTreeHead
from core.models.base import WriteOnceModel
from core.models.events import Event

__all__ = ["AuditEntry", "AuditLogHead", "AuditTreeNode", "Event", "SignedTreeHead", "WriteOnceModel"]
