"""The shared x86 vPMU core (vpmu/x86/core.py: struct kvm_pmu and pmu.c's common code): MSR
and RDPMC decoding, the upstream write hooks (what requests a reprogram), and an overflow's
status bit and PMI request; on a minimal design whose counters are plain values."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from vpmu.arch.faults import Fault
from vpmu.arch.presets import PRESETS
from vpmu.arch.x86 import msrs
from vpmu.arch.x86.caps import FIXED_IDX_BASE, RDPMC_FIXED, X86PmuCaps
from vpmu.host.cpu import Pcpu
from vpmu.host.machine import Host
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.kapi import KernelCounterApi
from vpmu.vpmu.lifecycle import KVM_REQ_PMI, KVM_REQ_PMU
from vpmu.vpmu.x86.core import X86VpmuCore
from vpmu.vpmu.x86.ops import INSTRUCTIONS_RETIRED, CapLimits, ops_for
from vpmu.vpmu.x86.pmc import FIXED_PMI, X86Pmc, ring_field

SEL0, PMC0, GCTRL = msrs.IA32_PERFEVTSEL0, msrs.IA32_A_PMC0, msrs.IA32_PERF_GLOBAL_CTRL
STATUS, OVF, FIXED_CTRL = (msrs.IA32_PERF_GLOBAL_STATUS, msrs.IA32_PERF_GLOBAL_OVF_CTRL,
                           msrs.IA32_FIXED_CTR_CTRL)
AMD_CTL0, AMD_CTR0 = msrs.MSR_F15H_PERF_CTL0, msrs.MSR_F15H_PERF_CTR0


def host_kernel() -> tuple[Pcpu, KernelCounterApi]:
    """A host CPU and its perf's counter API, for the ops' arguments: the accesses here never
    reach them, but a mypyc-compiled core checks its arguments' types (so not None)."""
    host = Host("intel-icx", cpus=1)
    return host.cpus[0], KernelCounterApi(PerfSubsystem(host))


CPU, KAPI = host_kernel()


def guest_caps(preset: str) -> X86PmuCaps:
    host = PRESETS[preset].caps
    return ops_for(host).refresh(host, CapLimits(max_gp=8, max_fixed=3))


class FakeVcpu:
    """The vCPU handle's part the core uses: requests and the virtual LVTPC."""

    def __init__(self, caps: X86PmuCaps) -> None:
        self.caps = caps
        self.requests: list[str] = []
        self.injected = 0
        self.cpl = 0

    def request(self, name: str) -> None:
        self.requests.append(name)

    def deliver_lvtpc(self) -> bool:
        self.injected += 1
        return True


class PlainCore(X86VpmuCore[X86Pmc]):
    """A design whose counters are KVM's stored value alone."""

    reprogrammed: list[list[int]]

    def new_pmc(self, idx: int, width: int) -> X86Pmc:
        return X86Pmc(idx, width)

    def read_counter(self, cpu: Any, pmc: X86Pmc) -> Generator[Any, Any, Any]:
        yield from ()
        return pmc.counter

    def write_counter(self, cpu: Any, pmc: X86Pmc, value: int) -> Generator[Any, Any, Any]:
        yield from ()
        pmc.counter = value

    def reprogram_pmcs(self, cpu: Any, pmcs: list[X86Pmc]) -> Generator[Any, Any, Any]:
        yield from ()
        self.reprogrammed.append([p.idx for p in pmcs])

    def counting_instructions(self) -> list[tuple[X86Pmc, int]]:
        return [(p, ring_field(p.eventsel)) for p in self.gp
                if p.eventsel & 0xFFFF == INSTRUCTIONS_RETIRED and self.locally_enabled(p)]

    def incr_counter(self, pmc: X86Pmc, field: int) -> None:
        pmc.counter += 1
        if field & FIXED_PMI:
            self.overflow(pmc, intr=True)


def core(preset: str = "intel-icx") -> tuple[PlainCore, FakeVcpu]:
    caps = guest_caps(preset)
    vcpu = FakeVcpu(caps)
    pmu = PlainCore(vcpu, caps)  # type: ignore[arg-type]
    pmu.reprogrammed = []
    return pmu, vcpu


def run(gen: Generator[Any, Any, Any]) -> Any:
    """Run a kernel op that must not yield; its value."""
    try:
        next(gen)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the op yielded")


