"""Fixtures of the registry tests: a registered model and its versions, the promotions tests' starting points."""

import pytest

from governance.registry.models import ModelVersion
from tests.governance.factories import RegisteredModelFactory
from tests.governance.registry.promotions import promoted, version_of


@pytest.fixture
def model():
    """A registered model with a card, in a project with the default policies."""
    return RegisteredModelFactory()


@pytest.fixture
def version(model) -> ModelVersion:
    return version_of(model)


@pytest.fixture
def replaced(model):
    """v1 served in production and was replaced by v2."""
    first, second = version_of(model), version_of(model)
    promoted(first)
    promoted(second)
    return first, second
