"""Writes of the lifecycle area: plans (plans.py)."""