def test_counters_and_lookup_follow_the_guest_caps() -> None:
    """kvm_pmu_init: 8 GP and 3 fixed (v2 Intel) in global index order; AMD has no fixed."""
    pmu, _ = core()
    assert [p.idx for p in pmu.all_pmcs()] == [*range(8), 32, 33, 34]
    assert pmu.counter_mask == 0xFF | 0b111 << FIXED_IDX_BASE
    assert pmu.pmc(33) is pmu.fixed[1] and pmu.pmc(8) is None and pmu.pmc(35) is None
    amd, _ = core("amd-zen4")
    assert amd.fixed == [] and len(amd.gp) == 6


def test_get_and_set_msr_decode_counters_selectors_and_globals() -> None:
    """A counter write reaches write_counter and the read read_counter; a selector is
    stored; GLOBAL_CTRL resets to the GP mask; an unknown MSR or reserved bit is #GP."""
    pmu, _ = core()
    assert run(pmu.set_msr(CPU, PMC0 + 2, 1234)) is None
    assert pmu.gp[2].counter == 1234 and run(pmu.get_msr(CPU, PMC0 + 2)) == 1234
    assert run(pmu.set_msr(CPU, SEL0, 0x4300C0)) is None
    assert run(pmu.get_msr(CPU, SEL0)) == 0x4300C0
    assert run(pmu.get_msr(CPU, GCTRL)) == 0xFF
    assert run(pmu.get_msr(CPU, 0x12345)) is Fault.GP
    assert run(pmu.set_msr(CPU, GCTRL, 1 << 40)) is Fault.GP
    assert pmu.pmc_in_use == 1 << 2 | 1 << 0


def test_amd_selector_reserved_bits_are_dropped_not_faulted() -> None:
    pmu, _ = core("amd-zen4")
    assert run(pmu.set_msr(CPU, AMD_CTL0, 1 << 63 | 0x4300C0)) is None
    assert pmu.gp[0].eventsel == 0x4300C0


def test_selector_write_requests_a_reprogram_only_on_change() -> None:
    """intel/amd_pmu_set_msr: the same selector value again requests nothing."""
    pmu, vcpu = core()
    run(pmu.set_msr(CPU, SEL0 + 1, 0x4300C0))
    run(pmu.set_msr(CPU, SEL0 + 1, 0x4300C0))
    assert pmu.reprogram_pmi == 1 << 1 and vcpu.requests == [KVM_REQ_PMU]


def test_fixed_ctr_ctrl_reprograms_the_changed_fields_only() -> None:
    """reprogram_fixed_counters: fixed 1's field changes, fixed 0 and 2 keep theirs."""
    pmu, _ = core()
    run(pmu.set_msr(CPU, FIXED_CTRL, 0x0B0))
    assert pmu.reprogram_pmi == 1 << 33
    pmu.reprogram_pmi = 0
    run(pmu.set_msr(CPU, FIXED_CTRL, 0x0B0))
    assert pmu.reprogram_pmi == 0 and pmu.fixed_field(pmu.fixed[1]) == 0xB


def test_global_ctrl_reprograms_the_counters_whose_enable_changed() -> None:
    pmu, _ = core()
    run(pmu.set_msr(CPU, GCTRL, 0xF0 | 1 << 32))
    assert pmu.reprogram_pmi == 0x0F | 1 << 32
    assert pmu.globally_enabled(pmu.gp[4]) and not pmu.globally_enabled(pmu.gp[0])


def test_overflow_sets_the_status_bit_and_requests_a_pmi_with_int() -> None:
    """__kvm_perf_overflow; OVF_CTRL (write 1 to clear) clears the bit again."""
    pmu, vcpu = core()
    pmu.overflow(pmu.gp[3], intr=False)
    pmu.overflow(pmu.fixed[0], intr=True)
    assert run(pmu.get_msr(CPU, STATUS)) == 1 << 3 | 1 << 32
    assert vcpu.requests == [KVM_REQ_PMI]
    run(pmu.set_msr(CPU, OVF, 1 << 3))
    assert run(pmu.get_msr(CPU, STATUS)) == 1 << 32
    assert run(pmu.deliver_pmi(CPU)) is True and vcpu.injected == 1


def test_handle_event_reprograms_the_marked_counters_once() -> None:
    """kvm_pmu_handle_event: the bitmap is taken (a request during the reprogram is for the
    next entry) and the counters it names go to the design, GP first."""
    pmu, _ = core()
    pmu.request_reprogram(1 << 33 | 1 << 5 | 1 << 40)
    run(pmu.handle_event(CPU))
    run(pmu.handle_event(CPU))
    assert pmu.reprogrammed == [[5, 33], []] and pmu.reprogram_pmi == 0


