"""The Arm CPU presets and the Arm hosts (SoCs) built from them, as data.

Each preset's PMU is what its ID registers and PMCR_EL0 enumerate (``ArmPmuCaps``); each value
says where it comes from. ``tsc_mhz`` is the generic timer's frequency: what MRS of
CNTFRQ_EL0 returns, and the rate of CNTVCT_EL0 (x86's ``Rdtsc`` is UNDEFINED on Arm).
``pipeline_width`` is the decode width (STALL_SLOT counts slots of that width; TOPDOWN is
x86's name for the same idea).

Sources, by preset:

- ``arm-a53``: Cortex-A53 MPCore TRM (Arm DDI 0500): PMCR_EL0.N = 6 (section 12.4 "PMU
  register summary"); PMCEID0_EL0 = 0x63FFFFFF and PMCEID1_EL0 = 0x1 as AMD UG1087
  ("Zynq UltraScale+ Devices Register Reference", CEID0_EL0/CEID1_EL0 of A53_PMU) gives them
  for silicon. The TRM's Table 12-6 marks event 0x1A (MEMORY_ERROR) implemented, which would
  read 0x67FFFFFF; the silicon register reference wins here. PMUv3 (ID_AA64DFR0_EL1.PMUVer =
  1), AArch32 at every EL. Clock: RK3399's little cluster at its top operating point, 1,416 MHz
  (arch/arm64/boot/dts/rockchip/rk3399-opp.dtsi); the generic timer at 24 MHz (RK3399 TRM).
- ``arm-a72``: Cortex-A72 MPCore TRM (Arm 100095/0003), "Events" Table 11-24: the common
  events 0x00-0x05, 0x08-0x0B and 0x10-0x1E (derived PMCEID0_EL0 0x7FFF0F3F; no event of
  0x20-0x3F is listed, so PMCEID1_EL0 0: an estimate, the register's page was not found).
  N = 6 (as QEMU's cortex-a72 reset PMCR_EL0 0x41023000, target/arm/tcg/cpu64.c; the TRM's
  PMCR page was not found). PMUv3. Clock: RK3399's big cluster at 1,800 MHz.
- ``arm-n1``: Neoverse N1 (Arm 100616): PMUv3p1 (ID_AA64DFR0_EL1.PMUVer = 4), N = 6
  (PMCR_EL0 0x410C3000 as QEMU's neoverse-n1 model gives it from the TRM's D5.1). The common
  events are those Linux's perf tool lists for the core (see ``N1_EVENTS``). AArch32 at EL0
  only. Clock: Ampere Altra Q80-30, 3.0 GHz; generic timer 25 MHz. The A72's events agree
  with perf's cortex-a57-a72 JSON (0x00-0x05, 0x08-0x0B, 0x10-0x1D, plus CHAIN).
- ``arm-a520`` / ``arm-a720``: values read from silicon, ARM-software/bsa-acs issue #424 (PE
  register dump) and #438 ("Cortex-A520 + A720 systems fail test PE 1", 17 Feb 2025: "6 on
  A520, 20 on A720" event counters): ID_AA64DFR0_EL1 PMUVer = 7 (PMUv3p7) on both; N = 6 on
  the A520, 20 on the A720; PMCEID0_EL0/PMCEID1_EL0 low words 0x7E7F7FFF / 0xFFF0A07E
  (A520) and 0x7BFF7F3F / 0xFEF2AE7F (A720). Which dump row is which core is inferred from
  #438 (the primary PE carries SPE, which only the A720 may implement). Both are AArch64-only
  at every exception level (the Cortex-A520 and A720 TRMs' feature lists: the generation after
  the A710 dropped AArch32; recalled, not re-read here), so PMCR_EL0.LC is RES1 and the cycle
  counter always overflows at 64 bits. Armv9.2 cores: the generic timer runs at 1 GHz (fixed
  from Armv8.6, Arm ARM DDI 0487 D12.1.1). Clocks
  (estimates, the SoC is not named): A720 2,600 MHz, A520 1,800 MHz.
"""

from __future__ import annotations

from vpmu.arch.arm64.caps import PMUVER_V3, PMUVER_V3P1, PMUVER_V3P7, ArmPmuCaps
from vpmu.arch.arm64.events import events_of
from vpmu.arch.arm64.parts import ARM_LTD
from vpmu.arch.preset import Cluster, CpuPreset, HostPreset

