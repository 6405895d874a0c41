"""The supply-chain area's API routes, under /api/v1/ (config/urls.py)."""

urlpatterns: list = []
