"""The x86 hardware PMU on bare metal: counting rule, overflow, PMI, freeze, qualifiers."""

from fractions import Fraction

from vpmu.arch.faults import Fault
from vpmu.arch.presets import get_preset
from vpmu.arch.x86 import events as ev
from vpmu.arch.x86 import msrs
from vpmu.guest import Execute, Rdmsr, Rdpmc, SetCpl, SetCr4Pce, WaitPmi, Wrmsr
from vpmu.host.costs import cost_table
from vpmu.machine import BareMetal
from vpmu.sim import cycles_to_ps
from vpmu.workloads import Stream, loop, loop_self

EN, OS, USR, INT = 1 << 22, 1 << 17, 1 << 16, 1 << 20
INSTRUCTIONS = 0xC0
BRANCHES = 0xC4
LVTPC_NMI = 0b100 << 8


def _run(program, preset="intel-icx"):  # type: ignore[no-untyped-def]
    machine = BareMetal(preset)
    return machine.run(program), machine


def test_enable_wrmsr_not_counted_disable_wrmsr_counted() -> None:
    """Instructions between GLOBAL_CTRL on and off: the stream plus the disabling WRMSR."""
    def program():  # type: ignore[no-untyped-def]
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, EN | OS | INSTRUCTIONS)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 1)
        yield Execute(loop(1000))
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
        return (yield Rdpmc(0))
    value, _ = _run(program)
    assert value == 10 * 1000 + 1


def test_global_ctrl_resets_to_gp_mask_and_gates_counting() -> None:
    """GLOBAL_CTRL resets to one bit per GP counter; clearing a bit stops that counter."""
    def program():  # type: ignore[no-untyped-def]
        reset = yield Rdmsr(msrs.IA32_PERF_GLOBAL_CTRL)
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, EN | OS | BRANCHES)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
        yield Execute(loop(100))
        return reset, (yield Rdpmc(0))
    (reset, count), _ = _run(program)
    assert reset == 0xFF
    assert count == 0


def test_privilege_filter_follows_cpl_and_stream_split() -> None:
    """USR-only counts only CPL 3 work; a rate stream's user share is counted exactly."""
    stream = Stream("split", {ev.CYCLES: 1000, ev.INSTRUCTIONS: 900},
                    user_fraction=Fraction(1, 3))

    def program():  # type: ignore[no-untyped-def]
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, EN | USR | INSTRUCTIONS)
        yield Wrmsr(msrs.IA32_PERFEVTSEL0 + 1, EN | OS | INSTRUCTIONS)
        yield Execute(stream)
        yield SetCr4Pce(True)
        yield SetCpl(3)
        yield Execute(loop_self(50))
        user = yield Rdpmc(0)
        kernel = yield Rdpmc(1)
        return user, kernel
    (user, kernel), _ = _run(program)
    # Counter 0 (USR): 300 user instructions of the split stream and 50 of `loop .` at CPL 3
    # (an RDPMC reads before it retires). Counter 1 (OS): 600 kernel instructions and the MOV
    # to CR4; its own enabling WRMSR is not counted.
    assert user == 300 + 50
    assert kernel == 600 + 1


def test_rdpmc_cpl_rule_and_privileged_msrs() -> None:
    """RDPMC at CPL 3 needs CR4.PCE; RDMSR/WRMSR at CPL 3 always #GP."""
    def program():  # type: ignore[no-untyped-def]
        yield SetCpl(3)
        a = yield Rdpmc(0)
        b = yield Rdmsr(msrs.IA32_PERF_GLOBAL_CTRL)
        c = yield Wrmsr(msrs.IA32_PERFEVTSEL0, 0)
        d = yield SetCr4Pce(True)
        yield SetCpl(0)
        yield SetCr4Pce(True)
        yield SetCpl(3)
        e = yield Rdpmc(0)
        return a, b, c, d, e
    result, _ = _run(program)
    assert result[:4] == (Fault.GP,) * 4
    assert isinstance(result[4], int)


def _overflow_program(preset: str, lvt: int, preset_value_back: int):  # type: ignore[no-untyped-def]
    amd = preset.startswith("amd")
    sel = msrs.MSR_F15H_PERF_CTL0 if amd else msrs.IA32_PERFEVTSEL0
    ctr = msrs.MSR_F15H_PERF_CTR0 if amd else msrs.IA32_A_PMC0

    def program():  # type: ignore[no-untyped-def]
        yield Wrmsr(msrs.X2APIC_LVTPC, lvt)
        yield Wrmsr(ctr, (1 << 48) - preset_value_back)
        yield Wrmsr(sel, EN | OS | INT | INSTRUCTIONS)
        yield Execute(loop(1000))
        got = yield WaitPmi(1000)
        lvt_after = yield Rdmsr(msrs.X2APIC_LVTPC)
        return got, lvt_after, (yield Rdpmc(0))
    return program


def test_overflow_raises_pmi_at_the_exact_count_and_masks_lvtpc_on_intel() -> None:
    """Preset -N wraps after N events: PMI delivered (as NMI), Intel sets LVTPC.MASK."""
    (got, lvt_after, value), machine = _run(_overflow_program("intel-icx", LVTPC_NMI, 5000))
    assert got is True
    assert lvt_after >> msrs.LVT_MASKED & 1
    # 10,000 loop instructions from -5000, plus the RDMSR of LVTPC; the enabling WRMSR is not
    # counted, WaitPmi retires nothing and the RDPMC reads before it retires.
    assert value == 10 * 1000 - 5000 + 1
    _, vector, nmi = machine.pmis[0]
    assert nmi and vector == 0
    status = machine.cpu.pmu.regs["GLOBAL_STATUS"]
    assert status & 1


