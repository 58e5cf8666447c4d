"""SPEC CPU2017 integer rate presets, from one published characterisation.

Source (the one place in the code for these facts; docs/workloads.md prints
:func:`source_table` and :func:`model_table` and a test checks it does):

    A. Limaye and T. Adegbija, "A Workload Characterization of the SPEC CPU2017 Benchmark
    Suite", IEEE ISPASS 2018, pp. 149-158. Measured with perf on an Intel Xeon E5-2650L v3
    (Haswell, Turbo Boost off), GCC 4.8.5, base tuning, one copy, ``ref`` inputs
    (benchmarks with several inputs: the average over them).

The paper gives the per-benchmark values in bar charts (Figs. 1a, 2a, 3a, 5a, 6a; raster
images) and states some of them in its text. Every value below is either stated in the text
(``TEXT`` marks it) or read off the chart: the bar's height measured in the published image
against the chart's gridlines. Reading resolution is one pixel: 0.013 IPC (Fig. 1a), 0.22
percentage points (Fig. 2a), 0.13 (Fig. 3a), 0.04 (Fig. 6a), 0.29 (Fig. 5a); the method
reproduces each value the text states to within 0.005 IPC and 0.1 point. ``0`` where the
chart shows no bar (under half a pixel: below about 0.15%).

The model's rates are derived from these (``phase``); what the source does not give is an
estimate, said so where it is set:

- ``loads_per_insn``, ``stores_per_insn``: the paper's shares of retired *micro-ops*
  (mem_uops_retired.all_loads / all_stores over uops_retired.all), used per instruction. It
  gives no micro-ops-per-instruction ratio, so this is an approximation (x86 retires at
  least one micro-op per instruction: the per-instruction rates are, if anything, higher).
- ``llc_refs_per_kinsn``: demand-load LLC references, derived as loads x L1 miss rate x L2
  miss rate (the paper's miss rates count load micro-ops: mem_load_uops_retired.*); stores,
  instruction fetches and prefetches are not in it.
- ``llc_miss_rate``: the L3 miss rate (of load micro-ops).
- ``user_fraction``: 1, an estimate: the source does not split user and kernel time; SPEC
  CPU's benchmarks are CPU-bound user code.

The suite mix ``specint2017`` runs the ten benchmarks in order, each for an equal share of
the time: the SPECrate 2017 Integer metric is the geometric mean of the ten benchmarks'
ratios, which weights each benchmark equally (and the source gives no per-benchmark
instruction count to weight by).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from vpmu.workloads.phases import Phase
from vpmu.workloads.table import Workload, WorkloadPhase

PREFIX: Final = "spec2017."
"""Preset names are ``spec2017.`` + SPEC's benchmark name: ``spec2017.505.mcf_r``."""
SUITE: Final = "specint2017"
"""The suite mix: the ten integer rate benchmarks in order, equal shares of time."""
SOURCE: Final = ("A. Limaye and T. Adegbija, \"A Workload Characterization of the SPEC "
                 "CPU2017 Benchmark Suite\", IEEE ISPASS 2018")

TEXT: Final = "*"
"""Marks a value the paper states in its text (Section IV); others are read off its charts."""


@dataclass(frozen=True, slots=True)
class Measured:
    """One benchmark's values as the source gives them (percentages as decimal strings, a
    trailing ``TEXT`` when stated in the text)."""

    name: str
    ipc: str
    """Fig. 1a: inst_retired.any / cpu_clk_unhalted.ref_tsc."""
    loads_pct: str
    """Fig. 2a: load micro-ops, % of retired micro-ops."""
    stores_pct: str
    """Fig. 2a: store micro-ops, % of retired micro-ops."""
    branches_pct: str
    """Fig. 3a: branch instructions, % of retired instructions."""
    mispredict_pct: str
    """Fig. 6a: mispredicted branches, % of branch instructions."""
    l1_miss_pct: str
    """Fig. 5a: L1 miss rate of load micro-ops, %."""
    l2_miss_pct: str
    """Fig. 5a: L2 miss rate, %."""
    l3_miss_pct: str
    """Fig. 5a: L3 miss rate, %."""

    def value(self, attr: str) -> Fraction:
        """A field as an exact number (the ``TEXT`` mark dropped)."""
        return Fraction(str(getattr(self, attr)).rstrip(TEXT))


_COLUMNS: Final = ("ipc", "loads_pct", "stores_pct", "branches_pct", "mispredict_pct",
                   "l1_miss_pct", "l2_miss_pct", "l3_miss_pct")

