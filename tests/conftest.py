"""Shared fixtures: the model zoo (tests/support/zoo.py), exported once per pytest session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def one_torch_thread():
    """torch on one intra-op thread for the test (restored after): training-scale tests
    are faster and bit-stable that way on a shared 2-core machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory that holds every zoo export of this session."""
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def zoo_build(zoo_dir: Path) -> Callable[..., Any]:
    """``zoo_build(builder, kwargs)`` -> ZooModel, built and exported once per session."""
    cache: dict[str, Any] = {}

    def build(builder: Callable[..., Any], kwargs: dict[str, Any] | None = None) -> Any:
        from tests.support.zoo import model_id

        kwargs = dict(kwargs or {})
        key = model_id(builder, kwargs)
        if key not in cache:
            cache[key] = builder(zoo_dir, **kwargs)
        return cache[key]

    return build
