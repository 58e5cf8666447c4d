"""CPU models by architecture: the hardware a CPU preset's architecture builds.

A host's pCPUs and the bare-metal runner build their hardware here, so they import no
architecture's CPU themselves; an architecture names its model in ``vpmu.arch.registry``.
Every model takes the preset, the event kernel, the interrupt delivery callback and the
instruction latencies of the preset's cost table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vpmu.arch.lazy import resolve
from vpmu.arch.presets import CpuPreset
from vpmu.arch.registry import arch_entry
from vpmu.hw.core import CpuCore, DeliverFn
from vpmu.sim import Environment


def make_cpu(preset: CpuPreset, env: Environment, deliver: DeliverFn,
             instruction_cycles: Mapping[str, int]) -> CpuCore:
    """The CPU model of ``preset``'s architecture."""
    cls: Callable[..., CpuCore] = resolve(arch_entry(preset.caps.arch).cpu_model)
    return cls(preset, env, deliver=deliver, instruction_cycles=instruction_cycles)
