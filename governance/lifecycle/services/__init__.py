"""Writes of the lifecycle area: retention policies (policies.py), legal holds (holds.py) and plans (plans.py)."""
