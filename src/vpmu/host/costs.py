"""The host cost table: what each piece of host-kernel work costs, per CPU preset.

Every value is in core cycles of the preset (``core_mhz``), except ``ipi_latency_ns``; the host
converts with the preset's clock in one place. Costs are charged as host-kernel execution on
the CPU where the work happens (docs/costs.md, "How costs are charged").

Every number has an entry in ``COST_SOURCES``: a reference under ``../shared/reference/`` with
the quoted figure, or ``"estimate: ..."`` with its reasoning. Numbers are shared across presets
where no per-part figure exists. The only per-part figures are the EMR and Turin WRMSR costs,
derived from the mediated-vPMU elision row; every value that contains MSR accesses is priced
with its preset's instruction costs, so those differ too.

Not here: KVM-level costs (VM-exit round trips, the VMCS MSR switch, LBR save/restore, mediated
load/put). They belong to the hypervisor's issues; docs/costs.md says where they will come from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType

from vpmu.arch.presets import PRESETS

PERF_CALLS = ("create", "pause", "period", "enable", "disable", "read_value", "release")
"""The kernel-counter API calls KVM makes (reference/kvm_x86_vpmu.md 1.3), in lifecycle order."""


@dataclass(frozen=True, slots=True, repr=False)
class CostTable:
    """The cost of each piece of host work on one CPU preset (core cycles unless named ``_ns``).

    Costs compose: an interrupt is ``irq_entry_exit_cycles`` plus its handler; a perf call is
    ``perf_ctx_lock_cycles`` plus its work plus, when it reschedules events, the per-event
    sched-in/out costs.
    """

    rdmsr_cycles: int
    """Bare-metal RDMSR of a PMU MSR."""
    wrmsr_cycles: int
    """Bare-metal WRMSR of a PMU MSR (or of the x2APIC LVTPC/ICR)."""
    rdpmc_cycles: int
    """Bare-metal RDPMC."""
    cpuid_cycles: int
    """Bare-metal CPUID."""
    mov_cr_cycles: int
    """Bare-metal MOV to CR4 (CR4.PCE on a switch to or from an RDPMC task)."""
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
        # Read-only and in PERF_CALLS order, so a shared table cannot be edited by a user.
        object.__setattr__(self, "perf_call_work_cycles",
                           MappingProxyType({k: calls[k] for k in PERF_CALLS}))

    def _values(self) -> Iterator[tuple[str, object]]:
        """Every number with its name (``perf_call_work_cycles[create]`` and so on)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                yield from ((f"{f.name}[{k}]", v) for k, v in value.items())
            else:
                yield f.name, value

    def __repr__(self) -> str:
        args = ", ".join(f"{f.name}={_plain(getattr(self, f.name))!r}" for f in fields(self))
        return f"CostTable({args})"

    def __hash__(self) -> int:
        return hash(tuple(self._values()))


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, Mapping) else value


# -- the figures the table is fitted to ---------------------------------------------------
# Bare-metal instruction costs with no per-part figure: RDMSR and RDPMC are the middle of the
# [mem] ranges of reference/kvm_x86_vpmu.md 5, CPUID and MOV to CR4 estimates (COST_SOURCES).
_RDMSR_CYCLES = 150
_RDPMC_CYCLES = 30
_CPUID_CYCLES = 100
_MOV_CR_CYCLES = 100


def _wrmsr_from_elision(before_cycles: int, after_cycles: int, counters: int) -> int:
    """WRMSR cost from a CPUID-exit round trip before/after eliding the PMC WRMSRs at
    mediated load (kvm_x86_vpmu.md 5, v6 34/44). The elision swaps each WRMSR for a RDPMC
    (2.3 step 4); assuming the microbenchmark's guest leaves every exposed counter equal, all
    are elided: saved = counters x (WRMSR - RDPMC) [inf]. Fewer elided writes would make a
    WRMSR dearer. Rounded to 10, as the figures themselves are rounded."""
    return int(round((before_cycles - after_cycles) / counters + _RDPMC_CYCLES, -1))


def _n_counters(preset: str) -> int:
    caps = PRESETS[preset].caps
    return caps.n_gp + caps.n_fixed


