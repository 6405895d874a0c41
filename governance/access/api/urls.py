from django.urls import path

from governance.access.api import views

urlpatterns = [
    path("me/", views.WhoAmIView.as_view(), name="me"),
]
