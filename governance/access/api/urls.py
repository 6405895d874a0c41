from django.urls import path

from governance.access.api import views

urlpatterns = [
    path("me/", views.WhoAmIView.as_view(), name="me"),
    path("tokens/", views.ApiTokenListView.as_view(), name="apitoken-list"),
    path("tokens/<int:pk>/", views.ApiTokenDetailView.as_view(), name="apitoken-detail"),
    path("tokens/<int:pk>/revoke/", views.ApiTokenRevokeView.as_view(), name="apitoken-revoke"),
    path("service-accounts/", views.ServiceAccountListView.as_view(), name="serviceaccount-list"),
    path("service-accounts/<int:pk>/", views.ServiceAccountDetailView.as_view(), name="serviceaccount-detail"),
    path(
        "service-accounts/<int:pk>/deactivate/",
        views.ServiceAccountDeactivateView.as_view(),
        name="serviceaccount-deactivate",
    ),
]