def test_amd_does_not_mask_lvtpc_on_pmi() -> None:
    """AMD: the PMI is delivered and LVTPC stays unmasked."""
    (got, lvt_after, _), _ = _run(_overflow_program("amd-zen4", LVTPC_NMI, 10), "amd-zen4")
    assert got is True
    assert not lvt_after >> msrs.LVT_MASKED & 1


def test_masked_lvtpc_drops_the_pmi() -> None:
    """With LVTPC masked the overflow sets status but no PMI is delivered."""
    program = _overflow_program("intel-icx", LVTPC_NMI | 1 << msrs.LVT_MASKED, 10)
    (got, _, _), machine = _run(program)
    assert got is False
    assert machine.cpu.lapic.dropped == 1


def test_overflow_instant_is_predicted_exactly() -> None:
    """The PMI arrives at the instant the Nth event retires, not at the stream's end."""
    preset = get_preset("intel-icx")
    _, machine = _run(_overflow_program("intel-icx", 32, 5000))
    t_pmi = machine.pmis[0][0]
    # Timeline: LVTPC, counter and EVTSEL WRMSRs (the cost table's WRMSR latency each), then
    # loop(1000) at 3 cycles/iteration spreading 10,000 instructions evenly over 3,000 cycles.
    start = 3 * cycles_to_ps(cost_table("intel-icx").instruction_cycles["wrmsr"], preset.core_mhz)
    duration = cycles_to_ps(3000, preset.core_mhz)
    assert t_pmi == start + -(-5000 * duration // 10_000)


def test_lazy_counting_costs_a_handful_of_kernel_events() -> None:
    """A billion-instruction loop costs the same number of kernel events as a short one."""
    def program(n: int):  # type: ignore[no-untyped-def]
        def body():  # type: ignore[no-untyped-def]
            yield Wrmsr(msrs.IA32_PERFEVTSEL0, EN | OS | INSTRUCTIONS)
            yield Execute(loop(n))
            return (yield Rdpmc(0))
        return body
    _, m1 = _run(program(10))
    long, m2 = _run(program(100_000_000))
    assert long == 1_000_000_000  # the RDPMC reads before it retires
    assert m1.env.events_processed == m2.env.events_processed


def _freeze_program(preset: str):  # type: ignore[no-untyped-def]
    def program():  # type: ignore[no-untyped-def]
        yield Wrmsr(msrs.X2APIC_LVTPC, 32)
        yield Wrmsr(msrs.IA32_DEBUGCTL, 1 << msrs.DEBUGCTL_FREEZE_PERFMON_ON_PMI)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
        yield Wrmsr(msrs.IA32_PMC0, 0xFFFF_FFFF - 99)  # sign-extends: 100 to wrap
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, EN | OS | INT | INSTRUCTIONS)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 1)
        yield Execute(loop(1000))
        return ((yield Rdpmc(0)), (yield Rdmsr(msrs.IA32_PERF_GLOBAL_STATUS)),
                (yield Rdmsr(msrs.IA32_PERF_GLOBAL_CTRL)))
    return program


def test_freeze_perfmon_on_pmi_v4_sets_ctr_frz() -> None:
    """v4+: the PMI sets GLOBAL_STATUS.CTR_FRZ and the counter stops at its wrap point."""
    (value, status, ctrl), _ = _run(_freeze_program("intel-icx"))
    assert value == 0
    assert status >> msrs.STATUS_CTR_FRZ & 1
    assert ctrl == 1


def test_freeze_perfmon_on_pmi_v2_clears_global_ctrl() -> None:
    """v2/v3: the PMI clears GLOBAL_CTRL (legacy freeze)."""
    v2 = get_preset("intel-icx").with_caps(version=2)
    (value, status, ctrl), _ = _run(_freeze_program("v2"), v2)
    assert value == 0
    assert not status >> msrs.STATUS_CTR_FRZ & 1
    assert ctrl == 0


def test_cmask_inv_edge_on_the_rate_model() -> None:
    """CMASK=2 on 10/3 IPC counts every cycle; CMASK=4 a third; INV the rest; EDGE min."""
    cmask = lambda c: c << 24  # noqa: E731
    def program():  # type: ignore[no-untyped-def]
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
        for i, q in enumerate((cmask(2), cmask(4), cmask(4) | 1 << 23, cmask(4) | 1 << 18)):
            yield Wrmsr(msrs.IA32_PERFEVTSEL0 + i, EN | OS | INSTRUCTIONS | q)
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0xF)
        yield Execute(loop(3000))  # 30,000 instructions over 9,000 cycles: 3 1/3 per cycle
        yield Wrmsr(msrs.IA32_PERF_GLOBAL_CTRL, 0)
        counts = []
        for i in range(4):
            counts.append((yield Rdpmc(i)))
        return counts
    counts, _ = _run(program)
    # The disabling WRMSR retires 1 instruction over its latency: below every mask.
    wrmsr = cost_table("intel-icx").instruction_cycles["wrmsr"]
    assert counts[0] == 9000
    assert counts[1] == 3000
    assert counts[2] == 6000 + wrmsr
    assert counts[3] == 3000
