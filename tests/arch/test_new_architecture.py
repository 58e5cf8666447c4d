"""Adding an architecture is new code plus registry entries, and nothing else.

Everything arm64-specific below lives in this file: a skeleton PMUv3 (the cycle counter and N
event counters counting when PMCNTENSET says so), its CPU, a perf driver, a vCPU trap layer
for MRS/MSR, a bare-metal executor, register names and a design. They are registered the
way a real port would register them (an ``ARCHES`` entry, a preset, a design entry), and the
unmodified neutral layers then run a host with perf counting on it, bare metal, and a VM of
the design. Not a model of Arm: a proof that the seams are where the redesign put them.

What a real port still needs beyond new files (the gaps this test works around): the cost
tables' field names are x86's (the preset borrows intel-icx's table and prices no instruction
of its own), and the perf tool's event parser knows x86 vendors only (events are opened with
``perf_event_attr`` directly, as the kernel API does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Sequence
from typing import Any

import pytest

from vpmu.arch import events as ev
from vpmu.arch.arm64.caps import CYCLE_IDX, PMUVER_V3P5, ArmPmuCaps
from vpmu.arch.faults import Fault
from vpmu.arch.presets import PRESETS, CpuPreset
from vpmu.arch.registry import ARCHES, ArchEntry
from vpmu.guest.os import ProgramOs
from vpmu.guest.port import Execute, Mrs, Msr, Op
from vpmu.host.machine import Host
from vpmu.host.perf.attr import PerfEventAttr
from vpmu.host.perf.constraint import Constraint
from vpmu.host.perf.core import PerfSubsystem
from vpmu.host.perf.event import PerfEvent
from vpmu.host.task import Run, Task
from vpmu.hw.core import CpuCore, DeliverFn
from vpmu.hw.counting import RING_KERNEL, RING_USER, Qualifiers
from vpmu.hw.engine import CountConfig, Counter, CountingPmu
from vpmu.machine.baremetal import BareMetal
from vpmu.machine.vcpu import Vcpu
from vpmu.machine.vm import Vm, run_until_done
from vpmu.sim import Environment, Event, ms
from vpmu.uapi.perf_event import PERF_COUNT_HW_CPU_CYCLES, PERF_COUNT_HW_INSTRUCTIONS
from vpmu.vpmu import registry
from vpmu.vpmu.design import make_design
from vpmu.workloads.streams import Stream

# -- the hardware: a skeleton PMUv3 on the neutral counting engine ---------------------------
EVENT_KEYS = {0x11: ev.CYCLES, 0x08: ev.INSTRUCTIONS}
"""PMEVTYPER<n>_EL0.evtCount -> workload key (CPU_CYCLES, INST_RETIRED)."""


class ToyPmu(CountingPmu):
    """PMCNTENSET enables; the cycle counter counts cycles, event counter n its PMEVTYPER."""

    def __init__(self, preset: CpuPreset, env: Environment, on_pmi: Callable[[], None]) -> None:
        super().__init__(preset, env, on_pmi)
        caps = preset.caps
        self.counters = {i: Counter(i, caps.width(i)) for i in range(64)
                         if caps.counter_mask >> i & 1}
        self.enabled = 0
        self.evtype: dict[int, int] = {}
        self.ovs = 0

    def program(self, idx: int, evt: int) -> None:
        self.sync()
        self.evtype[idx] = evt
        self.enabled |= 1 << idx
        self.reconfigure()

    def count_config(self, c: Counter) -> CountConfig | None:
        if not self.enabled >> c.gidx & 1:
            return None
        key = ev.CYCLES if c.gidx == CYCLE_IDX else EVENT_KEYS.get(self.evtype.get(c.gidx, 0))
        return CountConfig((key,) if key else (), (RING_KERNEL, RING_USER), Qualifiers(), False)

    def _mark_overflow(self, c: Counter) -> None:
        self.ovs |= 1 << c.gidx

    def _on_pmi_raised(self) -> None:
        pass


class ToyCpu(CpuCore):
    pmu: ToyPmu

    def __init__(self, preset: CpuPreset, env: Environment, deliver: DeliverFn,
                 instruction_cycles: dict[str, int]) -> None:
        super().__init__(preset, env, ToyPmu(preset, env, on_pmi=lambda: deliver(23, False)),
                         (), instruction_cycles)


def bare_metal(core: CpuCore, op: Op) -> Generator[Event, Any, Any]:
    """MRS/MSR of PMU registers this skeleton does not implement are UNDEFINED."""
    yield from ()
    if isinstance(op, Mrs | Msr):
        return Fault.UNDEF
    raise TypeError(f"not an arm64 port operation: {op!r}")


# -- host perf: a driver over the skeleton ------------------------------------------------------
class ToyPerfDriver:
    pmu_name = "armv8_pmuv3_0"
    pmu_type = None  # a dynamic perf type
    pmi_vector = 23  # the PMU's PPI: an IRQ, not an NMI
    def __init__(self, cpu: Any) -> None:
        hw: ToyCpu = cpu.hw
        self.sysfs_events: dict[str, int] = {}
        self.pmu = hw.pmu
        self.caps = hw.preset.caps
        self.events: dict[int, PerfEvent] = {}
        self.guest = False
        self.suspended = False
        self.lbr = None  # no branch record stack

    def add(self, event: PerfEvent, idx: int) -> None:
        self.events[idx] = event
        event.hw_idx = idx
        event.prev_raw = self.pmu.counters[idx].value
        self.pmu.program(idx, event.hw_config)

    def remove(self, event: PerfEvent) -> None:
        self.read(event)
        assert event.hw_idx is not None
        del self.events[event.hw_idx]
        self.pmu.enabled &= ~(1 << event.hw_idx)
        self.pmu.reconfigure()
        event.hw_idx = None

    def arm(self, event: PerfEvent) -> None:
        pass

    def read(self, event: PerfEvent) -> int:
        assert event.hw_idx is not None
        self.pmu.sync()
        raw = self.pmu.counters[event.hw_idx].value
        delta = (raw - event.prev_raw) % (1 << self.caps.width(event.hw_idx))
        event.prev_raw = raw
        event.count += delta
        return delta

    def load_global(self) -> None:
        pass

    def set_guest(self, guest: bool) -> None:
        self.guest = guest

    def counts_in_host(self, counters: int) -> int:
        return counters

    def status(self) -> int:
        return self.pmu.ovs

    def ack(self, bits: int) -> None:
        self.pmu.ovs &= ~bits

    def clear_dirty(self) -> int:
        return 0

    def cpu_init(self) -> None:
        pass

    def pmi_done(self) -> None:
        pass

    def raw_config(self, config: int, config1: int = 0) -> int:
        return config & self.caps.event_mask

    def event_constraint(self, config: int) -> Constraint:
        """armv8pmu_get_event_idx: CPU_CYCLES may take the cycle counter, all the others."""
        events = (1 << self.caps.n_counters) - 1
        return Constraint(events | (1 << CYCLE_IDX if config == 0x11 else 0))

    def schedule(self, constraints: Sequence[Constraint],
                 previous: Sequence[int | None]) -> list[int] | None:
        taken, out = 0, []
        for c in constraints:
            free = [i for i in reversed(c.counters) if not taken >> i & 1]
            if not free:
                return None
            taken |= 1 << free[0]
            out.append(free[0])
        return out

    def hw_config(self, hw_id: int) -> int | None:
        return {PERF_COUNT_HW_CPU_CYCLES: 0x11, PERF_COUNT_HW_INSTRUCTIONS: 0x08}.get(hw_id)


# -- KVM: a trap layer and a design ------------------------------------------------------------
class ToyVcpu(Vcpu):
    IDLE_EXIT = "WFx"
    PMI_WINDOW_EXIT = "IRQ_WINDOW"

    def create_pmu(self) -> Any:
        return self.vm.design.create_vcpu(self)

    def interrupt_exit(self, kind: str) -> tuple[str, int]:
        return "IRQ", -1

    def arch_op(self, op: Op) -> Generator[Any, Any, Any]:
        """Every PMU system register traps (MDCR_EL2.TPM) and this design UNDEFs it."""
        yield from ()
        if isinstance(op, Mrs | Msr):
            return Fault.UNDEF
        raise TypeError(f"not an arm64 port operation: {op!r}")


class NoPmuVcpu:
    def handle_event(self, cpu: Any) -> Generator[Any, Any, None]:
        yield from ()

    deliver_pmi = handle_event
    load = handle_event

    def at_exit(self, cpu: Any, point: str) -> Generator[Any, Any, None]:
        yield from ()

    def instruction_retired(self) -> None:
        pass

    def sched_in(self, cpu: Any) -> int:
        return 0

    sched_out = sched_in

    def needs_load(self) -> bool:
        return False

    def fastpath_allowed(self) -> bool:
        return True


class ToyNoPmu:
    """An arm64 VM without a vPMU (no KVM_ARM_VCPU_PMU_V3)."""

    name = "arm64-none"

    def __init__(self, options: dict[str, str] | None = None) -> None:
        self.options: dict[str, object] = {}

    def guest_caps(self, host: ArmPmuCaps) -> ArmPmuCaps:
        return host.replace(n_counters=0)

    def create_vcpu(self, vcpu: Any) -> NoPmuVcpu:
        return NoPmuVcpu()


def register_names(idx: int) -> str:
    return f"PMEVCNTR{idx}_EL0"


def register_kind(idx: int) -> str | None:
    return None


def is_counter_name(name: str) -> bool:
    return name.startswith("PMEVCNTR")


PER_PMI_REGISTERS: tuple[tuple[str, str, str], ...] = ()

# -- the registry entries a port adds -------------------------------------------------------
PRESET = CpuPreset("toy-n1", "a skeleton arm64 part (Neoverse N1's PMU shape)",
                   ArmPmuCaps(0x41, 0xD0C, pmuver=PMUVER_V3P5, n_counters=6),  # type: ignore[arg-type]
                   core_mhz=2000, tsc_mhz=25, pipeline_width=4, costs="intel-icx")
"""``costs``: a stand-in; the cost tables' fields are x86's until an Arm table exists."""


@pytest.fixture
def toy_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    here = __name__
    monkeypatch.setitem(ARCHES, "arm64", ArchEntry(
        name="arm64", register_names=here, cpu_model=f"{here}:ToyCpu",
        perf_driver=f"{here}:ToyPerfDriver", vcpu=f"{here}:ToyVcpu",
        bare_metal=f"{here}:bare_metal"))
    monkeypatch.setitem(PRESETS, PRESET.name, PRESET)
    entry = registry.DesignEntry(name="arm64-none", order=9, factory=f"{here}:ToyNoPmu",
                                 arches=("arm64",))
    builtin = registry.design_entries()
    monkeypatch.setattr(registry, "design_entries", lambda: (*builtin, entry))


def loop(n: int) -> Stream:
    return Stream("loop", {ev.CYCLES: 3 * n, ev.INSTRUCTIONS: 2 * n})


@pytest.mark.usefixtures("toy_arch")
def test_host_perf_counts_on_the_new_architecture() -> None:
    host = Host("toy-n1", cpus=2)
    perf = PerfSubsystem(host)
    assert [type(d).__name__ for d in perf.drivers] == ["ToyPerfDriver"] * 2
    assert [p.name for p in perf.pmus] == ["armv8_pmuv3_0"]
    cycles = perf.open(PerfEventAttr(config=PERF_COUNT_HW_CPU_CYCLES), cpu=0)
    insns = perf.open(PerfEventAttr(config=PERF_COUNT_HW_INSTRUCTIONS), cpu=0)

    def work() -> Generator[Run, Any, None]:
        yield Run(loop(1_000_000))
    host.spawn(Task("work", work, affinity=frozenset({0})))
    host.run(ms(5))
    assert (cycles.hw_idx, insns.hw_idx) == (CYCLE_IDX, 5)
    n_cycles, n_insns = perf.read(cycles)[0], perf.read(insns)[0]
    kernel = n_insns - 2_000_000  # the context switches' kernel work: one instruction a cycle
    assert 0 < kernel < 100_000
    assert n_cycles == 3_000_000 + kernel


@pytest.mark.usefixtures("toy_arch")
def test_bare_metal_and_a_vm_of_the_new_architecture_run_the_port() -> None:
    def program() -> Generator[Op, Any, Any]:
        value = yield Mrs("PMCCNTR_EL0")
        yield Execute(loop(1000))
        wrote = yield Msr("PMCR_EL0", 1)
        return value, wrote

    assert BareMetal(PRESET).run(program) == (Fault.UNDEF, Fault.UNDEF)
    host = Host(PRESET, cpus=1)
    PerfSubsystem(host)
    vm = Vm(host, ToyNoPmu(), [ProgramOs(program)])
    assert type(vm.vcpus[0]).__name__ == "ToyVcpu"
    assert dataclasses.asdict(vm.caps)["n_counters"] == 0  # type: ignore[call-overload]
    assert run_until_done(host, [vm], limit_ps=ms(100))
    assert vm.vcpus[0].task.result == (Fault.UNDEF, Fault.UNDEF)
    assert [e.name for e in registry.designs_for("arm64")] == ["emulated", "partitioned",
                                                               "arm64-none"]
    with pytest.raises(ValueError, match="runs on x86 hosts, not on an arm64 host"):
        Vm(host, make_design("mediated"), [ProgramOs(program)])


