"""The model registry in the admin, for maintainers: models added and described, and a project's promotion policies
saved version after version, through the registry services; model versions, promotion requests and the stage history
a record, read-only.

Reviewers approve and reject requests in the portal (and over the API), which owns decisions; each request's page
here links to its page there. What stays here is break glass: a request withdrawn or re-checked, and a model's
production rolled back, by admin actions that call the promotion services as the logged-in user, each refusal
reported in the service's words.

One module per family, each registering its admins when imported (Django's autodiscover imports this package):
registered_models (models and their versions), policies, promotions (requests and the stage history), and actions
(how the actions of the model and request admins run their service on each selected row).
"""

from governance.registry.admin.policies import PromotionPolicyAdmin
from governance.registry.admin.promotions import PromotionRequestAdmin, StageTransitionAdmin
from governance.registry.admin.registered_models import ModelVersionAdmin, RegisteredModelAdmin

__all__ = [
    "ModelVersionAdmin",
    "PromotionPolicyAdmin",
    "PromotionRequestAdmin",
    "RegisteredModelAdmin",
    "StageTransitionAdmin",
]
