from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from plans.models import Application
from runbooks.tests.factories import APPLICATION_SLUGS, BASE_DOC


@pytest.fixture
def applications(db: None) -> dict[str, Application]:
    return {
        slug: Application.objects.create(slug=slug, name=slug.replace("-", " ").title()) for slug in APPLICATION_SLUGS
    }


@pytest.fixture
def make_doc() -> Callable[..., dict[str, Any]]:
    """A fresh valid document, with top-level overrides."""

    def _make(**overrides: Any) -> dict[str, Any]:
        doc = copy.deepcopy(BASE_DOC)
        doc.update(overrides)
        return doc

    return _make
