"""Perf events carry the core PMU they belong to (Linux's ``struct pmu``): its name, perf
type id and CPUs, and an event counts only on its PMU's CPUs."""

from __future__ import annotations

import dataclasses

from vpmu.host.machine import Host
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.event import PmuIdentity


def test_a_homogeneous_host_registers_one_core_pmu() -> None:
    """An x86 host of 4 CPUs in two scheduling clusters still has one core PMU, ``cpu``,
    of type PERF_TYPE_RAW over every CPU; CPU and task events belong to it."""
    host = Host("intel-icx", cpus=4, clusters=[[0, 1], [2, 3]])
    perf = PerfSubsystem(host)
    assert perf.pmus == (PmuIdentity("cpu", 4, frozenset({0, 1, 2, 3})),)
    ev = perf.open(PerfEventAttr(type=4, config=0xC4), cpu=2)
    assert ev.pmu is perf.pmus[0]


def test_an_event_counts_only_on_its_pmus_cpus() -> None:
    """applies_to: an event whose PMU covers CPU 0 only (a hybrid PMU) is not scheduled on
    CPU 1, though its binding (any CPU) would allow it."""
    host = Host("intel-icx", cpus=2)
    perf = PerfSubsystem(host)
    ev = perf.open(PerfEventAttr(type=4, config=0xC4), cpu=0)
    narrow = dataclasses.replace(ev, cpu=-1, pmu=PmuIdentity("cpu_core", 4, frozenset({0})))
    assert narrow.applies_to(host.cpus[0]) and not narrow.applies_to(host.cpus[1])
