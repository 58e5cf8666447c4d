"""Bare-metal hardware model speed: port operations per second and simulated time per second.

Three workloads, each run 3 times (best kept), written to
``benchmarks/results/baremetal.json``:

- ``msr_ops``: a guest on intel-icx doing WRMSR / RDMSR / RDPMC round trips (each op is one
  instruction stream plus its effect: the cost of the register port itself);
- ``sysreg_ops``: the same round trip on an Arm core (arm-a72): MSR PMEVCNTR0_EL0, MRS
  PMOVSCLR_EL0, MRS PMEVCNTR0_EL0, with counter 0 counting INST_RETIRED;
- ``sampling``: a guest sampling instructions with a PMI every 100,000 instructions over a
  ``br_instr`` phase, re-arming the counter in a WaitPmi loop: how many simulated seconds of a
  profiled guest one wall-clock second buys.

Run: ``python benchmarks/bench_baremetal.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from vpmu.arch.x86 import msrs
from vpmu.guest import Execute, GuestGen, Mrs, Msr, Rdmsr, Rdpmc, WaitPmi, Wrmsr
from vpmu.machine import BareMetal
from vpmu.workloads import get_phase

EN_OS_USR_INT_INSTR = 1 << 22 | 1 << 17 | 1 << 16 | 1 << 20 | 0xC0
PERIOD = 100_000


def msr_ops(n: int) -> Any:
    """n rounds of 3 port operations."""
    def program() -> GuestGen:
        for i in range(n):
            yield Wrmsr(msrs.IA32_A_PMC0, i)
            yield Rdmsr(msrs.IA32_PERF_GLOBAL_STATUS)
            yield Rdpmc(0)
        return 3 * n
    return program


def sysreg_ops(n: int) -> Any:
    """n rounds of 3 Arm port operations, with a counter counting (as msr_ops' PMC0 is)."""
    def program() -> GuestGen:
        yield Msr("PMEVTYPER0_EL0", 0x08)
        yield Msr("PMCNTENSET_EL0", 1)
        yield Msr("PMCR_EL0", 1)
        for i in range(n):
            yield Msr("PMEVCNTR0_EL0", i)
            yield Mrs("PMOVSCLR_EL0")
            yield Mrs("PMEVCNTR0_EL0")
        return 3 * n
    return program


def sampling(pmis: int) -> Any:
    """A sampling loop: arm -PERIOD, run, wait for the PMI, unmask LVTPC, repeat."""
    chunk = get_phase("br_instr").stream(instructions=PERIOD * 4)

    def program() -> GuestGen:
        yield Wrmsr(msrs.X2APIC_LVTPC, 32)
        yield Wrmsr(msrs.IA32_PERFEVTSEL0, EN_OS_USR_INT_INSTR)
        got = 0
        while got < pmis:
            yield Wrmsr(msrs.IA32_A_PMC0, (1 << 48) - PERIOD)
            yield Execute(chunk)
            if (yield WaitPmi(0)):
                got += 1
                yield Wrmsr(msrs.X2APIC_LVTPC, 32)
        return got
    return program


def measure(program: Any, reps: int, preset: str = "intel-icx") -> dict[str, float]:
    """Best-of-reps wall time, simulated time and kernel events of one program."""
    best: dict[str, float] = {}
    for _ in range(reps):
        machine = BareMetal(preset)
        t0 = time.perf_counter()
        ops = machine.run(program)
        wall = time.perf_counter() - t0
        if not best or wall < best["wall_s"]:
            best = {"wall_s": wall, "sim_s": machine.env.now_ps / 1e12, "ops": ops,
                    "kernel_events": machine.env.events_processed}
    return best


def main() -> None:
    """Run both workloads and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--pmis", type=int, default=20_000)
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).parent / "results" / "baremetal.json")
    args = parser.parse_args()
    ops = measure(msr_ops(args.ops), 3)
    arm = measure(sysreg_ops(args.ops), 3, "arm-a72")
    samp = measure(sampling(args.pmis), 3)
    result = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "msr_ops": {**ops, "ops_per_s": ops["ops"] / ops["wall_s"]},
        "sysreg_ops": {**arm, "ops_per_s": arm["ops"] / arm["wall_s"]},
        "sampling": {**samp, "pmis_per_s": samp["ops"] / samp["wall_s"],
                     "sim_s_per_wall_s": samp["sim_s"] / samp["wall_s"]},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
