"""What each piece of host-kernel work costs on one CPU preset: the ``host`` part of a preset's
cost table.

Every value is in core cycles of the preset (``core_mhz``), except ``ipi_latency_ns``; the host
converts with the preset's clock in one place. Costs are charged as host-kernel execution on
the CPU where the work happens (docs/costs.md, "How costs are charged"). The numbers of each
preset, with their sources, are built under ``vpmu.costs.<arch>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from vpmu.costs.values import number_name, numbers

PERF_CALLS = ("create", "pause", "period", "enable", "disable", "read_value", "release")
"""The kernel-counter API calls KVM makes (perf_event_create_kernel_counter, perf_event_pause,
perf_event_period, perf_event_enable, perf_event_disable, perf_event_read_value,
perf_event_release_kernel), in lifecycle order."""

@dataclass(frozen=True, slots=True, repr=False)
class CostTable:
    """The cost of each piece of host work on one CPU preset (core cycles unless named ``_ns``).

    Costs compose: an interrupt is ``irq_entry_exit_cycles`` plus its handler; a perf call is
    ``perf_ctx_lock_cycles`` plus its work plus, when it reschedules events, the per-event
    sched-in/out costs.
    """

    instruction_cycles: Mapping[str, int]
    """Bare-metal latency of each PMU instruction the CPU model executes, by the
    architecture's names (the CPU model lists the ones it needs: ``vpmu.hw.x86.cpu`` RDMSR,
    WRMSR, RDPMC, CPUID, MOV to CR4 and the LBR MSR accesses; ``vpmu.hw.arm64.cpu`` MRS and
    MSR of a PMU system register)."""
    context_switch_cycles: int
    """A full task switch: schedule(), switch_mm, switch_to; excludes perf's own work."""
    tick_cycles: int
    """The scheduler tick's handler (update_process_times, scheduler_tick, RCU); excludes
    the interrupt entry/exit and perf's tick work (rotation, frequency adjustment)."""
    irq_entry_exit_cycles: int
    """Entering and leaving an interrupt handler: vectoring, entry code, EOI, IRET."""
    nmi_entry_exit_cycles: int
    """Entering and leaving an NMI handler (a host PMI is an NMI)."""
    ipi_send_cycles: int
    """Sending a function-call IPI, on the sender: queue the call, write the ICR."""
    ipi_handler_cycles: int
    """The function-call IPI handler's body, excluding the function it runs and the
    interrupt entry/exit."""
    ipi_latency_ns: int
    """From the sender's ICR write until the interrupt is pending at the target, in ns."""
    perf_ctx_lock_cycles: int
    """The perf_event_ctx lock+unlock pair and call entry that every kernel-counter API call
    pays, whatever it then does (the cost the is_paused patch avoids)."""
    perf_call_work_cycles: Mapping[str, int]
    """The work of each kernel-counter API call (keys ``PERF_CALLS``) besides the lock and
    besides the per-event sched-in/out it triggers (enable and create reschedule the context;
    pause, disable and release schedule the event out). ``create`` includes perf_event_alloc
    and installing the event. A call on an event that is off (paused or disabled) does no
    work and pays the lock only, except ``create`` and ``release``."""
    perf_sched_in_event_cycles: int
    """Scheduling one event in (context switch, rotation, resched), including its MSR writes."""
    perf_sched_out_event_cycles: int
    """Scheduling one event out, including its MSR write and its final counter read."""
    perf_rotate_cycles: int
    """The fixed part of perf_rotate_context (multiplexing); events rotated are extra."""
    perf_overflow_handler_cycles: int
    """Perf's PMI handler for one overflowed event: global MSRs, read, re-arm, overflow
    bookkeeping; excludes the NMI entry/exit, the sample output and the overflow consumer
    (KVM's kvm_perf_overflow is charged by the hypervisor)."""
    perf_sample_output_cycles: int
    """Writing one sample (no callchain) to the event's ring buffer."""
    perf_clear_dirty_counter_cycles: int
    """Zeroing one counter in perf_clear_dirty_counters (switch to an RDPMC task)."""

    def __post_init__(self) -> None:
        for name, value in self._values():
            if type(value) is not int or value <= 0:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        calls = self.perf_call_work_cycles
        if set(calls) != set(PERF_CALLS):
            raise ValueError(f"perf_call_work_cycles keys must be {list(PERF_CALLS)}, "
                             f"not {list(calls)!r}")
        if not self.instruction_cycles:
            raise ValueError("instruction_cycles must price at least one instruction")
        # Read-only (and the calls in PERF_CALLS order), so a shared table cannot be edited.
        object.__setattr__(self, "perf_call_work_cycles",
                           MappingProxyType({k: calls[k] for k in PERF_CALLS}))
        object.__setattr__(self, "instruction_cycles",
                           MappingProxyType(dict(self.instruction_cycles)))

    def _values(self) -> Iterator[tuple[str, object]]:
        """Every number with its name (``perf_call_work_cycles[create]`` and so on)."""
        return ((number_name(f, k), v) for f, k, v in numbers(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={_plain(getattr(self, f.name))!r}" for f in fields(self))
        return f"CostTable({args})"

    def __hash__(self) -> int:
        return hash(tuple(self._values()))


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, Mapping) else value
