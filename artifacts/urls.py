"""The portal's artifact pages, under the `portal` namespace (see config/urls.py)."""

from artifacts import views

urlpatterns = [*views.urlpatterns]