_WRMSR_EMR = _wrmsr_from_elision(4000, 3000, _n_counters("intel-emr"))    # 1000/12 + 30 -> 110
_WRMSR_TURIN = _wrmsr_from_elision(6200, 5300, _n_counters("amd-zen5"))   # 900/6 + 30 -> 180


def _perf_lock_from_is_paused() -> int:
    """perf_ctx_lock_cycles fitted to the is_paused patch (kvm_x86_vpmu.md 5 and 4, seed 001).

    is_paused cut the guest PMI handler from 37,646.7 to 32,929.3 ns on ICX (4 events). Per
    PMI it skips, on already-paused events: the 4 repeat pauses when GLOBAL_CTRL is re-enabled,
    the read_value of each RDPMC exit, and the read_value + period of each counter write
    (1.3, 1.2). The 4 histogram counts them: PMIs = LVT_PMI writes, RDPMC exits, PMC/FIXED_CTR
    writes. Calls on paused events do no work, so the whole saving is lock and call entry;
    that makes this an upper bound. Rounded to 100."""
    saved_ns = 37_646.7 - 32_929.3
    pmis, rdpmcs, counter_writes = 7315, 9710, 2922 + 2912 + 2904 + 976
    skipped_per_pmi = (4 * pmis + rdpmcs + 2 * counter_writes) / pmis       # ~8.0
    icx_mhz = PRESETS["intel-icx"].core_mhz
    return int(round(saved_ns * icx_mhz / 1000 / skipped_per_pmi, -2))     # ~1,356 -> 1,400


_PERF_LOCK = _perf_lock_from_is_paused()

# Host-kernel paths with no figure in reference/: estimates in cycles, shared by every preset
# (the same kernel code; turbo and per-part IPC are not modelled). COST_SOURCES gives reasons.
_CONTEXT_SWITCH = 3_000
_TICK = 2_000
_IRQ_ENTRY_EXIT = 1_000
_NMI_ENTRY_EXIT = 1_500
_IPI_SEND = 500
_IPI_HANDLER = 500
_IPI_LATENCY_NS = 500
_PERF_CREATE = 15_000
_PERF_RELEASE = 5_000
_PERF_SAMPLE_OUTPUT = 1_000
_OVERFLOW_BOOKKEEPING = 1_500

_OVERFLOW_MSRS = {"intel": (5, 2), "amd": (5, 1)}
"""(WRMSRs, RDMSRs) of the host PMI handler with one overflowed counter (kvm_x86_vpmu.md 4),
besides its RDPMC: Intel writes GLOBAL_CTRL twice, OVF_CTRL, the counter and the LVTPC and
reads GLOBAL_STATUS twice; AMD PerfMonV2 writes GLOBAL_CTL twice, STATUS_CLR, the counter and
the LVTPC and reads STATUS once."""


def _table(preset: str, wrmsr: int) -> CostTable:
    """One preset's table: the shared estimates, with MSR work priced at this part's costs."""
    def msrs(base: int, wr: int = 0, rd: int = 0, pmc: int = 0) -> int:
        return base + wr * wrmsr + rd * _RDMSR_CYCLES + pmc * _RDPMC_CYCLES

    overflow_wr, overflow_rd = _OVERFLOW_MSRS[PRESETS[preset].vendor]
    return CostTable(
        rdmsr_cycles=_RDMSR_CYCLES, wrmsr_cycles=wrmsr, rdpmc_cycles=_RDPMC_CYCLES,
        cpuid_cycles=_CPUID_CYCLES, mov_cr_cycles=_MOV_CR_CYCLES,
        context_switch_cycles=_CONTEXT_SWITCH, tick_cycles=_TICK,
        irq_entry_exit_cycles=_IRQ_ENTRY_EXIT, nmi_entry_exit_cycles=_NMI_ENTRY_EXIT,
        ipi_send_cycles=_IPI_SEND, ipi_handler_cycles=_IPI_HANDLER,
        ipi_latency_ns=_IPI_LATENCY_NS, perf_ctx_lock_cycles=_PERF_LOCK,
        perf_call_work_cycles={
            "create": _PERF_CREATE,
            "pause": msrs(500, wr=2),
            "period": msrs(500, wr=5, pmc=1),
            "enable": msrs(1_000, wr=2),
            "disable": msrs(500, wr=2),
            "read_value": msrs(300, pmc=1),
            "release": _PERF_RELEASE,
        },
        perf_sched_in_event_cycles=msrs(600, wr=2),
        perf_sched_out_event_cycles=msrs(400, wr=1, pmc=1),
        perf_rotate_cycles=msrs(1_000, wr=2),
        perf_overflow_handler_cycles=msrs(_OVERFLOW_BOOKKEEPING, wr=overflow_wr,
                                          rd=overflow_rd, pmc=1),
        perf_sample_output_cycles=_PERF_SAMPLE_OUTPUT,
        perf_clear_dirty_counter_cycles=wrmsr,
    )


