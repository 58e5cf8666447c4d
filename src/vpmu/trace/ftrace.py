"""Export VM-exits as kernel ftrace text: ``kvm_exit``, ``kvm_msr`` and ``kvm_entry`` lines.

The lines are what ``/sys/kernel/tracing/trace`` prints for the ``kvm`` events of a run, in the
kernel's exact format (the TP_printk formats of arch/x86/kvm/trace.h and ftrace's line
prefix, kernel/trace/trace_output.c), so that the tools users already have (``perf kvm
stat``-like scripts, grep, our own importer) read a simulated run like a real
capture. Where the model has no value for a field, the field is still printed, with a fixed
value:

- ``rip`` is 0: the model has no guest instruction pointer.
- ``info1``/``info2`` are 0 on VMX (MSR exits carry no exit qualification); on SVM ``info1`` is
  1 for a WRMSR intercept and 0 for RDMSR, as EXITINFO1 says.
- ``intr_info`` is set for interrupt and NMI exits (valid bit, type, vector), else 0.
- The task is the vCPU thread QEMU names ``CPU <n>/KVM``; its pid is synthetic (1000 per VM in
  order of appearance, plus the vCPU index).
- Timestamps are seconds since the start of the run with microsecond resolution, as ftrace
  prints them; sub-microsecond order is kept by emitting lines in time order.

``FtraceWriter`` builds the file as the run emits its exits, in bounded memory (``vpmu run
--ftrace-out`` subscribes it to the trace); ``ftrace_text`` feeds it a list of records.
"""

from __future__ import annotations

import heapq
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from vpmu.trace.parse_payload import SVM_TO_VMX
from vpmu.trace.records import Record, VmExit

VMX_TO_SVM = {vmx: svm for svm, vmx in reversed(SVM_TO_VMX.items())} | {
    "MSR_READ": "msr", "MSR_WRITE": "msr"}
"""The SVM exit code name KVM's trace prints for each VMX exit reason: the importer's table
read backwards (its first name where two SVM codes map to one reason), plus ``msr``, whose
direction is EXITINFO1."""

_INTR_INFO_VALID = 1 << 31
_INTR_TYPE_EXT_INTR = 0
_INTR_TYPE_NMI = 2
_NMI_VECTOR = 2


def intr_info(exit_: VmExit) -> int:
    """VMX VM-exit interruption information of an exit (SDM 25.9.2): valid, type, vector."""
    if exit_.reason == "EXCEPTION_NMI":
        return _INTR_INFO_VALID | _INTR_TYPE_NMI << 8 | _NMI_VECTOR
    if exit_.reason == "EXTERNAL_INTERRUPT" and exit_.vector >= 0:
        return _INTR_INFO_VALID | _INTR_TYPE_EXT_INTR << 8 | exit_.vector
    return 0


