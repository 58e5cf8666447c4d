"""Registry targets named ``module:attribute`` and imported when first used.

The per-architecture registries (CPU models, perf drivers, register names, trap layers,
designs) name their targets this way, so that a neutral module can list every architecture
without importing any, and an architecture is added by a new entry, not an import.
"""

from __future__ import annotations

import importlib
from typing import Any


def resolve(target: str) -> Any:
    """The attribute ``target`` (``module:attribute``, or ``module`` alone) names."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module
