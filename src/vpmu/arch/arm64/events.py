"""Arm's common architectural and microarchitectural events (Arm ARM DDI 0487, D13.12 "PMU
events and event numbers"; the numbers and names of Linux include/linux/perf/arm_pmuv3.h,
``ARMV8_PMUV3_PERFCTR_*``), and the workload event key each counts in the model.

A PMU implements a subset, which PMCEID0_EL0 / PMCEID1_EL0 enumerate (``ArmPmuCaps.events``):
bit ``e`` of PMCEID0[31:0] is event ``e`` (0x00-0x1F), of PMCEID1[31:0] event ``0x20 + e``
(0x20-0x3F); the upper halves enumerate 0x4000-0x403F (none declared here).
"""

from __future__ import annotations

from vpmu.arch import events as ev

COMMON_EVENTS: dict[int, str] = {
    0x00: "SW_INCR", 0x01: "L1I_CACHE_REFILL", 0x02: "L1I_TLB_REFILL",
    0x03: "L1D_CACHE_REFILL", 0x04: "L1D_CACHE", 0x05: "L1D_TLB_REFILL", 0x06: "LD_RETIRED",
    0x07: "ST_RETIRED", 0x08: "INST_RETIRED", 0x09: "EXC_TAKEN", 0x0A: "EXC_RETURN",
    0x0B: "CID_WRITE_RETIRED", 0x0C: "PC_WRITE_RETIRED", 0x0D: "BR_IMMED_RETIRED",
    0x0E: "BR_RETURN_RETIRED", 0x0F: "UNALIGNED_LDST_RETIRED", 0x10: "BR_MIS_PRED",
    0x11: "CPU_CYCLES", 0x12: "BR_PRED", 0x13: "MEM_ACCESS", 0x14: "L1I_CACHE",
    0x15: "L1D_CACHE_WB", 0x16: "L2D_CACHE", 0x17: "L2D_CACHE_REFILL", 0x18: "L2D_CACHE_WB",
    0x19: "BUS_ACCESS", 0x1A: "MEMORY_ERROR", 0x1B: "INST_SPEC", 0x1C: "TTBR_WRITE_RETIRED",
    0x1D: "BUS_CYCLES", 0x1E: "CHAIN", 0x1F: "L1D_CACHE_ALLOCATE",
    0x20: "L2D_CACHE_ALLOCATE", 0x21: "BR_RETIRED", 0x22: "BR_MIS_PRED_RETIRED",
    0x23: "STALL_FRONTEND", 0x24: "STALL_BACKEND", 0x25: "L1D_TLB", 0x26: "L1I_TLB",
    0x27: "L2I_CACHE", 0x28: "L2I_CACHE_REFILL", 0x29: "L3D_CACHE_ALLOCATE",
    0x2A: "L3D_CACHE_REFILL", 0x2B: "L3D_CACHE", 0x2C: "L3D_CACHE_WB", 0x2D: "L2D_TLB_REFILL",
    0x2E: "L2I_TLB_REFILL", 0x2F: "L2D_TLB", 0x30: "L2I_TLB", 0x31: "REMOTE_ACCESS",
    0x32: "LL_CACHE", 0x33: "LL_CACHE_MISS", 0x34: "DTLB_WALK", 0x35: "ITLB_WALK",
    0x36: "LL_CACHE_RD", 0x37: "LL_CACHE_MISS_RD", 0x38: "REMOTE_ACCESS_RD",
    0x39: "L1D_CACHE_LMISS_RD", 0x3A: "OP_RETIRED", 0x3B: "OP_SPEC", 0x3C: "STALL",
    0x3D: "STALL_SLOT_BACKEND", 0x3E: "STALL_SLOT_FRONTEND", 0x3F: "STALL_SLOT",
}
"""Event number -> name, 0x00-0x3F."""
BY_NAME = {name: number for number, name in COMMON_EVENTS.items()}

SW_INCR = BY_NAME["SW_INCR"]
"""Counted by writes to PMSWINC_EL0, not by execution."""
CHAIN = BY_NAME["CHAIN"]
"""An odd counter counting its even neighbour's overflows: a 64-bit pair of 32-bit counters."""
CPU_CYCLES = BY_NAME["CPU_CYCLES"]
"""What the cycle counter counts (the event a filter names for PMCCNTR_EL0)."""

COUNTS: dict[int, str] = {
    BY_NAME["CPU_CYCLES"]: ev.CYCLES,
    BY_NAME["INST_RETIRED"]: ev.INSTRUCTIONS,
    BY_NAME["BR_RETIRED"]: ev.BRANCHES,
    BY_NAME["PC_WRITE_RETIRED"]: ev.BRANCHES,
    BY_NAME["BR_MIS_PRED_RETIRED"]: ev.BRANCH_MISSES,
    BY_NAME["LD_RETIRED"]: ev.LOADS,
    BY_NAME["ST_RETIRED"]: ev.STORES,
    BY_NAME["LL_CACHE_RD"]: ev.LLC_REFERENCES,
    BY_NAME["LL_CACHE_MISS_RD"]: ev.LLC_MISSES,
}
"""The common events whose counts the model's workloads provide, and the key of each
(assumptions where the Arm and x86 notions differ: LL_CACHE_RD / LL_CACHE_MISS_RD stand for
the last-level references and misses x86 counts with LONGEST_LAT_CACHE; PC_WRITE_RETIRED,
which Linux's arm_pmuv3 maps "branches" to, counts every retired branch as BR_RETIRED does,
where the hardware counts only those that write the PC: the workloads do not split taken from
not-taken branches). Any other implemented event counts 0 in the model."""


def pmceid(events: frozenset[int]) -> tuple[int, int]:
    """PMCEID0_EL0 and PMCEID1_EL0 for the implemented common events 0x00-0x3F."""
    if any(not 0 <= e <= 0x3F for e in events):
        raise ValueError(f"common events must be 0x00-0x3F, not {sorted(events)!r}")
    ceid0 = sum(1 << e for e in events if e < 0x20)
    ceid1 = sum(1 << (e - 0x20) for e in events if e >= 0x20)
    return ceid0, ceid1


def events_of(pmceid0: int, pmceid1: int) -> frozenset[int]:
    """The common events a PMCEID0_EL0 / PMCEID1_EL0 pair (their low 32 bits) enumerates:
    bit n of PMCEID0 is event n, bit n of PMCEID1 event 0x20 + n (the inverse of ``pmceid``)."""
    words = (pmceid0 & 0xFFFF_FFFF, pmceid1 & 0xFFFF_FFFF)
    return frozenset(32 * w + n for w, word in enumerate(words) for n in range(32)
                     if word >> n & 1)
