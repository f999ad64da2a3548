"""Shared fixtures: the model zoo (tests/zoo.py), exported once per pytest session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory that holds every zoo export of this session."""
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def zoo_build(zoo_dir: Path) -> Callable[..., Any]:
    """``zoo_build(builder, kwargs)`` -> ZooModel, built and exported once per session."""
    cache: dict[str, Any] = {}

    def build(builder: Callable[..., Any], kwargs: dict[str, Any] | None = None) -> Any:
        from tests.zoo import model_id

        kwargs = dict(kwargs or {})
        key = model_id(builder, kwargs)
        if key not in cache:
            cache[key] = builder(zoo_dir, **kwargs)
        return cache[key]

    return build
