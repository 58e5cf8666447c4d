"""Register names as reports print them, per architecture: what metrics and reports read of
an architecture's registers (a name, a kind, the registers of the per-PMI ratios), so that
they import no architecture's module themselves.

Each architecture has a ``names`` module (``vpmu.arch.x86.names``) with ``register_name``,
``register_kind``, ``is_counter_name`` and ``PER_PMI_REGISTERS``; ``names_for`` finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from vpmu.arch.lazy import resolve
from vpmu.arch.registry import arch_entry


@dataclass(frozen=True)
class RegisterNames:
    """One architecture's register names."""

    name: Callable[[int], str]
    """The register's name (an MSR's kernel name on x86)."""
    kind: Callable[[int], str | None]
    """"counter", "selector" or "global" for a PMU register, None for any other."""
    is_counter_name: Callable[[str], bool]
    """A name ``name`` gives a counter."""
    per_pmi: tuple[tuple[str, str, str], ...]
    """(ratio name, register name, "read"/"write") of the per-PMI access ratios."""


@cache
def names_for(arch: str = "x86") -> RegisterNames:
    """The register names of ``arch``."""
    module = resolve(arch_entry(arch).register_names)
    return RegisterNames(module.register_name, module.register_kind, module.is_counter_name,
                         module.PER_PMI_REGISTERS)