# name, IPC, loads %, stores %, branches %, mispredict %, L1 / L2 / L3 miss rate %
SPEC_INT_RATE: Final = tuple(Measured(*row) for row in (
    ("500.perlbench_r", "2.37", "24.8", "14.8", "18.4", "0.83", "1.2", "37.9", "1.2"),
    ("502.gcc_r", "1.40", "25.0", "12.8", "22.0", "2.03", "4.1", "46.4", "12.4"),
    ("505.mcf_r", "0.886*", "28.3", "9.7", "31.277*", "5.33", "10.0", "65.721*", "13.9"),
    ("520.omnetpp_r", "1.27", "25.7", "13.9", "23.3", "2.54", "5.3", "64.8", "11.5"),
    ("523.xalancbmk_r", "1.35", "29.151*", "6.6", "23.8", "0.53", "12.174*", "52.4", "0"),
    ("525.x264_r", "3.024*", "22.3", "6.4", "4.7", "2.76", "0.6", "17.3", "12.4"),
    ("531.deepsjeng_r", "1.78", "20.8", "9.6", "15.5", "3.67", "0.6", "27.6", "67.516*"),
    ("541.leela_r", "1.27", "22.0", "8.0", "19.0", "8.656*", "0.9", "12.1", "0"),
    ("548.exchange2_r", "2.17", "23.0", "15.911*", "11.1", "1.20", "0", "10.1", "20.6"),
    ("557.xz_r", "1.741*", "22.6", "6.0", "17.1", "4.69", "2.6", "44.8", "5.3"),
))
"""The ten SPECrate 2017 Integer benchmarks, in the order of their numbers."""

USER_FRACTION_ESTIMATE: Final = Fraction(1)
"""Estimate: the source gives no user/kernel split (see the module docstring)."""


def phase(m: Measured) -> Phase:
    """The rate phase of benchmark ``m`` (derivations in the module docstring)."""
    pct = Fraction(1, 100)
    loads = m.value("loads_pct") * pct
    return Phase(
        PREFIX + m.name, ipc=m.value("ipc"),
        branches_per_insn=m.value("branches_pct") * pct,
        branch_miss_rate=m.value("mispredict_pct") * pct,
        loads_per_insn=loads, stores_per_insn=m.value("stores_pct") * pct,
        llc_refs_per_kinsn=1000 * loads * m.value("l1_miss_pct") * pct
        * m.value("l2_miss_pct") * pct,
        llc_miss_rate=m.value("l3_miss_pct") * pct,
        user_fraction=USER_FRACTION_ESTIMATE)


def spec_workloads() -> dict[str, Workload]:
    """Each benchmark's preset, then the suite mix."""
    phases = [phase(m) for m in SPEC_INT_RATE]
    out = {p.name: Workload.single(p) for p in phases}
    out[SUITE] = Workload(SUITE, tuple(WorkloadPhase(p, Fraction(1)) for p in phases))
    return out


def _num(x: Fraction, places: int) -> str:
    return f"{float(x):.{places}f}"


def source_table() -> str:
    """The source's values as a Markdown table (``*``: stated in the paper's text)."""
    head = ("| benchmark | IPC | loads, % of µops | stores, % of µops | branches, % of "
            "insns | mispredicted, % of branches | L1 miss % | L2 miss % | L3 miss % |")
    rows = [head, "|" + "---|" * (len(_COLUMNS) + 1)]
    rows += [f"| `{m.name}` | " + " | ".join(getattr(m, c) for c in _COLUMNS) + " |"
             for m in SPEC_INT_RATE]
    return "\n".join(rows)


def model_table() -> str:
    """The preset rates the model runs, per kilo-instruction, as a Markdown table."""
    head = ("| preset | IPC | branches PKI | branch MPKI | loads PKI | stores PKI | "
            "LLC refs PKI | LLC MPKI | user fraction |")
    rows = [head, "|" + "---|" * 9]
    for m in SPEC_INT_RATE:
        p = phase(m)
        k = 1000
        rows.append(
            f"| `{p.name}` | {_num(p.ipc, 3)} | {_num(p.branches_per_insn * k, 1)} | "
            f"{_num(p.branches_per_insn * p.branch_miss_rate * k, 2)} | "
            f"{_num(p.loads_per_insn * k, 0)} | {_num(p.stores_per_insn * k, 0)} | "
            f"{_num(p.llc_refs_per_kinsn, 2)} | "
            f"{_num(p.llc_refs_per_kinsn * p.llc_miss_rate, 3)} | "
            f"{_num(p.user_fraction, 0)} (estimate) |")
    return "\n".join(rows)
