"""The model's event keys: the columns a workload stream provides, whatever the architecture.

A workload describes execution as counts of *event keys* (``"instructions"``,
``"branches"``...); each architecture's event tables say which key an event select counts
(``vpmu.arch.x86.events``). A key is a microarchitectural occurrence, not an encoding.
"""

from __future__ import annotations

CYCLES = "cycles"
INSTRUCTIONS = "instructions"
REF_CYCLES = "ref_cycles"
LLC_REFERENCES = "llc_references"
LLC_MISSES = "llc_misses"
BRANCHES = "branches"
BRANCH_MISSES = "branch_misses"
SLOTS = "slots"
TOPDOWN_BACKEND_BOUND = "topdown_backend_bound"
TOPDOWN_BAD_SPEC = "topdown_bad_spec"
TOPDOWN_FRONTEND_BOUND = "topdown_frontend_bound"
TOPDOWN_RETIRING = "topdown_retiring"
LBR_INSERTS = "lbr_inserts"
LOADS = "loads"
STORES = "stores"

EVENT_KEYS = (CYCLES, INSTRUCTIONS, REF_CYCLES, LLC_REFERENCES, LLC_MISSES, BRANCHES,
              BRANCH_MISSES, SLOTS, TOPDOWN_BACKEND_BOUND, TOPDOWN_BAD_SPEC,
              TOPDOWN_FRONTEND_BOUND, TOPDOWN_RETIRING, LBR_INSERTS, LOADS, STORES)
"""Every event key a workload may provide; streams are validated against it."""