@pytest.mark.parametrize(("cpl", "sel_bits", "counted"), [
    (0, msrs.EVTSEL_OS, True), (3, msrs.EVTSEL_OS, False), (3, msrs.EVTSEL_USR, True),
    (0, msrs.EVTSEL_USR, False),
])
def test_instruction_retired_counts_where_the_ring_matches(cpl: int, sel_bits: int,
                                                           counted: bool) -> None:
    """kvm_pmu_trigger_event's cpl_is_matched: OS counts at CPL 0, USR above."""
    pmu, vcpu = core()
    pmu.gp[1].eventsel = INSTRUCTIONS_RETIRED | msrs.EVTSEL_EN | sel_bits
    vcpu.cpl = cpl
    pmu.instruction_retired()
    assert pmu.gp[1].counter == int(counted)


def test_an_instruction_that_overflows_sets_status_and_requests_a_pmi() -> None:
    pmu, vcpu = core()
    pmu.gp[0].eventsel = INSTRUCTIONS_RETIRED | msrs.EVTSEL_EN | msrs.EVTSEL_OS | msrs.EVTSEL_INT
    pmu.instruction_retired()
    assert pmu.global_status == 1 and vcpu.requests == [KVM_REQ_PMI]


@pytest.mark.parametrize(("preset", "ecx", "idx"), [
    ("intel-icx", 3, 3), ("intel-icx", RDPMC_FIXED | 2, 34), ("intel-icx", RDPMC_FIXED | 3, None),
    ("intel-icx", 8, None), ("amd-zen4", 5, 5), ("amd-zen4", RDPMC_FIXED, None),
    ("amd-zen4", 1 << 16, None),
])
def test_rdpmc_names_the_counter_or_faults(preset: str, ecx: int, idx: int | None) -> None:
    """kvm_pmu_rdpmc: the vendor's index space, then the guest's counters (3 fixed here)."""
    pmu, _ = core(preset)
    for pmc in pmu.all_pmcs():
        pmc.counter = pmc.idx + 100
    assert run(pmu.rdpmc(CPU, ecx)) == (Fault.GP if idx is None else idx + 100)


def design_pmus(preset: str) -> list[X86VpmuCore[Any]]:
    """The emulated and the mediated design's vCPU PMU for ``preset`` (the mediated one
    put: its registers are KVM's copies), on a vCPU with no perf event behind any counter."""
    from vpmu.vpmu.designs.emulated.pmc import PmcOps
    from vpmu.vpmu.designs.emulated.vcpu import EmulatedVcpu
    from vpmu.vpmu.designs.mediated.vcpu import MediatedOptions, MediatedVcpu
    caps = guest_caps(preset)
    emulated = EmulatedVcpu(FakeVcpu(caps), caps, PmcOps(KAPI, is_paused=True, reuse=True),  # type: ignore[arg-type]
                            count_emulated=True)
    options = MediatedOptions("run-loop", "ipi", "upstream", elide_writes=True)
    mediated = MediatedVcpu(FakeVcpu(caps), caps, PRESETS[preset].caps, options)  # type: ignore[arg-type]
    return [emulated, mediated]


@pytest.mark.parametrize("preset", ["intel-icx", "amd-zen4"])
def test_both_designs_decode_msrs_and_rdpmc_alike(preset: str) -> None:
    """One kvm_pmu_get/set_msr and kvm_pmu_rdpmc for both designs: the same values and the
    same #GP for the same accesses (Intel faults on a reserved selector bit, AMD drops it)."""
    intel = preset == "intel-icx"
    sel0, ctr0 = (SEL0, PMC0) if intel else (AMD_CTL0, AMD_CTR0)
    gctrl, status = ((GCTRL, STATUS) if intel else
                     (msrs.MSR_AMD64_PERF_CNTR_GLOBAL_CTL, msrs.MSR_AMD64_PERF_CNTR_GLOBAL_STATUS))
    seen = []
    for pmu in design_pmus(preset):
        seen.append((
            run(pmu.set_msr(CPU, ctr0, 0x1234)), run(pmu.get_msr(CPU, ctr0)),
            run(pmu.set_msr(CPU, sel0, 1 << 63 | 0x4300C0)), run(pmu.get_msr(CPU, sel0)),
            run(pmu.set_msr(CPU, gctrl, 0b11)), run(pmu.get_msr(CPU, gctrl)),
            run(pmu.get_msr(CPU, status)), run(pmu.rdpmc(CPU, 0)),
            run(pmu.rdpmc(CPU, RDPMC_FIXED)), run(pmu.rdpmc(CPU, 1 << 20))))
    emulated, mediated = seen
    assert emulated == mediated
    assert emulated[:2] == (None, 0x1234) and emulated[-1] is Fault.GP
    assert emulated[2:4] == ((Fault.GP, 0) if intel else (None, 0x4300C0))
    assert emulated[8] == (0 if intel else Fault.GP)
