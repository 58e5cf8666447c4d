"""Fixtures of the kernel tests, as in SimPy: an environment and a log of (name, time) entries."""

from __future__ import annotations

import pytest

from vpmu.sim import Environment


@pytest.fixture
def env() -> Environment:
    """A fresh environment with the default seed and chooser."""
    return Environment()


@pytest.fixture
def log() -> list[tuple[object, ...]]:
    """What the scenario's processes did, as (name, time_ps, ...) tuples, in order."""
    return []
