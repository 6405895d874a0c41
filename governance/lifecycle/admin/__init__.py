"""Lifecycle in the admin: each project's retention rules, version after version (a maintainer adds the next one),
and its legal holds, placed and released by auditors and maintainers through the lifecycle services; both a record,
never edited or deleted.

One module per family, each registering its admins when imported (Django's autodiscover imports this package).
"""

from governance.lifecycle.admin.holds import LegalHoldAdmin
from governance.lifecycle.admin.policies import RetentionPolicyAdmin

__all__ = ["LegalHoldAdmin", "RetentionPolicyAdmin"]
