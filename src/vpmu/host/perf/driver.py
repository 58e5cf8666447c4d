"""What perf's core asks of a PMU driver on one CPU (``struct cpu_hw_events`` and the
``struct pmu`` callbacks perf calls), whatever the architecture.

The x86 driver (``vpmu.host.perf.x86.driver.X86PerfDriver``) and the arm_pmuv3 driver
(``vpmu.host.perf.arm64.driver.ArmPerfDriver``) implement it. Drivers are found by the CPU's
architecture in ``vpmu.arch.registry`` and built with the pCPU (its hardware, and the host's
boot choices such as arm64's VHE).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from vpmu.arch.lazy import resolve
from vpmu.arch.registry import arch_entry

if TYPE_CHECKING:
    from vpmu.host.cpu import Pcpu
    from vpmu.host.perf.constraint import Constraint
    from vpmu.host.perf.event import PerfEvent
    from vpmu.host.perf.lbr import HostLbrOps


class PerfDriver(Protocol):
    """One CPU's PMU driver state and callbacks."""

    pmu_name: str
    """The name the core PMU registers under (x86 "cpu"; arm64 "armv8_cortex_a53"...)."""
    pmu_type: int | None
    """The perf type the core PMU registers with (x86: PERF_TYPE_RAW), or None for a
    dynamic one (arm_pmu registers with -1)."""
    pmi_vector: int | None
    """The vector of the PMU interrupt when it is not an NMI (arm64: its PPI), or None (the
    host PMI is an NMI; another IRQ vector is a mediated guest's)."""
    sysfs_events: Mapping[str, int]
    """The PMU's named events (/sys/bus/event_source/devices/<pmu>/events): name -> config."""
    events: dict[int, PerfEvent]
    """Active events by global counter index (cpuc->events)."""
    guest: bool
    """The CPU runs guest code (the driver's host/guest view of its counters)."""
    suspended: bool
    """A mediated guest context owns the PMU: the global control is not perf's to write."""
    lbr: HostLbrOps | None
    """The CPU's branch record stack as perf drives it, if the PMU has one."""

    def add(self, event: PerfEvent, idx: int) -> None:
        """pmu->add: program counter ``idx`` for ``event`` and start it."""
        ...

    def remove(self, event: PerfEvent) -> None:
        """pmu->del: stop the event's counter and release it."""
        ...

    def arm(self, event: PerfEvent) -> None:
        """Write the counter so that it overflows after the event's period (its left part)."""
        ...

    def read(self, event: PerfEvent) -> int:
        """pmu->read: fold the counter's progress into the event; the delta."""
        ...

    def load_global(self) -> None:
        """Write the global enable (pmu->enable), unless a guest owns the PMU."""
        ...

    def set_guest(self, guest: bool) -> None:
        """VM-entry / VM-exit as the driver sees it (exclude_guest / exclude_host)."""
        ...

    def counts_in_host(self, counters: int) -> int:
        """The subset of ``counters`` that count host code now."""
        ...

    def status(self) -> int:
        """The overflow status: one bit per global counter index."""
        ...

    def ack(self, bits: int) -> None:
        """Clear overflow status bits."""
        ...

    def clear_dirty(self) -> int:
        """perf_clear_dirty_counters: zero every dirty counter no event holds; how many."""
        ...

    def cpu_init(self) -> None:
        """The driver takes the CPU's PMU interrupt (x86: perf_events_lapic_init, the LVTPC
        set to NMI, unmasked)."""
        ...

    def pmi_done(self) -> None:
        """End of the PMI handler (x86: unmask the LVTPC, which the PMI masked)."""
        ...

    def event_constraint(self, config: int) -> Constraint:
        """The counters an event of ``config`` may use (x86: x86_get_event_constraints)."""
        ...

    def schedule(self, constraints: Sequence[Constraint],
                 previous: Sequence[int | None]) -> list[int] | None:
        """A distinct counter for every event, keeping ``previous`` where they still fit,
        or None: a set is scheduled whole or not at all (x86: x86_schedule_events)."""
        ...

    def hw_config(self, hw_id: int) -> int | None:
        """The raw config of a generic hardware event (``PERF_COUNT_HW_*``), or None where
        the PMU has no such event (perf: -ENOENT)."""
        ...

    def raw_config(self, config: int, config1: int = 0) -> int:
        """The part of a raw event config (and of ``attr.config1``) that names the event
        (x86: everything but USR/OS/INT/EN, which perf sets itself)."""
        ...


def driver_for(cpu: Pcpu) -> PerfDriver:
    """The perf driver of ``cpu``'s PMU."""
    driver: PerfDriver = resolve(arch_entry(cpu.preset.caps.arch).perf_driver)(cpu)
    return driver
