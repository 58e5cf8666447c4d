"""The hand-written header reader agrees with the grammar's regular expressions.

The importer's header used to be read with the two patterns below, whose free-form comm made
them backtrack quadratically on a long garbage line. ``_header`` reads the same grammar with
forward scans only. Here the patterns are the oracle on short lines, where their cost does not
matter: on every generated line both read the same fields, or both read no event.

One difference is by design: the patterns let the CPU column hold a ``[`` (``a-1 [x [003]``
reads as CPU ``x [003``, then fails as a bad CPU number); ``_header`` takes the last ``[``
before the first ``]`` and reads no header. Either way a line naming a KVM event is an error.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.trace.parse import _FAST, _header, _scan_header

FTRACE = re.compile(
    r"\s*(?P<comm>[^\]]*)-(?P<pid>[0-9]+)\s+(?:\([^)]*\)\s+)?\[(?P<cpu>[^\]]*)\]\s+"
    r"(?:(?P<flags>[^\s:]+)\s+)?(?P<ts>[^\s:]+):\s+(?:(?P<sys>[^\s:]+):)?(?P<event>[^\s:]+):"
    r"\s*(?P<payload>.*)")
PERF = re.compile(
    r"\s*(?P<comm>[^\]]*)\s(?:[0-9]+/)?(?P<pid>[0-9]+)\s+\[(?P<cpu>[^\]]*)\]\s+"
    r"(?P<ts>[^\s:]+):\s+(?:[0-9]+\s+)?(?:(?P<sys>[^\s:]+):)?(?P<event>[^\s:]+):"
    r"\s*(?P<payload>.*)")

SLOTS = [
    ["", " ", "  ", "\t"],                                        # leading space
    ["CPU 0/KVM", "qemu-system-x86", "a b", "", "x]", "a-1 [x", "-", " "],  # comm
    ["-", " ", "  ", "", "-1 "],                                  # separator
    ["100", "3/100", "1/2/3", "x", "", "12a"],                    # pid / tid
    [" ", "  ", "", "x"],
    ["", "(100) ", "(-) ", "(a)b) ", "( "],                       # tgid
    ["[003]", "[x]", "[]", "[0", "[ [1]", "0]"],                  # cpu
    [" ", "  ", "", "\t"],
    ["", "d.... ", "...1 ", "d:x ", "d.... d "],                  # flags
    ["1.000001", "1.000001000", "x", "", "1:2"],                  # timestamp
    [": ", ":", ":  ", " : "],
    ["", "123 ", "12x "],                                         # perf's period
    ["", "kvm:", "sched:", ":", "kvm: "],                         # system
    ["kvm_exit", "kvm_msr", "x", "", "kvm_exit x"],               # event
    [": ", ":", ":  vcpu 0", " vcpu", ": a: b"],                  # payload
]
"""Each slot of the grammar, the usual spelling first (drawn half the time), then others."""


def _oracle(line: str) -> tuple[object, ...] | None:
    m = FTRACE.match(line)
    shape = None
    if m is not None:
        shape = "ftrace" if m.group("flags") else "trace-cmd"
    else:
        m = PERF.match(line)
        shape = "perf-script" if m else None
    if m is None:
        return None
    return (shape, m.group("comm").strip(), m.group("pid"), m.group("cpu"), m.start("cpu"),
            m.group("ts"), m.start("ts"), m.group("sys"), m.group("event"), m.start("payload"))


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(st.tuples(*(st.one_of(st.just(slot[0]), st.sampled_from(slot)) for slot in SLOTS))
       .map("".join))
def test_header_reads_what_the_patterns_read(line: str) -> None:
    """Same fields and positions, or no event for both (but the documented ``[`` case)."""
    want = _oracle(line)
    h = _header(line)
    got = None if h is None else (h.shape, h.comm.strip(), h.pid, h.cpu, h.cpu_at, h.ts,
                                  h.ts_at, h.sys, h.event, h.payload_at)
    if want is not None and "[" in str(want[3]):
        return  # the by-design difference of the module docstring
    assert got == want, line


@settings(max_examples=3000, derandomize=True, database=None, deadline=None)
@given(st.tuples(*(st.one_of(st.just(slot[0]), st.sampled_from(slot)) for slot in SLOTS))
       .map("".join))
def test_the_fast_pattern_reads_what_the_scans_read(line: str) -> None:
    """Where the one-pattern fast path matches, the scans give the same header."""
    if _FAST.match(line) is not None:
        assert _header(line) == _scan_header(line), line
