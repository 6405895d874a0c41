"""Lifecycle in the admin: each project's retention rules, version after version (a maintainer adds the next one),
its legal holds, placed and released by auditors and maintainers through the lifecycle services, and its retention
plans with their items, applied by maintainers through an action; all a record, never edited or deleted.

One module per family, each registering its admins when imported (Django's autodiscover imports this package).
"""

from governance.lifecycle.admin.holds import LegalHoldAdmin
from governance.lifecycle.admin.plans import RetentionPlanAdmin, RetentionPlanItemAdmin
from governance.lifecycle.admin.policies import RetentionPolicyAdmin

__all__ = ["LegalHoldAdmin", "RetentionPlanAdmin", "RetentionPlanItemAdmin", "RetentionPolicyAdmin"]
