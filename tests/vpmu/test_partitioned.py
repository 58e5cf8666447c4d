"""The design ``partitioned`` (the partitioned PMU series, v8): the guest's counters live in
the hardware while its vCPU is loaded, which accesses still exit (FGT or not), the lazy
FREE -> GUEST_OWNED switch, host events squeezed out of the guest's counters, overflow
forwarding, and the host requirements."""

from __future__ import annotations

from typing import Any

import pytest

from vpmu.arch.faults import Fault
from vpmu.guest.port import Execute, Mrs, Msr
from vpmu.machine.vm import run_vm_program
from vpmu.report.results import results
from vpmu.scenario import parse_scenario
from vpmu.scenario.run import build, run
from vpmu.trace.records import PmuPartition, VmExit
from vpmu.workloads.streams import Stream

LOOP = Stream("loop", {"cycles": 10_000, "instructions": 5_000})


def _exits(program: Any, preset: str, design: str = "partitioned") -> tuple[Any, int]:
    """The program's result and how many SYS64 exits it took (a 1-vCPU VM)."""
    from vpmu.guest.os import ProgramOs
    from vpmu.host.machine import Host
    from vpmu.machine.vm import Vm, run_until_done
    from vpmu.sim import ms
    from vpmu.vpmu.design import make_design
    host = Host(preset, cpus=1, seed=0)
    host.trace.keep(True)
    vm = Vm(host, make_design(design), [ProgramOs(program)])
    assert run_until_done(host, [vm], limit_ps=ms(1000))
    exits = sum(1 for r in host.trace.records if isinstance(r, VmExit) and r.reason == "SYS64")
    return vm.vcpus[0].task.result, exits


def _counting() -> Any:
    yield Msr("PMEVTYPER0_EL0", 0x8)  # INST_RETIRED
    yield Msr("PMCNTENSET_EL0", 1)
    yield Msr("PMCR_EL0", 1)
    yield Execute(LOOP)
    return (yield Mrs("PMEVCNTR0_EL0")), (yield Mrs("PMCR_EL0"))


def test_with_fgt_counters_and_enables_do_not_exit_after_the_first_access() -> None:
    """arm-a720 (PMUv3p7: FGT): the type write exits (the first access, and FGT traps
    types); PMCNTENSET, PMCR and the counter read run on the hardware. N = 20 - 2."""
    (count, pmcr), exits = _exits(_counting, "arm-a720")
    assert count == 5_000 and pmcr >> 11 & 0x1F == 18
    assert exits == 1


def test_without_fgt_every_access_exits_but_no_perf_event_is_made() -> None:
    (count, pmcr), exits = _exits(_counting, "arm-n1")
    assert count == 5_000 and pmcr >> 11 & 0x1F == 4
    assert exits == 5


def test_counters_above_hpmn_are_undefined_and_nr_counters_lowers_hpmn() -> None:
    def program() -> Any:
        return (yield Mrs("PMEVCNTR3_EL0")), (yield Mrs("PMCR_EL0"))
    (above, pmcr), _ = _exits(program, "arm-a720", "partitioned:nr_counters=3")
    assert above is Fault.UNDEF and pmcr >> 11 & 0x1F == 3


def test_the_overflow_flags_stay_virtual_and_trap() -> None:
    def program() -> Any:
        yield Msr("PMEVCNTR0_EL0", 0xFFFF_FFF0)
        yield from _counting()
        return (yield Mrs("PMOVSSET_EL0"))
    flags, exits = _exits(program, "arm-a720")
    assert flags == 1 and exits == 3  # the first access, the type write, the PMOVSSET read


def test_reserved_host_counters_must_fit_and_the_host_must_be_vhe() -> None:
    with pytest.raises(ValueError, match="reserved_host_counters"):
        run_vm_program(_counting, preset="arm-n1", design="partitioned:reserved_host_counters=7")
    with pytest.raises(ValueError, match="VHE"):
        run_vm_program(_counting, preset="arm-a72", design="partitioned")


