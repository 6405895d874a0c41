"""The portal's governance pages: one module per area, each with its own `urlpatterns` (gathered in
governance/portal/urls.py). Views are thin: reads come from selectors and `visible_to(user)`, writes from the
services the API and the admin call, so the portal never re-implements a rule."""