def _prefix(comm: str, pid: int, cpu: int, flags: str, t_ps: int) -> str:
    """trace_print_context: ``%16s-%-7d [%03d] <flags> %5lu.%06lu: ``."""
    secs, usecs = divmod(t_ps // 1_000_000, 1_000_000)
    return f"{comm:>16}-{pid:<7} [{cpu:03d}] {flags} {secs:5d}.{usecs:06d}: "


def exit_payload(exit_: VmExit, isa: str) -> str:
    """kvm_exit's TP_printk (arch/x86/kvm/trace.h, kvm_exit with the vcpu, info and
    intr_info fields)."""
    reason = VMX_TO_SVM.get(exit_.reason, exit_.reason.lower()) if isa == "svm" else exit_.reason
    info1 = int(exit_.write) if isa == "svm" and exit_.reason.startswith("MSR_") else 0
    info = intr_info(exit_) if isa == "vmx" else 0
    return (f"vcpu {exit_.vcpu} reason {reason} rip 0x0 info1 0x{info1:016x} "
            f"info2 0x{0:016x} intr_info 0x{info:08x} error_code 0x{0:08x}")


def msr_payload(exit_: VmExit) -> str:
    """kvm_msr's TP_printk: ``msr_%s %x = 0x%llx%s``."""
    verb = "write" if exit_.write else "read"
    suffix = " (#GP)" if exit_.fault else ""
    return f"msr_{verb} {exit_.msr:x} = 0x{exit_.value & (1 << 64) - 1:x}{suffix}"


HEADER = ("# tracer: nop\n#\n# entries-in-buffer/entries-written: {n}/{n}   #P:{cpus}\n#\n"
          "#                                _-----=> irqs-off/BH-disabled\n"
          "#                               / _----=> need-resched\n"
          "#                              | / _---=> hardirq/softirq\n"
          "#                              || / _--=> preempt-depth\n"
          "#                              ||| / _-=> migrate-disable\n"
          "#                              |||| /     delay\n"
          "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
          "#              | |         |   |||||     |         |\n")
"""What ftrace prints above the lines: ``n`` entries, ``cpus`` CPUs."""

RUN_LINES = 1 << 15
"""Lines held in memory before they are sorted and spilled to a temporary file (a few MB)."""
MAX_RUNS = 64
"""Spilled files merged into one when there are this many (bounds the files open at once)."""

Line = tuple[int, int, str]
"""(time ps, order among lines of the same time, text): lines sort by the first two."""


class FtraceWriter:
    """The ftrace text of a run's VM-exits, built as the exits are emitted (a trace sink).

    An exit's record comes when it ends, after later-starting exits of other CPUs, so its
    lines are not yet in time order: they are sorted in bounded memory, as sort(1) does,
    in runs of ``run_lines`` spilled to temporary files and merged when the file is written
    (``write``: the header, which counts the lines and CPUs, then every line). The thread
    pids are numbered in order of each VM's first exit.
    """

    def __init__(self, *, isa: str = "vmx", run_lines: int = RUN_LINES) -> None:
        if isa not in ("vmx", "svm"):
            raise ValueError(f"isa must be 'vmx' or 'svm', not {isa!r}")
        self.isa, self.run_lines = isa, run_lines
        self.pids: dict[tuple[str, int], int] = {}
        """A synthetic pid for each (vm, vcpu) thread: 1000 per VM, plus the vCPU index."""
        self.vms: dict[str, int] = {}
        self.exits = self.lines = 0
        self.cpus = 1
        self._held: list[Line] = []
        self._runs: list[IO[str]] = []

    def __call__(self, record: Record) -> None:
        """Take one record: a VM-exit's lines are held (and spilled in sorted runs)."""
        if isinstance(record, VmExit):
            self._held += self.exit_lines(record)
            if len(self._held) >= self.run_lines:
                self._spill()

    def exit_lines(self, r: VmExit) -> list[Line]:
        """One exit's ``kvm_exit``, ``kvm_msr`` (MSR exits) and ``kvm_entry`` lines. An exit's
        ``kvm_msr`` line carries the exit's timestamp (the kernel traces it inside the
        handler, before the next entry); ``kvm_entry`` is at the exit's end."""
        pid = self.pids.get((r.vm, r.vcpu))
        if pid is None:
            vm_index = self.vms.setdefault(r.vm, len(self.vms))
            pid = self.pids[(r.vm, r.vcpu)] = 1000 * (vm_index + 1) + r.vcpu
        seq, comm = 3 * self.exits, f"CPU {r.vcpu}/KVM"
        self.exits += 1
        self.cpus = max(self.cpus, r.cpu + 1)
        out = [(r.t_ps, seq, _prefix(comm, pid, r.cpu, "d....", r.t_ps)
                + "kvm_exit: " + exit_payload(r, self.isa))]
        if r.reason in ("MSR_READ", "MSR_WRITE"):
            out.append((r.t_ps, seq + 1, _prefix(comm, pid, r.cpu, ".....", r.t_ps)
                        + "kvm_msr: " + msr_payload(r)))
        t_entry = r.t_ps + r.cost_ps
        out.append((t_entry, seq + 2, _prefix(comm, pid, r.cpu, "d....", t_entry)
                    + f"kvm_entry: vcpu {r.vcpu}, rip 0x0"))
        self.lines += len(out)
        return out

    def _spill(self) -> None:
        """Sort the held lines into a temporary file; merge the files when there are many."""
        self._held.sort()
        self._runs.append(_spilled(self._held))
        self._held = []
        if len(self._runs) >= MAX_RUNS:
            runs, self._runs = self._runs, []
            self._runs.append(_spilled(heapq.merge(*(_read(f) for f in runs))))
            for f in runs:
                f.close()

    def sorted_lines(self) -> Iterator[str]:
        """Every line, time-ordered (ties in emission order), once: the spilled files are
        closed (and gone) when the lines have all been read."""
        self._held.sort()
        try:
            for _, _, text in heapq.merge(self._held, *(_read(f) for f in self._runs)):
                yield text
        finally:
            self.close()

    def write(self, out: IO[str]) -> None:
        """The whole ``trace`` file (once): the header ftrace prints, then the lines."""
        out.write(HEADER.format(n=self.lines, cpus=self.cpus))
        for text in self.sorted_lines():
            out.write(text + "\n")

    def close(self) -> None:
        """Drop the lines: close the spilled files (a run that failed writes no file)."""
        for f in self._runs:
            f.close()
        self._runs, self._held = [], []


def _spilled(lines: Iterable[Line]) -> IO[str]:
    """A temporary file (gone when closed) holding sorted lines as ``time order text``."""
    f = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (read back later)
    f.writelines(f"{t} {k} {text}\n" for t, k, text in lines)
    return f


def _read(f: IO[str]) -> Iterator[Line]:
    """A spilled file's lines, from its start."""
    f.seek(0)
    for line in f:
        t, k, text = line.rstrip("\n").split(" ", 2)
        yield int(t), int(k), text


def ftrace_lines(records: Iterable[Record], *, isa: str = "vmx") -> Iterator[str]:
    """The ``kvm_exit`` / ``kvm_msr`` / ``kvm_entry`` lines of a run's VM-exits, time-ordered
    (``FtraceWriter`` fed ``records``)."""
    writer = FtraceWriter(isa=isa)
    for r in records:
        writer(r)
    return writer.sorted_lines()


def ftrace_text(records: Iterable[Record], *, isa: str = "vmx") -> str:
    """A whole ``trace`` file: the header ftrace prints, then the lines."""
    writer = FtraceWriter(isa=isa)
    for r in records:
        writer(r)
    out = io.StringIO()
    writer.write(out)
    return out.getvalue()
