from rest_framework.routers import SimpleRouter

from governance.lifecycle.api import holds, plans, policies

# A SimpleRouter: the API's root view is artifacts' DefaultRouter's; a second one would shadow it.
router = SimpleRouter(trailing_slash=True)
router.register("retention-policies", policies.RetentionPolicyViewSet, basename="retentionpolicy")
router.register("legal-holds", holds.LegalHoldViewSet, basename="legalhold")
router.register("retention-plans", plans.RetentionPlanViewSet, basename="retentionplan")

urlpatterns = router.urls
