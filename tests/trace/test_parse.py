"""The trace importer reads real kernel text of kvm_entry / kvm_exit / kvm_msr in the three
shapes (ftrace, trace-cmd report, perf script): the reference's lines verbatim, fixture files,
old and SVM layouts, exact line:column errors, and a Hypothesis round trip through the kernel's
printf formats."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpmu.trace.parse import (
    SKIP_BLANK,
    SKIP_COMMENT,
    SKIP_CPU_EMPTY,
    SKIP_CPUS,
    SKIP_LOST,
    SKIP_OTHER,
    Capture,
    KvmEntry,
    KvmEvent,
    KvmExit,
    KvmMsr,
    TraceParseError,
    parse_trace,
    parse_trace_file,
)

DATA = Path(__file__).parent / "data"
PS_PER_US = 1_000_000
PS_PER_NS = 1_000
PS_PER_S = 10**12

# The reference's example lines (anchors_peers.md section 4), verbatim.
REF_FTRACE_EXIT = (
    " qemu-system-x86-18971   [015] d.... 95922.997039: kvm_exit: vcpu 0 reason EXCEPTION_NMI"
    " rip 0xfd0bd info1 0x0000000000000000 info2 0x0000000000000413 intr_info 0x80000306"
    " error_code 0x00000000")
REF_FTRACE_MSR = "   CPU 0/KVM-16856   [007] .......   380.398696: kvm_msr: msr_write 3a = 0x40005"
REF_PERF_MSR = ("       CPU 0/KVM 1821753 [015] 4831258.258053: kvm:kvm_msr:"
                " msr_write 6e0 = 0x10e8aebe830c9e")


def ftrace(payload: str, event: str = "kvm_exit", *, comm: str = "CPU 0/KVM", pid: int = 16856,
           flags: str = "d....", ts: str = "380.398696") -> str:
    """One ftrace line around ``payload``."""
    return f"{comm:>16}-{pid:<7} [007] {flags} {ts}: {event}: {payload}"


def only(text: str) -> KvmEvent:
    """The single event of a one-line capture."""
    capture = parse_trace(text)
    assert len(capture.events) == 1, capture
    return capture.events[0]


# -- the reference's lines ------------------------------------------------------------------


def test_reference_ftrace_exit() -> None:
    """The ftrace kvm_exit example: every field, the timestamp exact to the ps."""
    assert only(REF_FTRACE_EXIT) == KvmExit(
        t_ps=95922 * PS_PER_S + 997039 * PS_PER_US, cpu=15, comm="qemu-system-x86", pid=18971,
        line=1, vcpu=0, reason="EXCEPTION_NMI", raw_reason="EXCEPTION_NMI", isa="vmx",
        rip=0xfd0bd, info1=0, info2=0x413, intr_info=0x80000306, error_code=0)


def test_reference_ftrace_msr_with_7_flags_and_a_comm_with_spaces() -> None:
    """The ftrace kvm_msr example: comm "CPU 0/KVM", 7 flag characters, a padded timestamp."""
    assert only(REF_FTRACE_MSR) == KvmMsr(
        t_ps=380 * PS_PER_S + 398696 * PS_PER_US, cpu=7, comm="CPU 0/KVM", pid=16856, line=1,
        write=True, index=0x3A, value=0x40005, gp=False)


def test_reference_perf_script_msr() -> None:
    """The perf script example: ``<comm> <tid> [cpu]`` and the ``kvm:`` system prefix."""
    capture = parse_trace(REF_PERF_MSR)
    assert capture.format == "perf-script"
    assert capture.events == [KvmMsr(
        t_ps=4831258 * PS_PER_S + 258053 * PS_PER_US, cpu=15, comm="CPU 0/KVM", pid=1821753,
        line=1, write=True, index=0x6E0, value=0x10E8AEBE830C9E, gp=False)]


# -- fixture files: one per shape -------------------------------------------------------------


def test_ftrace_file() -> None:
    """A ``trace`` file with ftrace's header: 8 kvm events, the sched_switch and the 12 header
    lines skipped, format ftrace."""
    capture = parse_trace_file(DATA / "ftrace_vmx.txt")
    assert capture.source == str(DATA / "ftrace_vmx.txt")
    assert capture.format == "ftrace"
    assert capture.lines == 21
    assert capture.skipped == {SKIP_COMMENT: 12, "sched_switch": 1}
    assert [type(e).__name__ for e in capture.events] == [
        "KvmExit", "KvmEntry", "KvmExit", "KvmMsr", "KvmEntry", "KvmExit", "KvmMsr", "KvmEntry"]
    assert [e.line for e in capture.events] == list(range(13, 21))
    read = capture.events[6]
    assert isinstance(read, KvmMsr)
    assert (read.write, read.index, read.value, read.gp) == (False, 0x1A6, 0, True)
    entry = capture.events[1]
    assert entry == KvmEntry(95922 * PS_PER_S + 997041 * PS_PER_US, 15, "qemu-system-x86",
                             18971, 14, vcpu=0, rip=0xFD0BD)


def test_trace_cmd_file_svm_nsecs() -> None:
    """trace-cmd report -t on an AMD host: no flags column, padded event names, nanosecond
    timestamps, SVM reason names mapped, the cpus=/CPU N is empty lines counted."""
    capture = parse_trace_file(DATA / "trace_cmd_svm.txt")
    assert capture.format == "trace-cmd"
    assert capture.skipped == {SKIP_CPUS: 1, SKIP_CPU_EMPTY: 2, "kvm_userspace_msr": 1}
    exits = [e for e in capture.events if isinstance(e, KvmExit)]
    assert [(e.raw_reason, e.reason, e.isa) for e in exits] == [
        ("msr", "MSR_WRITE", "svm"), ("rdpmc", "RDPMC", "svm"),
        ("interrupt", "EXTERNAL_INTERRUPT", "svm"), ("npf", "EPT_VIOLATION", "svm")]
    assert exits[0].t_ps == 3234 * PS_PER_S + 589131203 * PS_PER_NS
    assert (exits[3].vcpu, exits[3].cpu, exits[3].pid, exits[3].info2) == (3, 3, 5615,
                                                                           0xFEE00300)
    msr = capture.events[1]
    assert isinstance(msr, KvmMsr)
    assert (msr.index, msr.value, msr.t_ps % PS_PER_S) == (0xC0010000, 0x530076,
                                                           589131950 * PS_PER_NS)


def test_perf_script_file() -> None:
    """perf script with --header: 5 kvm events, the header lines and sched:sched_switch
    skipped under their printed names."""
    capture = parse_trace_file(DATA / "perf_script.txt")
    assert capture.format == "perf-script"
    assert capture.skipped == {SKIP_COMMENT: 5, "sched:sched_switch": 1}
    assert [(type(e).__name__, e.comm, e.pid, e.cpu) for e in capture.events] == [
        (kind, "CPU 0/KVM", 1821753, 15)
        for kind in ("KvmExit", "KvmMsr", "KvmEntry", "KvmExit", "KvmEntry")]
    rdpmc = capture.events[3]
    assert isinstance(rdpmc, KvmExit)
    assert (rdpmc.reason, rdpmc.rip) == ("RDPMC", 0xFFFFFFFF81012345)


# -- header shapes ----------------------------------------------------------------------------


@pytest.mark.parametrize("comm", ["CPU 0/KVM", "qemu-system-x86", "qemu-kvm-12", "a-1-2",
                                  "<idle>", "<...>", "kworker/u16:2-e", "CPU 12/KVM"])
def test_comm_with_spaces_and_dashes(comm: str) -> None:
    """The header is anchored on the last ``-<pid> [``, so dashes and digits in comm stay."""
    event = only(ftrace("vcpu 0, rip 0x1", "kvm_entry", comm=comm, pid=4321))
    assert (event.comm, event.pid) == (comm, 4321)


@pytest.mark.parametrize("comm", ["CPU 0/KVM", "qemu-system-x86", "worker 12", "a-1"])
def test_perf_comm_with_spaces_digits_and_pid_tid(comm: str) -> None:
    """perf script: the last `` <tid> [`` ends comm; ``<pid>/<tid>`` gives the tid."""
    for tid_field in ("1821753", "1821700/1821753"):
        line = f"{comm:>16} {tid_field:>7} [015] 4831258.258053: kvm:kvm_entry: vcpu 3"
        event = only(line)
        assert (event.comm, event.pid, event.cpu) == (comm, 1821753, 15)


def test_perf_script_period_column() -> None:
    """perf script -F ...,period prints the period between the time and the event name."""
    event = only("       CPU 0/KVM 1821753 [015] 4831258.258053:          1 kvm:kvm_msr:"
                 " msr_write 6e0 = 0x10e8aebe830c9e")
    assert isinstance(event, KvmMsr)
    assert (event.pid, event.index) == (1821753, 0x6E0)


@pytest.mark.parametrize("flags", ["....", "d...", "d....", "d..2.", "dNh2.", "d..1...", "......."])
def test_flags_of_4_to_7_characters(flags: str) -> None:
    """The irq-info column varies by kernel; it is never part of comm or the timestamp."""
    event = only(ftrace("msr_read 38f = 0x0", "kvm_msr", flags=flags))
    assert (event.comm, event.t_ps) == ("CPU 0/KVM", 380 * PS_PER_S + 398696 * PS_PER_US)


@pytest.mark.parametrize("tgid", ["(1200)", "(   1200)", "(-------)"])
def test_tgid_column(tgid: str) -> None:
    """options/record-tgid adds ``(<tgid>)`` after the pid; the pid stays the thread's."""
    event = only(f" qemu-1234 {tgid} [003] d.... 12.345678: kvm_entry: vcpu 1, rip 0x10")
    assert (event.comm, event.pid, event.cpu, event.t_ps) == (
        "qemu", 1234, 3, 12 * PS_PER_S + 345678 * PS_PER_US)


@pytest.mark.parametrize(("ts", "t_ps"), [
    ("12.345678", 12_345_678_000_000),        # usecs: ftrace, trace-cmd, perf script
    ("12.345678901", 12_345_678_901_000),     # nsecs: trace-cmd -t, perf script --ns
    ("0.000001", 1_000_000),
    ("4831258.258053123", 4_831_258_258_053_123_000),
    ("98765432109.999999999", 98_765_432_109_999_999_999_000),  # beyond a double's 53 bits
])
def test_timestamps_exact(ts: str, t_ps: int) -> None:
    """secs.usecs and secs.nsecs convert to ps exactly, with no float on the way."""
    assert only(ftrace("vcpu 0", "kvm_entry", ts=ts)).t_ps == t_ps
    assert only(f"CPU 0/KVM 7 [000] {ts}: kvm:kvm_entry: vcpu 0").t_ps == t_ps


def test_trace_cmd_latency_column_and_padded_names() -> None:
    """trace-cmd report -l prints a latency column; event names are padded with spaces."""
    line = "       CPU 1/KVM-5613  [001] d..2. 3234.589131: kvm_msr:              msr_read c1 = 0x5"
    event = only(line)
    assert isinstance(event, KvmMsr)
    assert (event.pid, event.index, event.value) == (5613, 0xC1, 5)


def test_line_ends_and_iterables() -> None:
    """A str is split on newlines (CRLF tolerated); an iterable of lines keeps its newlines;
    both count lines the same way."""
    lines = [REF_FTRACE_MSR, "", REF_PERF_MSR]
    as_text = parse_trace("\r\n".join(lines) + "\r\n")
    as_lines = parse_trace(line + "\n" for line in lines)
    assert as_text.events == as_lines.events
    assert as_text.lines == as_lines.lines == 3
    assert [e.line for e in as_text.events] == [1, 3]
    assert as_text.skipped == {SKIP_BLANK: 1}


# -- kvm_exit layouts and reasons -------------------------------------------------------------


@pytest.mark.parametrize(("payload", "vcpu", "info", "intr_error"), [
    ("vcpu 2 reason HLT rip 0xffffffff81a0c6e1 info1 0x0000000000000000 info2 0x0000000000000000"
     " intr_info 0x00000000 error_code 0x00000000", 2, (0, 0), (0, 0)),
    ("vcpu 2 reason HLT rip 0xffffffff81a0c6e1 info1 0x0000000000000001"
     " info2 0x0000000000000002", 2, (1, 2), (0, 0)),
    ("reason HLT rip 0xffffffff81a0c6e1 info 1 2", None, (1, 2), (0, 0)),
    ("reason HLT rip 0xffffffff81a0c6e1 info ffffffffffffffff 0", None, (2**64 - 1, 0), (0, 0)),
    ("vcpu 2 reason HLT rip 0xffffffff81a0c6e1 info 1 2", 2, (1, 2), (0, 0)),
    ("vcpu 2 reason HLT rip 0xffffffff81a0c6e1 info1 0x1 info2 0x2 intr_info 0x800000ec"
     " error_code 0x0000000e", 2, (1, 2), (0x800000EC, 0xE)),
])
def test_exit_layouts(payload: str, vcpu: int | None, info: tuple[int, int],
                      intr_error: tuple[int, int]) -> None:
    """Old and new kvm_exit layouts are read by field name; absent fields are None or 0."""
    event = only(ftrace(payload))
    assert isinstance(event, KvmExit)
    assert (event.vcpu, event.reason, event.isa, event.rip) == (vcpu, "HLT", "vmx",
                                                                0xFFFFFFFF81A0C6E1)
    assert (event.info1, event.info2) == info
    assert (event.intr_info, event.error_code) == intr_error


def test_vmx_reason_flags_stay_in_raw_reason() -> None:
    """VMX exit-reason flags printed after the name (``%s%s%s``) are not part of the reason."""
    event = only(ftrace("vcpu 0 reason INVALID_STATE FAILED_VMENTRY rip 0x0 info1 0x0 info2 0x0"
                        " intr_info 0x0 error_code 0x0"))
    assert isinstance(event, KvmExit)
    assert (event.reason, event.raw_reason) == ("INVALID_STATE", "INVALID_STATE FAILED_VMENTRY")


SVM_CASES = [
    # (printed, info1, VMX name)
    ("msr", 0, "MSR_READ"), ("msr", 1, "MSR_WRITE"),  # EXITINFO1: 0 RDMSR, 1 WRMSR
    ("rdpmc", 0, "RDPMC"), ("interrupt", 0, "EXTERNAL_INTERRUPT"), ("nmi", 0, "EXCEPTION_NMI"),
    ("hlt", 0, "HLT"), ("npf", 6, "EPT_VIOLATION"), ("cpuid", 0, "CPUID"),
    ("pause", 0, "PAUSE_INSTRUCTION"), ("io", 0x3F80210, "IO_INSTRUCTION"),
    ("vintr", 0, "INTERRUPT_WINDOW"), ("iret", 0, "NMI_WINDOW"),
    ("write_cr4", 0, "CR_ACCESS"), ("read_dr7", 0, "DR_ACCESS"), ("GP excp", 0, "EXCEPTION_NMI"),
    ("vmgexit", 0, "VMGEXIT"), ("xsetbv", 0, "XSETBV"),
]


@pytest.mark.parametrize(("printed", "info1", "reason"), SVM_CASES)
def test_svm_reasons_map_to_vmx_names(printed: str, info1: int, reason: str) -> None:
    """SVM's lower-case names become the VMX name of the same exit; msr splits by info1."""
    event = only(ftrace(f"vcpu 1 reason {printed} rip 0xffff info1 0x{info1:016x}"
                        " info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000"))
    assert isinstance(event, KvmExit)
    assert (event.reason, event.raw_reason, event.isa) == (reason, printed, "svm")


def test_numeric_reason_keeps_text_and_takes_the_capture_vendor() -> None:
    """A reason printed as a number (unknown to the kernel's table) is upper-cased and gets
    the vendor of the capture's named reasons."""
    unknown = ftrace("vcpu 0 reason 0x403 rip 0x0 info1 0x0 info2 0x0 intr_info 0x0 error_code 0x0")
    named = ftrace("vcpu 0 reason hlt rip 0x0 info1 0x0 info2 0x0 intr_info 0x0 error_code 0x0")
    capture = parse_trace([unknown, named])
    assert [(e.reason, e.isa) for e in capture.events if isinstance(e, KvmExit)] == [
        ("0X403", "svm"), ("HLT", "svm")]
    alone = only(unknown)
    assert isinstance(alone, KvmExit)
    assert (alone.reason, alone.raw_reason, alone.isa) == ("0X403", "0x403", "vmx")


# -- kvm_msr and kvm_entry --------------------------------------------------------------------


@pytest.mark.parametrize(("payload", "expected"), [
    ("msr_read 1a6 = 0x0 (#GP)", (False, 0x1A6, 0, True)),
    ("msr_write 3a = 0x40005", (True, 0x3A, 0x40005, False)),
    ("msr_write 38f = 0x70000000f (#GP)", (True, 0x38F, 0x70000000F, True)),
    ("msr_read c0010004 = 0xffffffffffffffff", (False, 0xC0010004, 2**64 - 1, False)),
])
def test_msr_payloads(payload: str, expected: tuple[bool, int, int, bool]) -> None:
    """kvm_msr: direction, hex index without 0x, value, and the (#GP) suffix."""
    event = only(ftrace(payload, "kvm_msr"))
    assert isinstance(event, KvmMsr)
    assert (event.write, event.index, event.value, event.gp) == expected


@pytest.mark.parametrize(("payload", "vcpu", "rip"), [
    ("vcpu 3, rip 0xffffffff8107a4aa", 3, 0xFFFFFFFF8107A4AA),
    ("vcpu 3", 3, None),
    # Recent kernels append interruption info and an immediate-exit mark after the rip.
    ("vcpu 3, rip 0x10 intr_info 0x00000000 error_code 0x00000000[immediate exit]", 3, 0x10),
])
def test_entry_layouts(payload: str, vcpu: int, rip: int | None) -> None:
    """kvm_entry with and without the rip."""
    event = only(ftrace(payload, "kvm_entry"))
    assert isinstance(event, KvmEntry)
    assert (event.vcpu, event.rip) == (vcpu, rip)


# -- what is skipped --------------------------------------------------------------------------


def test_unknown_events_and_non_event_lines_are_counted() -> None:
    """Other events, headers, blank lines and trace-cmd notes are counted by name."""
    text = "\n".join([
        "# tracer: nop",
        "cpus=8",
        "CPU 3 is empty",
        "CPU:2 [LOST 1520 EVENTS]",
        "",
        ftrace("userspace wrmsr 38f = 0x1, no_gp", "kvm_userspace_msr"),
        ftrace("rip: 0x0000000000401000 reason: EPT_VIOLATION ext_inf1: 0x0", "kvm_nested_vmexit"),
        ftrace("prev_comm=a prev_pid=1", "sched_switch"),
        ftrace("prev_comm=a prev_pid=2", "sched_switch"),
        "CPU 0/KVM 7 [000] 1.000001: kvm:kvm_pmu_refresh: whatever",
        "CPU 0/KVM 7 [000] 1.000001: probe:kvm_exit: reason HLT",  # not the kvm system
        "    => vmx_handle_exit",
        REF_FTRACE_MSR,
    ])
    capture = parse_trace(text)
    assert capture.skipped == {
        SKIP_COMMENT: 1, SKIP_CPUS: 1, SKIP_CPU_EMPTY: 1, SKIP_LOST: 1, SKIP_BLANK: 1,
        "kvm_userspace_msr": 1, "kvm_nested_vmexit": 1, "sched_switch": 2,
        "kvm:kvm_pmu_refresh": 1, "probe:kvm_exit": 1, SKIP_OTHER: 1}
    assert capture.lines == 13
    assert [e.line for e in capture.events] == [13]


def test_no_kvm_events_is_a_valid_capture() -> None:
    """A capture of other events only is valid: no events, everything counted."""
    capture = parse_trace([ftrace("prev_comm=a", "sched_switch"), "# tracer: nop"])
    assert capture.events == []
    assert capture.skipped == {"sched_switch": 1, SKIP_COMMENT: 1}
    assert capture.format == "ftrace"
    empty = parse_trace("", source="empty.txt")
    assert (empty.events, empty.lines, empty.skipped, empty.source) == ([], 0, {}, "empty.txt")


def test_capture_repr_counts_events() -> None:
    """A capture's repr names its events' count, not a million events."""
    capture = parse_trace(REF_FTRACE_MSR, source="x.txt")
    assert repr(capture) == ("Capture(source='x.txt', format='ftrace', events=<1 events>, "
                             "lines=1, skipped={})")
    assert isinstance(capture, Capture)


# -- errors: first malformed known event, exact place -----------------------------------------

HEADER = " qemu-1 [003] d.... 1.000001: "
"""A 30-character ftrace header: payloads in the error table start at column 31 + len(event)
+ 2."""


def _column(event: str, payload: str, token: str) -> int:
    """The 1-based column, in the line HEADER + event: payload, of ``token``'s first occurrence
    in the payload."""
    return len(HEADER) + len(event) + 2 + payload.index(token) + 1


ERRORS = [
    # (event, payload, bad token (its column is asserted), message)
    ("kvm_msr", "msr_write 38z = 0x1", "38z",
     "kvm_msr: expected the MSR index in hex without 0x, got '38z'"),
    ("kvm_msr", "msr_frob 38f = 0x1", "msr_frob",
     "kvm_msr: expected msr_read or msr_write, got 'msr_frob'"),
    ("kvm_msr", "msr_write 0x38f = 0x1", "0x38f",
     "kvm_msr: expected the MSR index in hex without 0x, got '0x38f'"),
    ("kvm_msr", "msr_write 38f = 17", "17", "kvm_msr: expected the value as 0x<hex>, got '17'"),
    ("kvm_msr", "msr_write 38f = 0x1 (#PF)", "(#PF)",
     "kvm_msr: expected ' (#GP)' or the end of the line, got '(#PF)'"),
    ("kvm_msr", "msr_write 38f 0x1", "0x1", "kvm_msr: expected '=', got '0x1'"),
    ("kvm_exit", "vcpu 0 rip 0x1 info1 0x0", "rip",
     "kvm_exit: expected 'reason <exit reason>', got 'rip'"),
    ("kvm_exit", "vcpu 0 reason rip 0x1 info1 0x0", "rip",
     "kvm_exit: expected the exit reason, got 'rip'"),
    ("kvm_exit", "vcpu x reason HLT rip 0x1", "x",
     "kvm_exit: expected the vCPU id in decimal, got 'x'"),
    ("kvm_exit", "vcpu 0 reason HLT rip 12 info1 0x0", "12",
     "kvm_exit: expected the guest rip as 0x<hex>, got '12'"),
    ("kvm_exit", "vcpu 0 reason HLT rip 0x1 info1 0x0 bogus 0x1", "bogus",
     "kvm_exit: expected info1, info2, intr_info, error_code or info, got 'bogus'"),
    ("kvm_exit", "reason HLT rip 0x1 info 0 zz", "zz",
     "kvm_exit: expected info2 in hex without 0x, got 'zz'"),
    ("kvm_entry", "rip 0x1", "rip", "kvm_entry: expected 'vcpu <id>', got 'rip'"),
    ("kvm_entry", "vcpu 0x1", "0x1", "kvm_entry: expected the vCPU id in decimal, got '0x1'"),
    ("kvm_entry", "vcpu 1, rip 12", "12", "kvm_entry: expected the guest rip as 0x<hex>, got '12'"),
]


@pytest.mark.parametrize(("event", "payload", "token", "message"), ERRORS)
def test_payload_errors_name_line_and_column(event: str, payload: str, token: str,
                                             message: str) -> None:
    """A malformed known event is an error at the bad token, after two good lines."""
    text = f"{REF_FTRACE_MSR}\n# comment\n{HEADER}{event}: {payload}\n{HEADER}{event}: {payload}\n"
    with pytest.raises(TraceParseError) as info:
        parse_trace(text, source="cap.txt")
    error = info.value
    column = _column(event, payload, token)
    assert (error.source, error.line, error.column, error.message) == ("cap.txt", 3, column,
                                                                       message)
    assert str(error) == f"cap.txt:3:{column}: {message}"


def test_missing_field_at_the_end_of_the_line() -> None:
    """A truncated payload points just past its last character."""
    line = f"{HEADER}kvm_exit: vcpu 0 reason HLT"
    with pytest.raises(TraceParseError) as info:
        parse_trace(line)
    assert info.value.column == len(line) + 1
    assert info.value.message == "kvm_exit: expected 'rip 0x<guest rip>', got the end of the line"


@pytest.mark.parametrize(("line", "column", "message"), [
    (" qemu-1 [003] d.... 1.0000x1: kvm_entry: vcpu 1", 21,
     "kvm_entry: expected a timestamp <secs>.<usecs> or <secs>.<nsecs>, got '1.0000x1'"),
    (" qemu-1 [003] d.... 1: kvm_exit: vcpu 1", 21,
     "kvm_exit: expected a timestamp <secs>.<usecs> or <secs>.<nsecs>, got '1'"),
    (" qemu-1 [0x3] d.... 1.000001: kvm_msr: msr_read 0 = 0x0", 10,
     "kvm_msr: expected the CPU number in decimal inside [], got '0x3'"),
    ("CPU 0/KVM 7 [1a] 1.000001: kvm:kvm_entry: vcpu 1", 14,
     "kvm_entry: expected the CPU number in decimal inside [], got '1a'"),
])
def test_header_errors(line: str, column: int, message: str) -> None:
    """A bad timestamp or CPU field of a known event is an error at that field."""
    with pytest.raises(TraceParseError) as info:
        parse_trace(line)
    assert (info.value.line, info.value.column, info.value.message) == (1, column, message)


def test_known_event_with_a_missing_timestamp_is_not_skipped() -> None:
    """A line naming kvm_entry whose header does not parse is an error, not a skipped line."""
    with pytest.raises(TraceParseError) as info:
        parse_trace(["", " qemu-1 [003] d.... kvm_entry: vcpu 1"])
    assert (info.value.line, info.value.column) == (2, 2)
    assert info.value.message.startswith("kvm_entry: expected the header")


def test_errors_in_unknown_events_are_tolerated() -> None:
    """Only the three known events are checked: a bad timestamp elsewhere is just skipped."""
    capture = parse_trace(" qemu-1 [0x3] d.... 1.0000x1: kvm_userspace_msr: garbage")
    assert capture.skipped == {"kvm_userspace_msr": 1}


def test_error_is_a_value_error_that_pickles() -> None:
    """TraceParseError is a ValueError and survives pickling (multiprocessing sweeps)."""
    error = TraceParseError("a.txt", 4, 9, "kvm_msr: expected '='")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.source, copy.line, copy.column, str(copy)) == (
        "a.txt", 4, 9, "a.txt:4:9: kvm_msr: expected '='")


# -- volume -----------------------------------------------------------------------------------

VOLUME_ROUNDS = 12_500
"""Rounds of 4 lines (exit, msr, entry, sched_switch): a 50,000-line capture."""


def test_fifty_thousand_lines() -> None:
    """A generated 50k-line capture: every count and the last event's place and time."""
    lines = []
    for i in range(VOLUME_ROUNDS):
        ts = f"{1000 + i // 1000}.{i % 1000 * 1000:06d}"
        lines += [
            ftrace(f"vcpu {i % 4} reason MSR_WRITE rip 0xffffffff8107a4a8 info1 0x{0:016x}"
                   f" info2 0x{0:016x} intr_info 0x{0:08x} error_code 0x{0:08x}", ts=ts),
            ftrace(f"msr_write 38f = 0x{i:x}", "kvm_msr", ts=ts),
            ftrace(f"vcpu {i % 4}, rip 0xffffffff8107a4aa", "kvm_entry", ts=ts),
            ftrace("prev_comm=swapper/7 prev_pid=0 ==> next_comm=CPU 0/KVM", "sched_switch",
                   ts=ts),
        ]
    capture = parse_trace("\n".join(lines))
    assert capture.lines == 4 * VOLUME_ROUNDS
    assert capture.skipped == {"sched_switch": VOLUME_ROUNDS}
    kinds = [type(e) for e in capture.events]
    assert kinds.count(KvmExit) == kinds.count(KvmMsr) == kinds.count(KvmEntry) == VOLUME_ROUNDS
    last = capture.events[-1]
    assert isinstance(last, KvmEntry)
    assert (last.line, last.vcpu) == (4 * VOLUME_ROUNDS - 1, (VOLUME_ROUNDS - 1) % 4)
    assert last.t_ps == 1012 * PS_PER_S + 499_000 * PS_PER_US
    writes = [e.value for e in capture.events if isinstance(e, KvmMsr)]
    assert writes == list(range(VOLUME_ROUNDS))


# -- round trip through the kernel's printf formats -------------------------------------------

VMX_REASONS = ["EXCEPTION_NMI", "EXTERNAL_INTERRUPT", "INTERRUPT_WINDOW", "CPUID", "HLT",
               "RDPMC", "MSR_READ", "MSR_WRITE", "EPT_VIOLATION", "EPT_MISCONFIG",
               "PREEMPTION_TIMER", "APIC_WRITE", "IO_INSTRUCTION", "PAUSE_INSTRUCTION"]
SVM_REASONS = {printed: reason for printed, _, reason in SVM_CASES if printed != "msr"}
U64 = st.integers(0, 2**64 - 1)
U32 = st.integers(0, 2**32 - 1)


@dataclass(frozen=True)
class Shape:
    """How one tool prints an event's context; ``nsecs`` for trace-cmd -t / perf --ns."""

    tool: str
    flags: str
    tgid: str
    nsecs: bool
    tid_field: str  # perf script: "" or "<pid>/"

    def line(self, comm: str, pid: int, cpu: int, t_ns: int, event: str, payload: str) -> str:
        """The line as the tool prints it."""
        secs = t_ns // 10**9
        frac = f"{t_ns % 10**9:09d}" if self.nsecs else f"{t_ns % 10**9 // 1000:06d}"
        if self.tool == "perf-script":
            return (f"{comm:>16} {self.tid_field}{pid:<7} [{cpu:03d}] {secs:5d}.{frac}: "
                    f"kvm:{event}: {payload}")
        if self.tool == "ftrace":  # trace_print_context
            tgid = f"({self.tgid}) " if self.tgid else ""
            return (f"{comm:>16}-{pid:<7} {tgid}[{cpu:03d}] {self.flags} {secs:5d}.{frac}: "
                    f"{event}: {payload}")
        flags = f" {self.flags}" if self.flags else ""  # trace-cmd report [-l]
        return (f"{comm:>16}-{pid:<5} [{cpu:03d}]{flags} {secs:5d}.{frac}: "
                f"{event + ':':<20} {payload}")

    def t_ps(self, t_ns: int) -> int:
        """What the printed timestamp keeps of ``t_ns``."""
        return t_ns * PS_PER_NS if self.nsecs else t_ns // 1000 * PS_PER_US


SHAPES = st.one_of(
    st.builds(Shape, st.just("ftrace"), st.sampled_from(["....", "d....", "d..2.", "......."]),
              st.sampled_from(["", "   1200", "-------"]), st.just(False), st.just("")),
    st.builds(Shape, st.just("trace-cmd"), st.sampled_from(["", "d..2."]), st.just(""),
              st.booleans(), st.just("")),
    st.builds(Shape, st.just("perf-script"), st.just(""), st.just(""), st.booleans(),
              st.sampled_from(["", "1200/"])),
)
COMMS = st.text(st.sampled_from("abcKVMqemu-/ 0129:_.<>"), min_size=1, max_size=15).filter(
    lambda s: s == s.strip())
"""Task names as the kernel keeps them: at most 15 characters, dashes, spaces and digits."""


@st.composite
def contexts(draw: st.DrawFn) -> tuple[Shape, str, int, int, int]:
    """A shape and an event's comm, pid, cpu and time in ns."""
    return (draw(SHAPES), draw(COMMS), draw(st.integers(0, 4_194_304)),
            draw(st.integers(0, 8191)), draw(st.integers(0, 10**7 * 10**9)))


def _exit_payload(vcpu: int, printed: str, rip: int, info1: int, info2: int, intr: int,
                  error: int) -> str:
    """kvm_exit's TP_printk, mainline."""
    return (f"vcpu {vcpu} reason {printed} rip 0x{rip:x} info1 0x{info1:016x} "
            f"info2 0x{info2:016x} intr_info 0x{intr:08x} error_code 0x{error:08x}")


@settings(max_examples=300)
@given(ctx=contexts(), write=st.booleans(), index=U32, value=U64, gp=st.booleans())
def test_round_trip_msr(ctx: tuple[Shape, str, int, int, int], write: bool, index: int,
                        value: int, gp: bool) -> None:
    """kvm_msr printed with ``msr_%s %x = 0x%llx%s`` in any shape reads back the same."""
    shape, comm, pid, cpu, t_ns = ctx
    payload = f"msr_{'write' if write else 'read'} {index:x} = 0x{value:x}{' (#GP)' if gp else ''}"
    line = shape.line(comm, pid, cpu, t_ns, "kvm_msr", payload)
    capture = parse_trace(line)
    # One trace-cmd -l line is an ftrace line: only a trace-cmd header (cpus=) tells them apart.
    assert capture.format == ("ftrace" if shape.tool == "trace-cmd" and shape.flags
                              else shape.tool)
    header = {"ftrace": "# tracer: nop", "trace-cmd": "cpus=1", "perf-script": "# ========"}
    assert parse_trace([header[shape.tool], line]).format == shape.tool
    assert capture.events == [KvmMsr(shape.t_ps(t_ns), cpu, comm, pid, 1, write, index, value,
                                     gp)]


@settings(max_examples=300)
@given(ctx=contexts(), vcpu=st.integers(0, 4095), rip=st.none() | U64)
def test_round_trip_entry(ctx: tuple[Shape, str, int, int, int], vcpu: int,
                          rip: int | None) -> None:
    """kvm_entry printed as ``vcpu %u, rip 0x%lx`` or ``vcpu %u`` reads back the same."""
    shape, comm, pid, cpu, t_ns = ctx
    payload = f"vcpu {vcpu}" if rip is None else f"vcpu {vcpu}, rip 0x{rip:x}"
    line = shape.line(comm, pid, cpu, t_ns, "kvm_entry", payload)
    assert parse_trace(line).events == [KvmEntry(shape.t_ps(t_ns), cpu, comm, pid, 1, vcpu,
                                                 rip)]


@settings(max_examples=300)
@given(ctx=contexts(), vcpu=st.integers(0, 4095),
       reason=st.sampled_from(VMX_REASONS + sorted(SVM_REASONS) + ["msr"]),
       failed_vmentry=st.booleans(), old_layout=st.booleans(), rip=U64, info1=U64, info2=U64,
       intr=U32, error=U32)
def test_round_trip_exit(ctx: tuple[Shape, str, int, int, int], vcpu: int, reason: str,
                         failed_vmentry: bool, old_layout: bool, rip: int, info1: int,
                         info2: int, intr: int, error: int) -> None:
    """kvm_exit printed by mainline's TP_printk or the old ``reason %s rip 0x%lx info %llx
    %llx`` reads back the same, SVM names mapped, VMX flags kept in raw_reason."""
    shape, comm, pid, cpu, t_ns = ctx
    svm = reason in SVM_REASONS or reason == "msr"
    printed = reason + (" FAILED_VMENTRY" if failed_vmentry and not svm else "")
    if old_layout:
        payload = f"reason {printed} rip 0x{rip:x} info {info1:x} {info2:x}"
        vcpu_read, intr, error = None, 0, 0
    else:
        payload = _exit_payload(vcpu, printed, rip, info1, info2, intr, error)
        vcpu_read = vcpu
    line = shape.line(comm, pid, cpu, t_ns, "kvm_exit", payload)
    if reason == "msr":
        expected_reason = "MSR_WRITE" if info1 == 1 else "MSR_READ"
    else:
        expected_reason = SVM_REASONS.get(reason, reason)
    assert parse_trace(line).events == [KvmExit(
        shape.t_ps(t_ns), cpu, comm, pid, 1, vcpu_read, expected_reason, printed,
        "svm" if svm else "vmx", rip, info1, info2, intr, error)]


@pytest.mark.parametrize("isa", ["vmx", "svm"])
def test_reads_what_the_ftrace_exporter_writes(isa: str) -> None:
    """vpmu.trace.ftrace's simulated capture reads back: reasons (SVM names mapped back, iret
    as NMI_WINDOW), MSR accesses and their #GP, usec timestamps."""
    ftrace_export = pytest.importorskip("vpmu.trace.ftrace")
    from vpmu.trace import VmExit

    records = [VmExit(5 * PS_PER_S + 123_456_789, 2, "vm0", 1, "MSR_WRITE", msr=0x38F, write=True,
                      cost_ps=4 * PS_PER_US, value=7),
               VmExit(6 * PS_PER_S, 2, "vm0", 1, "NMI_WINDOW"),
               VmExit(7 * PS_PER_S, 3, "vm1", 0, "MSR_READ", msr=0x1A6, fault=True)]
    capture = parse_trace(ftrace_export.ftrace_text(records, isa=isa))
    assert capture.format == "ftrace"
    exits = [e for e in capture.events if isinstance(e, KvmExit)]
    assert [(e.reason, e.isa, e.vcpu, e.cpu) for e in exits] == [
        ("MSR_WRITE", isa, 1, 2), ("NMI_WINDOW", isa, 1, 2), ("MSR_READ", isa, 0, 3)]
    assert exits[0].t_ps == 5 * PS_PER_S + 123 * PS_PER_US  # ftrace prints usecs
    msrs = [(e.write, e.index, e.value, e.gp) for e in capture.events if isinstance(e, KvmMsr)]
    assert msrs == [(True, 0x38F, 7, False), (False, 0x1A6, 0, True)]
    assert sum(isinstance(e, KvmEntry) for e in capture.events) == 3
