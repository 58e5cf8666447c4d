"""Where every number of the Arm presets' cost tables comes from.

One entry per number name, as for x86 (``vpmu.costs.x86.sources``). Kernel functions are
named as in Linux v6.12 (drivers/perf/arm_pmuv3.c, drivers/perf/arm_pmu.c, arch/arm64/).
One Arm figure is fitted (the exit path, to a Neoverse N1 hvc round trip); every other one is
an estimate with its reasoning, and docs/costs.md says so. The KVM entries name
arch/arm64/kvm/ at v6.12; the published KVM/ARM microbenchmarks (Dall et al., ISCA 2016 and
USENIX ATC 2017) could not be read here, so no KVM number is cited from them
(``kvm.vmx_transition_cycles`` says what is taken from them).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

_PRICED = ("its register accesses at this preset's host.instruction_cycles[mrs] and "
           "host.instruction_cycles[msr]")
_AS_X86 = ("the same generic kernel code as on x86 (kernel/events/core.c@v6.12), so the x86 "
           "table's estimate")

HOST: Mapping[str, str] = MappingProxyType({
    "host.instruction_cycles[mrs]":
        "estimate: an MRS of a PMU system register is not serializing; ~10 cycles on every "
        "Arm preset (no published per-core latency found).",
    "host.instruction_cycles[msr]":
        "estimate: an MSR to a PMU control register, ~20 cycles on every Arm preset; the ISB "
        "that the driver issues after a group of writes (arch/arm64/include/asm/arm_pmuv3.h"
        "@v6.12) is in the paths' own cycles.",
    "host.context_switch_cycles":
        "estimate: __schedule, switch_mm (an ASID'd TTBR0 write) and cpu_switch_to "
        "(arch/arm64/kernel/entry.S@v6.12): 3,000, as the x86 estimate for the same "
        "scheduler code.",
    "host.tick_cycles":
        f"estimate: tick_sched_timer -> update_process_times, {_AS_X86}: 2,000.",
    "host.irq_entry_exit_cycles":
        "estimate: the exception vector, el1_interrupt and gic_handle_irq "
        "(drivers/irqchip/irq-gic-v3.c@v6.12: ICC_IAR1_EL1 read, ICC_EOIR1_EL1 write) and "
        "the ERET: a few hundred ns, 1,000.",
    "host.nmi_entry_exit_cycles":
        "estimate: a pseudo-NMI (GICv3 priority masking, CONFIG_ARM64_PSEUDO_NMI) adds the "
        "PMR save and restore to an IRQ: 1.5 x host.irq_entry_exit_cycles. Unused by default: "
        "arm_pmuv3's interrupt is a normal IRQ unless pseudo-NMIs are enabled.",
    "host.ipi_send_cycles":
        "estimate: smp_call_function_single queues the call and writes ICC_SGI1R_EL1: 500.",
    "host.ipi_handler_cycles":
        "estimate: the SGI handler's body (ipi_handler, arch/arm64/kernel/smp.c@v6.12) "
        "besides the function it runs: 500.",
    "host.ipi_latency_ns":
        "estimate: from the SGI write until the interrupt is pending at the target: 500 ns.",
    "host.perf_ctx_lock_cycles":
        f"estimate: {_AS_X86} (fitted there to is_paused on ICX), 1,400.",
    "host.perf_call_work_cycles":
        "estimate: each call's own work besides the lock and the per-event sched-in/out, "
        "as for x86 (create 15,000; release 5,000; pause and disable 500; period 500; enable "
        "1,000; read_value 300) with arm_pmuv3's register accesses instead of x86's: pause "
        "and disable 2 MSR (armv8pmu_disable_event: PMCNTENCLR_EL0, PMINTENCLR_EL1); period "
        "1 MRS + 4 MSR (read the counter, disable, write the counter, enable counter and "
        "interrupt); enable 4 MSR (PMEVTYPER, PMINTENSET, PMCNTENSET, PMCR_EL0.E); "
        f"read_value 1 MRS; {_PRICED}.",
    "host.perf_sched_in_event_cycles":
        "estimate: armpmu_add and armv8pmu_get_event_idx ~600, plus 4 MSR (the counter, its "
        f"type, interrupt and counter enable); {_PRICED}.",
    "host.perf_sched_out_event_cycles":
        "estimate: armpmu_del ~400, plus 2 MSR (counter and interrupt disable) and 1 MRS "
        f"(the final count); {_PRICED}.",
    "host.perf_rotate_cycles":
        "estimate: perf_rotate_context's fixed part ~1,000, plus the perf_pmu_disable/enable "
        f"pair (2 MSR of PMCR_EL0); {_PRICED}.",
    "host.perf_overflow_handler_cycles":
        "derived: armv8pmu_handle_irq's register traffic with one overflowed counter, read in "
        "drivers/perf/arm_pmuv3.c@v6.12: PMOVSCLR_EL0 read and written back, PMCR_EL0.E "
        "cleared and set (armv8pmu_stop/start), the counter read and its new period written: "
        f"2 MRS + 4 MSR, {_PRICED}. Plus estimate: 1,500 of perf_event_overflow bookkeeping, "
        "as on x86.",
    "host.perf_sample_output_cycles":
        f"estimate: perf_event_output of one sample, {_AS_X86}: 1,000.",
    "host.perf_clear_dirty_counter_cycles":
        "derived: host.instruction_cycles[msr] (one counter write). Unused on Arm: arm64 has "
        "no perf_clear_dirty_counters (user access is PMUSERENR_EL0, not per-task dirtiness).",
})

_N1_BHB = ('Ricardo Koller, "Spectre - BHB", kvmarm@lists.cs.columbia.edu (18 Mar 2022): '
           'kvm-unit-tests arm/micro-bench on "a Neoverse N1 core", kernel 56e337f2cf13, '
           '"hvc 292" ns without the Spectre-BHB mitigation, 317 with it')
_SCALED = ("scaled with the exit path to the fitted plain HVC round trip "
           "(kvm.vmx_transition_cycles), rounded to 10, on every Arm preset")
_NOT_READ = ("Dall, Li, Lim, Nieh and Koloventzos, \"ARM Virtualization: Performance and "
             "Architectural Implications\" (ISCA, June 2016) measure KVM/ARM's hypercall, "
             "trap and virtual IPI round trips in cycles on Armv8.0 nVHE hardware (X-Gene), "
             "and Dall, Li and Nieh, \"Optimizing the Design and Implementation of the Linux "
             "ARM Hypervisor\" (USENIX ATC, July 2017) with KVM/ARM redesigned to run the host "
             "at EL2, the basis of the VHE path; their tables could not be read here, so no "
             "figure of theirs is used. The ATC 2017 abstract's claims are: \"an order of "
             "magnitude performance improvement for KVM/ARM\" from the redesign and its "
             "optimizations, and \"faster performance than x86 on key hypervisor "
             "operations\"")

KVM: Mapping[str, str] = MappingProxyType({
    "kvm.vmx_transition_cycles":
        "fitted: the VHE exit path (this, kvm.full_exit_cycles and kvm.exit_handler_cycles) "
        "is the estimated shape below scaled so that a plain HVC round trip takes 880 cycles, "
        "the value benchmarks/calibrate.py fits to the one published KVM/arm64 exit figure, "
        f"{_N1_BHB} (880 cycles = 293 ns at the arm-n1 preset's 3.0 GHz, which the message "
        "does not state; the model's plain exit is an ID-register trap, whose SYS64 handler "
        "the table prices as HVC64's). The shape (estimate): the world switch round trip "
        "(__kvm_vcpu_run, arch/arm64/kvm/hyp/vhe/switch.c and hyp/nvhe/switch.c@v6.12, "
        "fixup_guest_exit included) 1,000 to 800 for the full exit and 300 for the "
        "handler: the exception to EL2 and the ERET back, the general-purpose registers saved "
        "and restored each way (31 X registers: \"33 instructions\" of LDP/STP with the stack "
        "pointers, in the \"Costs of virtualization\" section of Arm's guide \"Armv8-A "
        "virtualization\", 102142 issue 01, 2019), a handful of EL1/EL2 registers (ELR, SPSR, "
        "ESR, FAR, HPFAR), the trap registers and the vGIC's list registers when in use, with "
        "their ISBs; the guest's EL1 context stays loaded from vcpu_load to vcpu_put. Scaled: "
        "420 on the VHE presets; derived (borrowed, flagged): arm-a520 and arm-a720 take "
        "arm-n1's (no figure of their own). nVHE presets (arm-a53, arm-a72, Armv8.0: no VHE): "
        "the scaled VHE figure plus 2,000 (estimate): the EL1 context switched on every exit "
        "and entry (__sysreg_save/restore_el1_state, ~25 registers, each read from one context "
        "and written with the other's, both ways: 50 MRS and 50 MSR at "
        "host.instruction_cycles[mrs] and host.instruction_cycles[msr], 1,500), plus 500 for "
        "the host's hyp call into EL2 and its ERET, stage-2 (VTTBR_EL2) and trap switching, "
        f"and __pmu_switch_to_guest/host: 2,420. {_NOT_READ}.",
    "kvm.full_exit_cycles":
        "estimate: kvm_arch_vcpu_ioctl_run's way out of the inner loop and back in "
        "(arch/arm64/kvm/arm.c@v6.12): handle_exit's dispatch, kvm_vgic_sync/flush_hwstate, "
        "kvm_timer_sync_user, kvm_pmu_sync/flush_hwstate, the request, preemption and "
        "signal checks: a few hundred instructions, 800, as the x86 estimate for the "
        f"same loop (vcpu_enter_guest); {_SCALED}.",
    "kvm.exit_handler_cycles":
        "estimate: each exit class's handler (arch/arm64/kvm/handle_exit.c and "
        "sys_regs.c@v6.12): SYS64 ~300 (kvm_handle_sys_reg: decode the ESR, emulate_sys_reg "
        "finds the descriptor by bsearch, kvm_incr_pc), besides the vPMU's register "
        "emulation, as x86's MSR_READ/MSR_WRITE; HVC64 ~300 (kvm_handle_hvc -> "
        "kvm_smccc_call_handler: the SMCCC filter lookup and the call's dispatch); WFx ~500 "
        "(kvm_handle_wfx -> kvm_vcpu_wfi's setup before it blocks), as x86's HLT; IRQ ~100 "
        "(handle_exit returns at once; the host's handler is host.irq_entry_exit_cycles and "
        f"its work); {_SCALED}.",
    "kvm.inject_cycles":
        "estimate: one vGIC list-register injection: kvm_vgic_inject_irq (the IRQ's lock, "
        "the vCPU's ap_list insertion, the kick) and vgic_flush_lr_state at the next entry "
        "(the ap_list sorted, vgic_v3_populate_lr) (arch/arm64/kvm/vgic/vgic.c@v6.12): "
        "600, twice x86's VMCS write, on every Arm preset.",
    "kvm.pmc_reprogram_cycles":
        "estimate: kvm_pmu_create_perf_event's own work per counter (arch/arm64/kvm/"
        "pmu-emul.c@v6.12: the event type decoded, kvm_pmu_event_filter's bitmap test, the "
        "perf_event_attr built, the sample period from the counter's width), besides the "
        "perf calls: 150, as x86's reprogram_counter, on every Arm preset.",
    "kvm.hrtimer_cycles":
        "estimate: hrtimer_interrupt (kernel/time/hrtimer.c@v6.12) plus kvm_bg_timer_expire "
        "(arch/arm64/kvm/arch_timer.c@v6.12: check that the guest's timer should fire, wake "
        "the vCPU): 800, as x86's apic_timer_fn, besides the interrupt entry/exit, on "
        "every Arm preset.",
    "kvm.mediated_switch_cycles":
        "estimate: the partitioned PMU series' load or put (not merged) walks the 7-35 "
        "registers it switches, depending on HPMN and the cycle counter, a few instructions "
        "each besides the MRS/MSR (priced at host.instruction_cycles[mrs] and "
        "host.instruction_cycles[msr]), ~100 for 35, and reserves or releases the guest's "
        "counters with no host event to move: 150 on every Arm preset.",
})

GUEST: Mapping[str, str] = MappingProxyType({
    "guest.nmi_entry_cycles":
        "derived: two thirds of host.nmi_entry_exit_cycles (a guest pseudo-NMI). The split "
        "is an estimate; a guest arm_pmuv3 takes its PMU interrupt as an IRQ by default.",
    "guest.nmi_exit_cycles":
        "derived: host.nmi_entry_exit_cycles less guest.nmi_entry_cycles.",
    "guest.irq_entry_cycles":
        "derived: 60% of host.irq_entry_exit_cycles: vector, el1_interrupt, gic_handle_irq's "
        "acknowledge. The split is an estimate.",
    "guest.irq_exit_cycles":
        "derived: host.irq_entry_exit_cycles less guest.irq_entry_cycles: EOI and ERET.",
    "guest.tick_cycles":
        "derived: host.tick_cycles, the same path in the guest without perf's part.",
    "guest.perf_tick_event_cycles":
        "estimate: perf_adjust_freq_unthr_context's software per active event, as on x86: "
        "300.",
    "guest.perf_rotate_cycles":
        "derived: host.perf_rotate_cycles without its 2 MSRs.",
    "guest.perf_sched_event_cycles":
        "estimate: event_sched_in/out and armpmu_add/del software per event, register "
        "accesses excluded: 300, as on x86.",
    "guest.perf_overflow_cycles":
        "derived: the bookkeeping part of host.perf_overflow_handler_cycles.",
    "guest.perf_sample_output_cycles":
        "derived: host.perf_sample_output_cycles.",
    "guest.perf_event_open_cycles":
        "derived: host.perf_call_work_cycles[create].",
    "guest.perf_event_close_cycles":
        "derived: host.perf_call_work_cycles[release].",
    "guest.syscall_cycles":
        "estimate: a small syscall with its own work: 1,000, as on x86.",
    "guest.udelay_1us_cycles":
        "estimate: 1 us at about 1 GHz; unused on Arm (udelay on the PMI path is AMD's "
        "amd_pmu_wait_on_overflow).",
    "guest.kernel_ipc":
        "estimate: 1 instruction per cycle on branchy, cache-cold kernel paths, as on x86.",
    "guest.kernel_branches_per_insn":
        "estimate: 1 branch in 5 instructions, typical of kernel code.",
})

SOURCES: Mapping[str, str] = MappingProxyType({**HOST, **KVM, **GUEST})
"""Every Arm preset's sources."""