_WRMSR_BY_PRESET = {
    "intel-skl": _WRMSR_EMR, "intel-icx": _WRMSR_EMR, "intel-spr": _WRMSR_EMR,
    "intel-emr": _WRMSR_EMR, "amd-zen4": _WRMSR_TURIN, "amd-zen5": _WRMSR_TURIN,
}

COST_TABLES: Mapping[str, CostTable] = MappingProxyType(
    {name: _table(name, wrmsr) for name, wrmsr in _WRMSR_BY_PRESET.items()})
"""The cost table of every built-in preset, by preset name."""


def cost_table(preset_name: str) -> CostTable:
    """The cost table of a preset; the error lists the valid names."""
    try:
        return COST_TABLES[preset_name]
    except KeyError:
        raise ValueError(
            f"preset must be one of {sorted(COST_TABLES)}, not {preset_name!r}") from None


_MSR_PRICED = "priced with this preset's rdmsr/wrmsr/rdpmc_cycles"

COST_SOURCES: Mapping[str, str] = MappingProxyType({
    "rdmsr_cycles":
        "reference/kvm_x86_vpmu.md 5: 'RDMSR / WRMSR of PMU MSRs; RDPMC ~100-250 / ~100-300 / "
        "~20-40 cycles [mem]'; the middle of the RDMSR range, 150, on every preset (no "
        "per-part figure).",
    "wrmsr_cycles":
        "reference/kvm_x86_vpmu.md 5: CPUID exit round trip before/after eliding PMC WRMSRs "
        "at mediated load 'EMR 4k -> 3k cycles; Turin 6.2k -> 5.3k' (v6 34/44); by 2.3 step 4 "
        "each elided WRMSR becomes a RDPMC, so WRMSR = saved / counters + RDPMC: EMR "
        "1000/12 + 30 = 110, Turin 900/6 + 30 = 180 [inf]. estimate: SKL, ICX and SPR take "
        "EMR's and Zen 4 takes Turin's (same vendor MSR path, no per-part figure; both lie "
        "in the [mem] range ~100-300).",
    "rdpmc_cycles":
        "reference/kvm_x86_vpmu.md 5: 'RDPMC ~20-40 cycles [mem]'; the middle, 30, on every "
        "preset.",
    "cpuid_cycles":
        "estimate: a serializing, microcoded instruction, ~100 cycles on every preset "
        "(reference/ has only CPUID exit round trips).",
    "mov_cr_cycles":
        "estimate: MOV to CR4 is serializing like CPUID, so priced like it at 100 on every "
        "preset.",
    "context_switch_cycles":
        "estimate: pick_next_task, switch_mm_irqs_off (CR3 write with PCID) and __switch_to "
        "are each a few hundred instructions plus cache refills, about 1-1.5 us at 2-2.7 GHz, "
        "so 3,000 on every preset (no Spectre mitigation such as IBPB on switch_mm).",
    "tick_cycles":
        "estimate: tick_sched_timer -> update_process_times (scheduler_tick, RCU, timers) is "
        "about 1 us of kernel code, so 2,000 on every preset.",
    "irq_entry_exit_cycles":
        "estimate: IDT vectoring, the idtentry prologue/epilogue with irq_enter/irq_exit, an "
        "x2APIC EOI and IRET take a few hundred ns, so 1,000 on every preset.",
    "nmi_entry_exit_cycles":
        "estimate: NMI entry adds the paranoid GS/CR3 checks and the nested-NMI protocol to "
        "an IRQ's entry, so 1.5x irq_entry_exit_cycles, 1,500 on every preset.",
    "ipi_send_cycles":
        "estimate: smp_call_function_single queues a csd on the target's llist and writes "
        "the x2APIC ICR (one WRMSR plus bookkeeping), 500 on every preset.",
    "ipi_handler_cycles":
        "estimate: flush_smp_call_function_queue takes the llist and unlocks each csd around "
        "the call, 500 on every preset besides the function itself.",
    "ipi_latency_ns":
        "estimate: from the ICR write to the vector pending at another core of the same "
        "socket is a few hundred ns on server parts, 500 ns on every preset (cross-socket "
        "and cross-die delivery, not modelled, is slower).",
    "perf_ctx_lock_cycles":
        "reference/kvm_x86_vpmu.md 5 and 4: is_paused took the guest NMI handler from "
        "37,646.7 to 32,929.3 ns (ICX, 4 events); by 1.3 and the 4 histogram it skips ~8.0 "
        "perf calls per PMI on already-paused events (4 repeat pauses, 1.33 RDPMC read_values, "
        "1.33 x (read_value + period) per counter write), whose work is nil, so one call's lock "
        "and entry is 4,717 ns / 8.0 x 2.3 GHz ~ 1,400 cycles [inf, an upper bound]; the same "
        "cycles on every preset.",
    "perf_call_work_cycles":
        "estimate: besides the lock and the per-event sched-in/out, create 15,000 "
        "(perf_event_alloc, x86 event_init/hw_config, find_get_context, "
        "perf_install_in_context, with perf's static keys already on; the ms-scale creations "
        "of reference/kvm_x86_vpmu.md 5 are static-key and release tails, not modelled), "
        "pause and disable 500 + 2 WRMSR (the perf_pmu_disable/enable pair), period 500 + "
        "5 WRMSR + 1 RDPMC (that pair around stop, set period, start), enable 1,000 + 2 WRMSR "
        f"(ctx_resched's fixed part), read_value 300 + 1 RDPMC, release 5,000; {_MSR_PRICED}.",
    "perf_sched_in_event_cycles":
        "estimate: x86_pmu_add and counter assignment ~600 plus 2 WRMSR (counter value, "
        f"then event select); {_MSR_PRICED}.",
    "perf_sched_out_event_cycles":
        "estimate: x86_pmu_del ~400 plus 1 WRMSR (event select off) and 1 RDPMC (final "
        f"count); {_MSR_PRICED}.",
    "perf_rotate_cycles":
        "estimate: perf_rotate_context's list rotation and hrtimer re-arm ~1,000 plus the "
        f"perf_pmu_disable/enable pair (2 WRMSR of GLOBAL_CTRL); {_MSR_PRICED}.",
    "perf_overflow_handler_cycles":
        "reference/kvm_x86_vpmu.md 4: per PMI 2 GLOBAL_CTRL writes, 2 GLOBAL_STATUS reads, "
        "1 OVF_CTRL write, 1 LVTPC write and per overflowed counter 1 RDPMC + 1 WRMSR (Intel, "
        "[code]); AMD PerfMonV2 GLOBAL_CTL x2, STATUS read, STATUS_CLR, counter re-arm "
        f"([mem]) plus the LVTPC write; {_MSR_PRICED}; plus estimate: 1,500 of "
        "perf_event_overflow bookkeeping (period and throttle accounting, perf_prepare_sample).",
    "perf_sample_output_cycles":
        "estimate: perf_output_begin, a ~64-byte IP/TID/TIME/PERIOD record and "
        "perf_output_end into the mmap ring buffer, 1,000 on every preset (no callchain).",
    "perf_clear_dirty_counter_cycles":
        "reference/kvm_x86_vpmu.md 6.5 and seeds/003: perf_clear_dirty_counters clears the "
        "dirty counters except the assigned ones [mem]; one WRMSR of 0 per counter, so this "
        "preset's wrmsr_cycles.",
})
"""Where every ``CostTable`` field comes from: a reference with its figure, or an estimate
with its reasoning."""


def instruction_cycles(table: CostTable) -> dict[str, int]:
    """The instruction latencies a hardware CPU takes (``vpmu.hw.x86.cpu.INSTRUCTIONS``)."""
    return {name: getattr(table, f"{name}_cycles") for name in
            ("rdmsr", "wrmsr", "rdpmc", "cpuid", "mov_cr")}
