"""Where every number of the x86 presets' cost tables comes from.

One entry per number name (``vpmu.costs.preset``); a mapping field's entry names each of its
keys. Each starts with its kind (``SOURCE_KINDS``): ``derived`` and ``fitted`` entries cite the
published figure (mailing-list subject and date) or the kernel code (file@version) they rest
on; ``estimate`` entries give their reasoning. Kernel functions are named as in Linux v6.6,
the emulated vPMU's version here; the mediated vPMU's as in Linux 7.0. docs/costs.md shows
the same text, and a test checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_IS_PAUSED = ('Like Xu, "[PATCH] KVM: x86/pmu: Introduce pmc->is_paused to reduce the call '
              'time of perf interfaces" (28 Jul 2021)')
_ELIDE = ('"[PATCH v6 34/44] KVM: x86/pmu: Elide WRMSRs when loading guest PMCs..." '
          '(mediated vPMU series v6, 5 Dec 2025)')
_SCALED = ("on every preset but intel-icx scaled with the exit path to the preset's fitted or "
           "borrowed plain round trip (kvm.vmx_transition_cycles), rounded to 10")
_SKL_VMCALL = ('Wanpeng Li, "[PATCH v2] KVM: VMX: Micro-optimize vmexit time when not exposing '
               'PMU" (13 Mar 2020)')
_CPUID_0XD = ('"[PATCH 1/5] KVM: x86: Cache CPUID.0xD XSTATE offsets+sizes during module init" '
              '(Sean Christopherson, 10 Dec 2024), upstream 1201f226c863,')
_PRICED = ("its MSR accesses at this preset's host.instruction_cycles[rdmsr], "
           "host.instruction_cycles[wrmsr] and host.instruction_cycles[rdpmc]")

HOST: Mapping[str, str] = MappingProxyType({
    "host.instruction_cycles[rdmsr]":
        "estimate: RDMSR of a PMU MSR is commonly put at ~100-250 cycles (unverified; no "
        "published per-part figure), so the middle, 150, on every preset.",
    "host.instruction_cycles[wrmsr]":
        f"derived: {_ELIDE} measures a CPUID exit round trip before and after eliding the "
        "PMC WRMSRs at mediated load: EMR 4k -> 3k cycles, Turin 6.2k -> 5.3k. The elision "
        "turns each WRMSR into a RDPMC, and the microbenchmark's guest leaves every counter "
        "equal, so saved = counters x (WRMSR - RDPMC): EMR (8 GP + 4 fixed) 1000/12 + 30 = "
        "110, Turin (6 GP) 900/6 + 30 = 180, rounded to 10. estimate: SKL, ICX and SPR take "
        "EMR's value and Zen 4 takes Turin's (the same vendor MSR path, no per-part figure).",
    "host.instruction_cycles[rdpmc]":
        "estimate: RDPMC is commonly put at ~20-40 cycles (unverified), so the middle, 30, on "
        "every preset.",
    "host.instruction_cycles[cpuid]":
        f"derived: {_CPUID_0XD} measured bare CPUID of leaf 0xD in cycles: SKX sub-leaves 2-5 "
        "348, 400, 276 and 236 (\"other sub-leaves are similar\"), EMR sub-leaves 2-18 from "
        "716 to 1,700; intel-skl takes the SKX mean, 315, and intel-emr the EMR mean, 964. "
        "Leaf 0xD is among the slow leaves (\"CPUID for supported XSAVE feature sub-leafs is "
        "significantly slower\"), so other leaves may be faster. estimate: 100 on intel-icx, "
        "intel-spr, amd-zen4 and amd-zen5 (no published figure; the same commit says only "
        "that \"CPUID itself is slow on ICX\").",
    "host.instruction_cycles[mov_cr]":
        "estimate: MOV to CR4 is serializing; 100 on every preset (no published figure; the "
        "CPUID figures of leaf 0xD, a slow microcoded leaf, are not taken for it).",
    "host.instruction_cycles[lbr_rdmsr]":
        'fitted: Wei Wang, "Re: [PATCH v7 08/12] KVM/x86/vPMU: Add APIs to support host '
        'save/restore the guest lbr stack" (9 Jul 2019): "On SKL, saving 32 LBR entries could '
        'add 3000~4000 cycles overhead". perf\'s save (intel_pmu_lbr_save, '
        "arch/x86/events/intel/lbr.c@v6.6) of a full 32-entry format-5 stack reads TOS, 32 x "
        "FROM/TO/INFO and LBR_SELECT: 98 RDMSRs, so 3500 / 98 = 36 (rounded) per RDMSR, on "
        "every preset (no other published figure; unused on the presets without legacy LBR).",
    "host.instruction_cycles[lbr_wrmsr]":
        "estimate: as host.instruction_cycles[lbr_rdmsr] (no published figure for the "
        "restore, intel_pmu_lbr_restore's 98 WRMSRs of a 32-entry stack).",
    "host.context_switch_cycles":
        "estimate: pick_next_task (kernel/sched/core.c@v6.6), switch_mm_irqs_off "
        "(arch/x86/mm/tlb.c@v6.6, a CR3 write with PCID) and __switch_to "
        "(arch/x86/kernel/process_64.c@v6.6) are each a few hundred instructions plus cache "
        "refills, about 1-1.5 us at 2-2.7 GHz: 3,000 on every preset. No Spectre mitigation "
        "(IBPB on switch_mm) is included.",
    "host.tick_cycles":
        "estimate: tick_sched_timer (kernel/time/tick-sched.c@v6.6) -> update_process_times "
        "(kernel/time/timer.c@v6.6: scheduler_tick, RCU, timers) is about 1 us of kernel "
        "code: 2,000 on every preset.",
    "host.irq_entry_exit_cycles":
        "estimate: IDT vectoring, the idtentry prologue and epilogue with irq_enter/irq_exit "
        "(arch/x86/include/asm/idtentry.h@v6.6), an x2APIC EOI and IRET take a few hundred "
        "ns: 1,000 on every preset.",
    "host.nmi_entry_exit_cycles":
        "estimate: the NMI entry adds the paranoid GS/CR3 checks and the nested-NMI protocol "
        "(arch/x86/entry/entry_64.S@v6.6, exc_nmi in arch/x86/kernel/nmi.c@v6.6) to an "
        "interrupt's entry: 1.5 x host.irq_entry_exit_cycles, 1,500 on every preset.",
    "host.ipi_send_cycles":
        "estimate: smp_call_function_single (kernel/smp.c@v6.6) queues a csd on the target's "
        "llist and writes the x2APIC ICR (one WRMSR plus bookkeeping): 500 on every preset.",
    "host.ipi_handler_cycles":
        "estimate: __flush_smp_call_function_queue (kernel/smp.c@v6.6) takes the llist and "
        "unlocks each csd around the call: 500 on every preset, besides the function itself.",
    "host.ipi_latency_ns":
        "estimate: from the ICR write to the vector pending at another core of the same "
        "socket is a few hundred ns on server parts: 500 ns on every preset. Cross-socket and "
        "cross-die delivery, not modelled, is slower.",
    "host.perf_ctx_lock_cycles":
        f"derived: {_IS_PAUSED} took the guest NMI handler from 37,646.7 to 32,929.3 ns (ICX, "
        "4 events). With the histogram of Like Xu's reply in that thread (29 Jul 2021: 7,315 "
        "LVT_PMI writes, 9,710 RDPMC exits, 9,714 PMC and FIXED_CTR writes), the calls "
        "is_paused skips in pmc_pause_counter, pmc_read_counter and pmc_update_sample_period "
        "(arch/x86/kvm/pmu.c and pmu.h@v6.6) come to ~8.0 per PMI: 4 repeat pauses when "
        "GLOBAL_CTRL is re-enabled, 1.33 RDPMC read_values and 1.33 x (read_value + period) "
        "per counter write. Calls on paused events do no work, so one call's lock and entry "
        "is 4,717 ns / 8.0 x 2.3 GHz ~ 1,356 -> 1,400 cycles, an upper bound (it gives the "
        "whole saving to the skipped calls); the same on every preset.",
    "host.perf_call_work_cycles":
        "estimate: each call's own work besides the lock and the per-event sched-in/out it "
        "triggers (kernel/events/core.c@v6.6): create 15,000 (perf_event_alloc, "
        "x86_pmu_event_init and x86_pmu_hw_config in arch/x86/events/core.c@v6.6, "
        "find_get_context, perf_install_in_context, with perf's static keys already on); "
        "release 5,000 (perf_remove_from_context, freeing through RCU); pause and disable "
        "500 + 2 WRMSR (the perf_pmu_disable/enable pair of GLOBAL_CTRL writes); period 500 + "
        "5 WRMSR + 1 RDPMC (that pair around stop, set period, start); enable 1,000 + 2 WRMSR "
        f"(ctx_resched's fixed part); read_value 300 + 1 RDPMC; {_PRICED}. Not modelled: the "
        'millisecond creation tails of Wei Wang, "[PATCH v1 0/8] Intel Virtual PMU '
        'Optimization" (Nov 2018: 2.5 ms per register update) and Like Xu, "[PATCH v4 5/6] '
        'KVM: x86/vPMU: Reuse perf_event to avoid unnecessary pmc_reprogram_counter" (27 Oct '
        "2019: creations up to ~21 ms), probably static-key switching and release.",
    "host.perf_sched_in_event_cycles":
        "estimate: x86_pmu_add and counter assignment (arch/x86/events/core.c@v6.6) ~600, "
        f"plus 2 WRMSR (counter value, then event select); {_PRICED}.",
    "host.perf_sched_out_event_cycles":
        "estimate: x86_pmu_del (arch/x86/events/core.c@v6.6) ~400, plus 1 WRMSR (event "
        f"select off) and 1 RDPMC (final count); {_PRICED}.",
    "host.perf_rotate_cycles":
        "estimate: perf_rotate_context's list rotation and hrtimer re-arm "
        "(kernel/events/core.c@v6.6) ~1,000, plus the perf_pmu_disable/enable pair (2 WRMSR "
        f"of GLOBAL_CTRL); {_PRICED}.",
    "host.perf_overflow_handler_cycles":
        "derived: the handler's MSR traffic with one overflowed counter, read in the code: "
        "intel_pmu_handle_irq (arch/x86/events/intel/core.c@v6.6) writes GLOBAL_CTRL twice, "
        "OVF_CTRL, the counter and the LVTPC and reads GLOBAL_STATUS twice; "
        "amd_pmu_v2_handle_irq (arch/x86/events/amd/core.c@v6.6, PerfMonV2; recalled, not "
        "re-read) writes GLOBAL_CTL twice, STATUS_CLR, the counter and the LVTPC and reads "
        f"STATUS once; both read the counter with RDPMC; {_PRICED}. Plus estimate: 1,500 of "
        "perf_event_overflow bookkeeping (kernel/events/core.c@v6.6: period and throttle "
        "accounting, perf_prepare_sample).",
    "host.perf_sample_output_cycles":
        "estimate: perf_output_begin, a ~64-byte IP/TID/TIME/PERIOD record and "
        "perf_output_end (kernel/events/ring_buffer.c@v6.6) into the mmap ring buffer, with "
        "no callchain: 1,000 on every preset.",
    "host.perf_clear_dirty_counter_cycles":
        "derived: host.instruction_cycles[wrmsr]. perf_clear_dirty_counters "
        "(arch/x86/events/core.c@v6.6, called from cr4_update_pce_mm on a switch to an RDPMC "
        "task) writes 0 to each counter in cpuc->dirty except the assigned ones, one WRMSR "
        "each, as Dapeng Mi quotes in "
        '"Re: [RFC PATCH 23/41] KVM: x86/pmu: Implement the save/restore of PMU state for '
        'Intel CPU" (18 Apr 2024).',
})

KVM: Mapping[str, str] = MappingProxyType({
    "kvm.vmx_transition_cycles":
        "fitted: one plain exit round trip per generation and kernel era (benchmarks/"
        "calibrate.py runs the guest microbenchmark, a timed loop of CPUIDs as kvm-unit-tests' "
        "x86/vmexit.c does, and fits; docs/calibration.md has every row). intel-icx: 2,600, "
        "ICX's own table: benchmarks/fit_seed001.py sweeps it and keeps the value "
        "whose guest PMI handler latency is nearest the is_paused measurement, 32,929.3 ns "
        f"(ICX, 4 events; {_IS_PAUSED}); its plain CPUID round trip is 3,700 (transition + "
        "kvm.full_exit_cycles + kvm.exit_handler_cycles[CPUID]). Every other preset's exit "
        "path is that table's scaled to a plain round trip: intel-skl to the VMCALL round trip "
        f"of {_SKL_VMCALL}, 1,559 TSC ticks on an SKX server (vmexit.flat; TSC ticks, read as "
        "core cycles at the preset's equal clocks; the model's plain exit is a CPUID one), "
        "fit 1,550 (round trip 1,560); intel-emr and amd-zen5 to the mediated CPUID round "
        f"trips of {_ELIDE}, EMR 4k -> 3k and Turin 6.2k -> 5.3k cycles, fits 350 and 1,950. "
        "derived (borrowed, flagged): intel-spr takes intel-emr's (the same Golden Cove "
        "generation and 2025 kernel era; no SPR exit figure was found), amd-zen4 takes "
        "amd-zen5's (no Zen 4 figure of any kind was found).",
    "kvm.full_exit_cycles":
        "estimate: vmx_handle_exit's dispatch (arch/x86/kvm/vmx/vmx.c@v6.6) plus "
        "vcpu_enter_guest's way out and back in (arch/x86/kvm/x86.c@v6.6: "
        "guest_state_exit/enter_irqoff, request, preemption and signal checks) are a few "
        f"hundred instructions: 800; {_SCALED}.",
    "kvm.exit_handler_cycles":
        "estimate: each reason's handler besides the vPMU's own work (arch/x86/kvm/vmx/vmx.c "
        "and arch/x86/kvm/x86.c@v6.6): MSR_READ, MSR_WRITE and RDPMC ~300 each "
        "(kvm_emulate_rdmsr, kvm_emulate_wrmsr, kvm_emulate_rdpmc, "
        "kvm_skip_emulated_instruction); CPUID ~300; EXTERNAL_INTERRUPT ~200 "
        "(handle_external_interrupt_irqoff; the host's handler is host.irq_entry_exit_cycles "
        "and its work); EXCEPTION_NMI ~300; NMI_WINDOW ~200 (clear the window, inject the "
        f"latched NMI); HLT ~500 (kvm_vcpu_halt's setup); {_SCALED}.",
    "kvm.inject_cycles":
        "estimate: kvm_inject_nmi and inject_pending_event (arch/x86/kvm/x86.c@v6.6) writing "
        "the VMCS entry fields: 300 on every preset.",
    "kvm.pmc_reprogram_cycles":
        "estimate: reprogram_counter's own work per counter (arch/x86/kvm/pmu.c@v6.6: "
        "eventsel decode, pmc_event_is_allowed with the filter's bsearch, state updates): 150 "
        "on every preset.",
    "kvm.hrtimer_cycles":
        "estimate: hrtimer_interrupt (kernel/time/hrtimer.c@v6.6) plus apic_timer_fn and "
        "apic_timer_expired (arch/x86/kvm/lapic.c@v6.6: mark the timer pending, kick the "
        "vCPU): 800 on every preset, besides the interrupt entry/exit.",
    "kvm.mediated_switch_cycles":
        "estimate: kvm_mediated_pmu_load/put (arch/x86/kvm/pmu.c@v7.0, the mediated vPMU "
        "merged as bf2c3138ae36 on 9 Feb 2026) walk the guest's counters, a few instructions "
        "each besides the MSR accesses (priced at the host's costs), and "
        "perf_load/put_guest_context (kernel/events/core.c@v7.0) take the context lock and "
        "find no event to move: 100 on every preset.",
})

GUEST: Mapping[str, str] = MappingProxyType({
    "guest.nmi_entry_cycles":
        "derived: two thirds of host.nmi_entry_exit_cycles, the same path in the guest: NMI "
        "vectoring, the entry code and nmi_handle's dispatch to perf_event_nmi_handler "
        "(arch/x86/kernel/nmi.c@v6.6). The split is an estimate.",
    "guest.nmi_exit_cycles":
        "derived: host.nmi_entry_exit_cycles less guest.nmi_entry_cycles: the NMI exit path "
        "and IRET.",
    "guest.irq_entry_cycles":
        "derived: 60% of host.irq_entry_exit_cycles: the timer interrupt's vectoring and "
        "entry code. The split is an estimate.",
    "guest.irq_exit_cycles":
        "derived: host.irq_entry_exit_cycles less guest.irq_entry_cycles: EOI, irq_exit and "
        "IRET.",
    "guest.tick_cycles":
        "derived: host.tick_cycles, the same path in the guest (update_process_times, "
        "scheduler_tick, RCU) without perf's part.",
    "guest.perf_tick_event_cycles":
        "estimate: perf_adjust_freq_unthr_context's software work per active event "
        "(kernel/events/core.c@v6.6: list walk, period arithmetic), MSR accesses excluded: a "
        "few hundred instructions, 300.",
    "guest.perf_rotate_cycles":
        "derived: host.perf_rotate_cycles without its 2 WRMSRs: perf_rotate_context's fixed "
        "software part.",
    "guest.perf_sched_event_cycles":
        "estimate: event_sched_in/out (kernel/events/core.c@v6.6) and x86_pmu_add/del "
        "(arch/x86/events/core.c@v6.6) software per event, MSR accesses excluded: 300 either "
        "way. Not derived from host.perf_sched_in_event_cycles and "
        "host.perf_sched_out_event_cycles, whose software parts are 600 and 400.",
    "guest.perf_overflow_cycles":
        "derived: the bookkeeping part of host.perf_overflow_handler_cycles "
        "(perf_event_overflow: accounting, throttle check, frequency adjust, wakeup check), "
        "MSR accesses excluded.",
    "guest.perf_sample_output_cycles":
        "derived: host.perf_sample_output_cycles (perf_event_output of one sample, no "
        "callchain).",
    "guest.perf_event_open_cycles":
        "derived: host.perf_call_work_cycles[create] (perf_event_alloc, x86_pmu_event_init, "
        "installing the event); the syscall entry is not added.",
    "guest.perf_event_close_cycles":
        "derived: host.perf_call_work_cycles[release] (close() of an event).",
    "guest.syscall_cycles":
        "estimate: a small syscall (read() of a count, the exec and exit paths' perf hooks) "
        "with its own work: 1,000.",
    "guest.udelay_1us_cycles":
        "estimate: amd_pmu_wait_on_overflow (arch/x86/events/amd/core.c@v6.6) spins in "
        "udelay(1); 1 us at 2.4 GHz is 2,400 cycles, on every preset (amd-zen5's 2.7 GHz "
        "would make it 2,700; not per preset yet).",
    "guest.kernel_ipc":
        "estimate: 1 instruction per cycle on branchy, cache-cold kernel paths.",
    "guest.kernel_branches_per_insn":
        "estimate: 1 branch in 5 instructions, typical of kernel code.",
})

SOURCES: Mapping[str, str] = MappingProxyType({**HOST, **KVM, **GUEST})
"""Every x86 preset's sources: the numbers differ per preset, their reasons do not."""
