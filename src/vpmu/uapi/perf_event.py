"""``include/uapi/linux/perf_event.h``: the ``perf_event_attr`` type and generic hardware event
ids every architecture's perf driver maps (Linux v6.6)."""

PERF_TYPE_HARDWARE = 0
"""``attr.type`` of the generic hardware events: ``config`` is a ``PERF_COUNT_HW_*`` id."""
PERF_TYPE_RAW = 4
"""``attr.type`` of raw events: ``config`` is the event select (the type x86's core PMU
registers with)."""

PERF_COUNT_HW_CPU_CYCLES = 0
PERF_COUNT_HW_INSTRUCTIONS = 1
PERF_COUNT_HW_CACHE_REFERENCES = 2
PERF_COUNT_HW_CACHE_MISSES = 3
PERF_COUNT_HW_BRANCH_INSTRUCTIONS = 4
PERF_COUNT_HW_BRANCH_MISSES = 5
PERF_COUNT_HW_BUS_CYCLES = 6
PERF_COUNT_HW_STALLED_CYCLES_FRONTEND = 7
PERF_COUNT_HW_STALLED_CYCLES_BACKEND = 8
PERF_COUNT_HW_REF_CPU_CYCLES = 9
PERF_COUNT_HW_MAX = 10
"""One past the last generic id: ``x86_pmu.max_events``; a config at or past it is -EINVAL."""

PERF_SAMPLE_BRANCH_USER = 1 << 0
"""``attr.branch_sample_type`` (enum perf_branch_sample_type_shift): user branches."""
PERF_SAMPLE_BRANCH_KERNEL = 1 << 1
PERF_SAMPLE_BRANCH_HV = 1 << 2
PERF_SAMPLE_BRANCH_ANY = 1 << 3
"""Any taken branch (``perf record -b``)."""
PERF_SAMPLE_BRANCH_ANY_CALL = 1 << 4
PERF_SAMPLE_BRANCH_ANY_RETURN = 1 << 5
PERF_SAMPLE_BRANCH_IND_CALL = 1 << 6
PERF_SAMPLE_BRANCH_CALL_STACK = 1 << 11
"""The call chain from an LBR in call-stack mode (``perf record --call-graph lbr``; KVM's
guest LBR event)."""
PERF_SAMPLE_BRANCH_NO_FLAGS = 1 << 14
PERF_SAMPLE_BRANCH_NO_CYCLES = 1 << 15
PERF_SAMPLE_BRANCH_PLM_ALL = PERF_SAMPLE_BRANCH_USER | PERF_SAMPLE_BRANCH_KERNEL | \
    PERF_SAMPLE_BRANCH_HV
"""The privilege-level bits; with none set, perf takes the event's own (exclude_user /
exclude_kernel)."""

BRANCH_SAMPLE_NAMES = {
    PERF_SAMPLE_BRANCH_USER: "USER", PERF_SAMPLE_BRANCH_KERNEL: "KERNEL",
    PERF_SAMPLE_BRANCH_HV: "HV", PERF_SAMPLE_BRANCH_ANY: "ANY",
    PERF_SAMPLE_BRANCH_ANY_CALL: "ANY_CALL", PERF_SAMPLE_BRANCH_ANY_RETURN: "ANY_RETURN",
    PERF_SAMPLE_BRANCH_IND_CALL: "IND_CALL", PERF_SAMPLE_BRANCH_CALL_STACK: "CALL_STACK",
    PERF_SAMPLE_BRANCH_NO_FLAGS: "NO_FLAGS", PERF_SAMPLE_BRANCH_NO_CYCLES: "NO_CYCLES",
}
"""The bits above by their name without the PERF_SAMPLE_BRANCH_ prefix."""


def branch_types(mask: int, *, exclude_user: bool, exclude_kernel: bool) -> tuple[str, ...]:
    """The branch types of a branch_sample_type, with the privilege levels perf_copy_attr
    fills in from the event's exclude bits when none is given."""
    if not mask & PERF_SAMPLE_BRANCH_PLM_ALL:
        mask |= 0 if exclude_user else PERF_SAMPLE_BRANCH_USER
        mask |= 0 if exclude_kernel else PERF_SAMPLE_BRANCH_KERNEL
    return tuple(name for bit, name in BRANCH_SAMPLE_NAMES.items() if mask & bit)


PERF_RECORD_BRANCH_STACKS = {
    "none": 0,
    "any": PERF_SAMPLE_BRANCH_ANY,
    "call-stack": PERF_SAMPLE_BRANCH_USER | PERF_SAMPLE_BRANCH_CALL_STACK
    | PERF_SAMPLE_BRANCH_NO_FLAGS | PERF_SAMPLE_BRANCH_NO_CYCLES,
}
"""perf record's branch-stack options and the branch_sample_type the perf tool sets: ``-b``
(any taken branch, the event's privilege levels) and ``--call-graph lbr`` (the user call stack
only: tools/perf/util/evsel.c ``__evsel__config_callchain``)."""
