"""Export VM-exits as kernel ftrace text: ``kvm_exit``, ``kvm_msr`` and ``kvm_entry`` lines.

The lines are what ``/sys/kernel/tracing/trace`` prints for the ``kvm`` events of a run, in the
kernel's exact format (reference/anchors_peers.md section 4), so that the tools users already
have (``perf kvm stat``-like scripts, grep, our own importer) read a simulated run like a real
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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

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


def thread_ids(records: Iterable[Record]) -> dict[tuple[str, int], int]:
    """A synthetic pid for each (vm, vcpu) thread: 1000 per VM in order of appearance."""
    vms: dict[str, int] = {}
    out: dict[tuple[str, int], int] = {}
    for r in records:
        if isinstance(r, VmExit) and (r.vm, r.vcpu) not in out:
            vm_index = vms.setdefault(r.vm, len(vms))
            out[(r.vm, r.vcpu)] = 1000 * (vm_index + 1) + r.vcpu
    return out


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


def ftrace_lines(records: Sequence[Record], *, isa: str = "vmx") -> Iterator[str]:
    """The ``kvm_exit`` / ``kvm_msr`` / ``kvm_entry`` lines of a run's VM-exits, time-ordered.

    An exit's ``kvm_msr`` line carries the exit's timestamp (the kernel traces it inside the
    handler, before the next entry); ``kvm_entry`` is at the exit's end (``t_ps + cost_ps``).
    """
    if isa not in ("vmx", "svm"):
        raise ValueError(f"isa must be 'vmx' or 'svm', not {isa!r}")
    pids = thread_ids(records)
    lines: list[tuple[int, int, str]] = []
    for seq, r in enumerate(records):
        if not isinstance(r, VmExit):
            continue
        pid, comm = pids[(r.vm, r.vcpu)], f"CPU {r.vcpu}/KVM"
        lines.append((r.t_ps, 3 * seq, _prefix(comm, pid, r.cpu, "d....", r.t_ps)
                      + "kvm_exit: " + exit_payload(r, isa)))
        if r.reason in ("MSR_READ", "MSR_WRITE"):
            lines.append((r.t_ps, 3 * seq + 1, _prefix(comm, pid, r.cpu, ".....", r.t_ps)
                          + "kvm_msr: " + msr_payload(r)))
        t_entry = r.t_ps + r.cost_ps
        lines.append((t_entry, 3 * seq + 2, _prefix(comm, pid, r.cpu, "d....", t_entry)
                      + f"kvm_entry: vcpu {r.vcpu}, rip 0x0"))
    lines.sort(key=lambda x: (x[0], x[1]))
    for _, _, text in lines:
        yield text


def ftrace_text(records: Sequence[Record], *, isa: str = "vmx") -> str:
    """A whole ``trace`` file: the header ftrace prints, then the lines."""
    body = list(ftrace_lines(records, isa=isa))
    header = (f"# tracer: nop\n#\n# entries-in-buffer/entries-written: {len(body)}/{len(body)}"
              f"   #P:{1 + max((r.cpu for r in records if isinstance(r, VmExit)), default=0)}\n#\n"
              "#                                _-----=> irqs-off/BH-disabled\n"
              "#                               / _----=> need-resched\n"
              "#                              | / _---=> hardirq/softirq\n"
              "#                              || / _--=> preempt-depth\n"
              "#                              ||| / _-=> migrate-disable\n"
              "#                              |||| /     delay\n"
              "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n"
              "#              | |         |   |||||     |         |\n")
    return header + "".join(line + "\n" for line in body)