N1_EVENTS = events_of(0x7FFF0F3F, 0x00F2AE7F)
"""Neoverse N1's common events 0x00-0x3F: those Linux's perf tool lists for the core
(tools/perf/pmu-events/arch/arm64/arm/neoverse-n1/*.json@v6.12, mapped to numbers with
common-and-microarch.json): 0x00-0x05, 0x08-0x0B, 0x10-0x1D, 0x20-0x26, 0x29, 0x2A, 0x2B,
0x2D, 0x2F, 0x31, 0x34-0x37; plus CHAIN (0x1E), which perf's JSON has no name for. A lower
bound: perf names no event 0x06, 0x07, 0x0C-0x0F, 0x1F, 0x27, 0x28, 0x2C, 0x32, 0x33 or 0x38,
so the JSON cannot say whether the N1 has them (its TRM's PMCEID page was not found)."""

ARM_PRESETS: tuple[CpuPreset, ...] = (
    CpuPreset(
        "arm-a53", "Cortex-A53, the RK3399's little cluster",
        ArmPmuCaps(ARM_LTD, 0xD03, PMUVER_V3, n_counters=6,
                   events=events_of(0x63FFFFFF, 0x00000001)),
        core_mhz=1416, tsc_mhz=24, pipeline_width=2),
    CpuPreset(
        "arm-a72", "Cortex-A72, the RK3399's big cluster",
        ArmPmuCaps(ARM_LTD, 0xD08, PMUVER_V3, n_counters=6,
                   events=events_of(0x7FFF0F3F, 0x00000000)),
        core_mhz=1800, tsc_mhz=24, pipeline_width=3),
    CpuPreset(
        "arm-n1", "Neoverse N1, Ampere Altra Q80-30",
        ArmPmuCaps(ARM_LTD, 0xD0C, PMUVER_V3P1, n_counters=6, aarch32_el0=True,
                   events=N1_EVENTS),
        core_mhz=3000, tsc_mhz=25, pipeline_width=4),
    CpuPreset(
        "arm-a520", "Cortex-A520, a DynamIQ SoC's little core",
        ArmPmuCaps(ARM_LTD, 0xD80, PMUVER_V3P7, n_counters=6, aarch32_el0=False,
                   events=events_of(0x7E7F7FFF, 0xFFF0A07E)),
        core_mhz=1800, tsc_mhz=1000, pipeline_width=3),
    CpuPreset(
        "arm-a720", "Cortex-A720, a DynamIQ SoC's big core",
        ArmPmuCaps(ARM_LTD, 0xD81, PMUVER_V3P7, n_counters=20, aarch32_el0=False,
                   events=events_of(0x7BFF7F3F, 0xFEF2AE7F)),
        core_mhz=2600, tsc_mhz=1000, pipeline_width=5),
)
"""The Arm CPU presets, in listing order."""

_BY_NAME = {p.name: p for p in ARM_PRESETS}

ARM_HOSTS: tuple[HostPreset, ...] = (
    # arch/arm64/boot/dts/rockchip/rk3399.dtsi@v6.12: cpu_l0-l3 (Cortex-A53) are CPUs 0-3 and
    # cpu_b0-b1 (Cortex-A72) CPUs 4-5; the pmu_a53 node precedes pmu_a72, so the A53 PMU
    # registers first (both on PPI 7, i.e. INTID 23, split by the GIC's ppi-partitions).
    HostPreset("rk3399", (Cluster((0, 1, 2, 3), _BY_NAME["arm-a53"]),
                          Cluster((4, 5), _BY_NAME["arm-a72"]))),
    # A DynamIQ SoC as bsa-acs #438 dumps it: the primary PE (CPU 0) is an A720. Estimate: 4 +
    # 4 CPUs, the A720 PMU node first.
    HostPreset("dynamiq-a720-a520", (Cluster((0, 1, 2, 3), _BY_NAME["arm-a720"]),
                                     Cluster((4, 5, 6, 7), _BY_NAME["arm-a520"]))),
)
"""The Arm hosts whose clusters carry different PMUs, in listing order."""
