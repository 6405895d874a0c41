from django.urls import path
from rest_framework.routers import SimpleRouter

from governance.registry.api import views as registry

# A SimpleRouter: the API's root view is artifacts' DefaultRouter's; a second one would shadow it.
router = SimpleRouter(trailing_slash=True)
router.register("models", registry.RegisteredModelViewSet, basename="registeredmodel")
router.register("model-versions", registry.ModelVersionViewSet, basename="modelversion")
router.register("promotions", registry.PromotionRequestViewSet, basename="promotionrequest")
router.register("promotion-policies", registry.PromotionPolicyViewSet, basename="promotionpolicy")

urlpatterns = [
    path("resolve/", registry.ReferenceResolveView.as_view(), name="resolve"),
    *router.urls,
]