SCENARIO = """name = "t"
duration_ms = {ms}
[host]
preset = "arm-n1"
cpus = 1
{host}
[[vm]]
vcpus = 1
design = "{design}"
[[vm.guest]]
vcpu = "all"
workload = "compute"
tool = "{tool}"
events = ["cycles", "instructions"]
freq = 1000
"""
HOST_RECORD = """[[host_task]]
kind = "perf-record"
events = ["cycles", "instructions", "branches"]
freq = 1000
[[host_task]]
kind = "load"
cpu = 0
start_ms = 2
"""


def _results(design: str, *, host: str = HOST_RECORD, tool: str = "perf-record",
             ms: int = 10) -> tuple[dict[str, Any], list[Any]]:
    text = SCENARIO.format(ms=ms, host=host, design=design, tool=tool)
    outcome = run(build(parse_scenario(text), keep_trace=True))
    return results(outcome), list(outcome.records)


def test_a_load_squeezes_host_events_off_the_guests_counters() -> None:
    """Host perf record -a of 3 events (cycles on the cycle counter when it is free); the
    guest owns counters 0-3 and the cycle counter while loaded: host events on them move,
    and with 2 counters left one of three finds none. The vCPU shares its CPU with a
    load, so it is put and loaded again."""
    res, records = _results("partitioned")
    part = res["arm64"]["partition"]
    loads = [r for r in records if isinstance(r, PmuPartition) and r.state == "guest"]
    assert part["loads"] == len(loads) >= 2 and part["puts"] >= 1
    assert part["reserved_counters"] == 5
    assert part["host_events_moved"] == sum(r.moved for r in loads) >= 1
    assert part["host_events_lost"] == sum(r.lost for r in loads) >= 1
    assert part["pinned_warnings"] == 0  # perf record's events are flexible
    assert res["perf_calls"]["total"] == 0


def test_guest_sampling_works_through_the_forwarded_overflows() -> None:
    res, _ = _results("partitioned", host="")
    assert res["guest_pmi"]["count"] > 0
    errors = {e["event"]: e["error"] for e in res["accuracy"]["events"]}
    assert abs(errors["cycles"]) < 0.01 and abs(errors["instructions"]) < 0.01


def test_partitioned_costs_kvm_less_than_emulated_for_the_same_guest() -> None:
    emulated, _ = _results("emulated", host="")
    partitioned, _ = _results("partitioned", host="")
    assert partitioned["overhead"]["kvm_ns"] < emulated["overhead"]["kvm_ns"]
    assert partitioned["perf_calls"]["total"] == 0 < emulated["perf_calls"]["total"]


def test_a_guest_that_never_touches_the_pmu_never_owns_it() -> None:
    """No PMU access, no GUEST_OWNED: no reservation. (A Linux guest's arm_pmuv3 probes the
    PMU at boot, so any Linux guest owns it from then on.)"""
    def program() -> Any:
        yield Execute(LOOP)
        return "done"
    from vpmu.guest.os import ProgramOs
    from vpmu.host.machine import Host
    from vpmu.machine.vm import Vm, run_until_done
    from vpmu.sim import ms
    from vpmu.vpmu.design import make_design
    host = Host("arm-a720", cpus=1, seed=0)
    host.trace.keep(True)
    vm = Vm(host, make_design("partitioned"), [ProgramOs(program)])
    assert run_until_done(host, [vm], limit_ps=ms(100))
    assert vm.vcpus[0].task.result == "done"
    assert not [r for r in host.trace.records if isinstance(r, PmuPartition)]


def test_a_pinned_host_event_squeezed_out_is_the_series_warning() -> None:
    """The NMI watchdog's pinned cycles event sits on the cycle counter while no guest owns
    it; the guest's reservation takes the cycle counter, so the event moves (to an event
    counter of the host's) and the move counts as the series' pr_warn_once."""
    host = HOST_RECORD.replace('kind = "perf-record"\nevents = ["cycles", "instructions", '
                               '"branches"]\nfreq = 1000\n', 'kind = "load"\ncpu = 0\n'
                               'start_ms = 1\n')
    text = SCENARIO.format(ms=10, host=host, design="partitioned", tool="perf-record")
    text = text.replace('preset = "arm-n1"\n', 'preset = "arm-n1"\nnmi_watchdog = true\n')
    part = results(run(build(parse_scenario(text))))["arm64"]["partition"]
    assert part["pinned_warnings"] >= 1
    assert part["host_events_moved"] >= part["pinned_warnings"]
    assert part["host_events_lost"] == 0
