from django.urls import path

from governance.access.api import views

urlpatterns = [
    path("me/", views.WhoAmIView.as_view(), name="me"),
    path("tokens/", views.ApiTokenListView.as_view(), name="apitoken-list"),
    path("tokens/<int:pk>/", views.ApiTokenDetailView.as_view(), name="apitoken-detail"),
    path("tokens/<int:pk>/revoke/", views.ApiTokenRevokeView.as_view(), name="apitoken-revoke"),
]
