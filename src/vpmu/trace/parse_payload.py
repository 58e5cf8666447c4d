"""The payloads of ``kvm_entry``, ``kvm_exit`` and ``kvm_msr``: their TP_printk formats in
arch/x86/kvm/trace.h, read back into events.

Each payload has a fast path, one precompiled regex for the mainline layout, and a slow path
that reads the payload token by token, keyed on the field names the kernel prints rather than
on positions. The slow path accepts the older layouts and, when a payload is malformed, says
which token is wrong and what was expected (``PayloadError``, an offset into the payload that
``parse`` turns into a line and a column).
"""

from __future__ import annotations

import re
from typing import NoReturn

from vpmu.trace.parse_events import KvmEntry, KvmExit, KvmMsr

ISA_UNKNOWN = ""
"""The ``isa`` of a ``kvm_exit`` whose reason names no vendor (a number); ``parse`` replaces it
with the capture's vendor before the event leaves the importer."""

SVM_TO_VMX = {
    "interrupt": "EXTERNAL_INTERRUPT", "nmi": "EXCEPTION_NMI", "rdpmc": "RDPMC", "hlt": "HLT",
    "npf": "EPT_VIOLATION", "cpuid": "CPUID", "pause": "PAUSE_INSTRUCTION",
    "io": "IO_INSTRUCTION", "vintr": "INTERRUPT_WINDOW", "iret": "NMI_WINDOW",
    "init": "INIT_SIGNAL", "shutdown": "TRIPLE_FAULT", "vmmcall": "VMCALL",
    "hypercall": "VMCALL", "task_switch": "TASK_SWITCH", "monitor": "MONITOR_INSTRUCTION",
    "mwait": "MWAIT_INSTRUCTION", "invalid_guest_state": "INVALID_STATE",
    "cr0_sel_write": "CR_ACCESS",
}
"""SVM exit names (arch/x86/include/uapi/asm/svm.h SVM_EXIT_REASONS) and the VMX name of the
same exit (vmx.h VMX_EXIT_REASONS), so one histogram covers both vendors. ``msr`` is not here:
it is MSR_WRITE or MSR_READ by EXITINFO1. ``iret`` is NMI_WINDOW because SVM opens an NMI
window by intercepting IRET (vpmu.trace.ftrace exports NMI_WINDOW as ``iret``). Any other SVM
name is upper-cased."""

_SVM_CR_DR = re.compile(r"(?:read|write)_(cr|dr)[0-9]+")
"""SVM intercepts each control / debug register access separately; VMX has one reason each."""
_SVM_EXCP = re.compile(r"[A-Z]{2} excp")
"""SVM exception intercepts print as ``DB excp``, ``GP excp``...: VMX reports any exception as
EXCEPTION_NMI (reason 0)."""
_VMX_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_SVM_NAME = re.compile(r"[a-z][a-z0-9_]*")
_HEX = re.compile(r"[0-9a-fA-F]+")
_HEX_0X = re.compile(r"0x[0-9a-fA-F]+")
_DEC = re.compile(r"[0-9]+")
_TOKEN = re.compile(r"\S+")
_DEC_WORD = re.compile(r"[0-9]+(?=[\s,]|$)")
_ENTRY_VCPU = re.compile(r"\s*vcpu\b\s*")
_ENTRY_RIP = re.compile(r"\s*,\s*rip\s+")
_HEX_0X_WORD = re.compile(r"0x([0-9a-fA-F]+)(?=\s|$)")

_ENTRY = re.compile(r"vcpu ([0-9]+)(?:, rip 0x([0-9a-fA-F]+)(?: .*)?)?")
"""``vcpu %u, rip 0x%lx``, or the old ``vcpu %u``. Recent kernels append `` intr_info ...
error_code ...`` and an immediate-exit mark after the rip; what follows a space is ignored, as
KvmEntry has no field for it."""
_EXIT = re.compile(
    r"vcpu ([0-9]+) reason (\S.*?) rip 0x([0-9a-fA-F]+) info1 0x([0-9a-fA-F]+)"
    r" info2 0x([0-9a-fA-F]+) intr_info 0x([0-9a-fA-F]+) error_code 0x([0-9a-fA-F]+)")
"""The mainline kvm_exit layout; ``reason %s%s%s`` is the name, then VMX flags after a space."""
_MSR = re.compile(r"msr_(read|write) ([0-9a-fA-F]+) = 0x([0-9a-fA-F]+)( \(#GP\))?")
"""``msr_%s %x = 0x%llx%s``."""

_EXIT_INFO_KEYS = ("info1", "info2", "intr_info", "error_code")


class PayloadError(Exception):
    """A malformed payload: ``offset`` (0-based, into the payload) is where the bad token
    starts."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(offset, message)
        self.offset = offset
        self.message = message


class _Tokens:
    """A payload's whitespace-separated tokens, read left to right with their offsets."""

    __slots__ = ("end", "event", "i", "tokens")

    def __init__(self, event: str, text: str) -> None:
        self.event = event
        self.tokens = [(m.start(), m.group()) for m in _TOKEN.finditer(text)]
        self.end = len(text)
        self.i = 0

    def peek(self) -> str | None:
        """The next token, or None at the end of the payload."""
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def offset(self) -> int:
        """Where the next token starts (the payload's end when there is none)."""
        return self.tokens[self.i][0] if self.i < len(self.tokens) else self.end

    def take(self, what: str) -> tuple[int, str]:
        """The next token and its offset; ``what`` names it for the error at the end."""
        if self.i == len(self.tokens):
            raise PayloadError(self.end, f"{self.event}: expected {what}, got the end of the line")
        self.i += 1
        return self.tokens[self.i - 1]

    def fail(self, offset: int, what: str, got: str) -> NoReturn:
        """Raise the error for token ``got`` at ``offset``."""
        raise PayloadError(offset, f"{self.event}: expected {what}, got {got!r}")

    def word(self, word: str, what: str) -> None:
        """Consume the field name ``word``."""
        offset, token = self.take(what)
        if token != word:
            self.fail(offset, what, token)

    def number(self, pattern: re.Pattern[str], base: int, what: str) -> int:
        """Consume a number written as ``pattern`` says (``0x`` prefix included or not)."""
        offset, token = self.take(what)
        if pattern.fullmatch(token) is None:
            self.fail(offset, what, token)
        return int(token, base)


def entry(text: str, t_ps: int, cpu: int, comm: str, pid: int, line: int) -> KvmEntry:
    """A ``kvm_entry`` payload."""
    m = _ENTRY.fullmatch(text)
    if m is None:
        vcpu, rip = _entry_fields(text)
        return KvmEntry(t_ps, cpu, comm, pid, line, vcpu, rip)
    rip_text = m.group(2)
    return KvmEntry(t_ps, cpu, comm, pid, line, int(m.group(1)),
                    None if rip_text is None else int(rip_text, 16))


def _entry_fields(text: str) -> tuple[int, int | None]:
    """The vcpu and rip of a ``kvm_entry`` payload with unusual spacing, or the error. It is
    read by character, not by token: the vCPU id ends at a comma."""
    m = _ENTRY_VCPU.match(text)
    if m is None:
        _fail("kvm_entry", text, 0, "'vcpu <id>'")
    pos = m.end()
    m = _DEC_WORD.match(text, pos)
    if m is None:
        _fail("kvm_entry", text, pos, "the vCPU id in decimal")
    vcpu, pos = int(m.group()), m.end()
    m = _ENTRY_RIP.match(text, pos)
    if m is None:
        if text[pos:].strip():
            _fail("kvm_entry", text, pos, "', rip 0x<hex>' or the end of the line")
        return vcpu, None
    pos = m.end()
    m = _HEX_0X_WORD.match(text, pos)
    if m is None:
        _fail("kvm_entry", text, pos, "the guest rip as 0x<hex>")
    return vcpu, int(m.group(1), 16)


def _fail(event: str, text: str, offset: int, what: str) -> NoReturn:
    """Raise the error for the token of ``text`` at or after ``offset``."""
    m = _TOKEN.search(text, offset)
    if m is None:
        raise PayloadError(len(text), f"{event}: expected {what}, got the end of the line")
    raise PayloadError(m.start(), f"{event}: expected {what}, got {m.group()!r}")


def exit_(text: str, t_ps: int, cpu: int, comm: str, pid: int, line: int) -> KvmExit:
    """A ``kvm_exit`` payload, in any of the layouts kernels have printed."""
    m = _EXIT.fullmatch(text)
    if m is not None:
        vcpu_text, raw, rip_text, info1_text, info2_text, intr_text, error_text = m.groups()
        vcpu: int | None = int(vcpu_text)
        rip, info1, info2 = int(rip_text, 16), int(info1_text, 16), int(info2_text, 16)
        intr_info, error_code = int(intr_text, 16), int(error_text, 16)
    else:
        vcpu, raw, (rip, info1, info2, intr_info, error_code) = _exit_fields(text)
    reason, isa = reason_of(raw, info1)
    return KvmExit(t_ps, cpu, comm, pid, line, vcpu, reason, raw, isa, rip, info1, info2,
                   intr_info, error_code)


def _exit_fields(text: str) -> tuple[int | None, str, tuple[int, int, int, int, int]]:
    """The vcpu, raw reason and (rip, info1, info2, intr_info, error_code) of a kvm_exit
    payload, keyed on field names: ``vcpu`` may be missing (older kernels), the reason runs up
    to ``rip`` (VMX flags included), then come ``info1``/``info2``/``intr_info``/
    ``error_code`` as 0x-hex, or the old ``info %llx %llx`` (hex without 0x)."""
    toks = _Tokens("kvm_exit", text)
    vcpu = None
    if toks.peek() == "vcpu":
        toks.take("'vcpu'")
        vcpu = toks.number(_DEC, 10, "the vCPU id in decimal")
    toks.word("reason", "'reason <exit reason>'")
    start = toks.offset()
    end = start
    while toks.peek() not in (None, "rip"):
        offset, token = toks.take("")
        end = offset + len(token)
    if end == start:
        _fail("kvm_exit", text, start, "the exit reason")
    toks.word("rip", "'rip 0x<guest rip>'")
    values = {"rip": toks.number(_HEX_0X, 16, "the guest rip as 0x<hex>")}
    values.update(dict.fromkeys(_EXIT_INFO_KEYS, 0))
    while toks.peek() is not None:
        offset, key = toks.take("")
        if key == "info":
            values["info1"] = toks.number(_HEX, 16, "info1 in hex without 0x")
            values["info2"] = toks.number(_HEX, 16, "info2 in hex without 0x")
        elif key in _EXIT_INFO_KEYS:
            values[key] = toks.number(_HEX_0X, 16, f"{key} as 0x<hex>")
        else:
            toks.fail(offset, "info1, info2, intr_info, error_code or info", key)
    return vcpu, text[start:end], (values["rip"], values["info1"], values["info2"],
                                   values["intr_info"], values["error_code"])


def reason_of(raw: str, info1: int) -> tuple[str, str]:
    """The VMX exit-reason name and the vendor (``vmx``/``svm``, ISA_UNKNOWN for a number) of
    a reason as printed. VMX flags after the name are dropped (``raw_reason`` keeps them)."""
    name, _, rest = raw.partition(" ")
    if _SVM_EXCP.fullmatch(raw):
        return "EXCEPTION_NMI", "svm"
    if _VMX_NAME.fullmatch(name):
        return name, "vmx"
    if not rest and _SVM_NAME.fullmatch(name):
        if name == "msr":
            # SVM intercepts RDMSR and WRMSR with one exit code; EXITINFO1 is 1 for WRMSR.
            return ("MSR_WRITE" if info1 == 1 else "MSR_READ"), "svm"
        m = _SVM_CR_DR.fullmatch(name)
        if m is not None:
            return ("CR_ACCESS" if m.group(1) == "cr" else "DR_ACCESS"), "svm"
        return SVM_TO_VMX.get(name, name.upper()), "svm"
    return raw.upper(), ISA_UNKNOWN


def msr(text: str, t_ps: int, cpu: int, comm: str, pid: int, line: int) -> KvmMsr:
    """A ``kvm_msr`` payload."""
    m = _MSR.fullmatch(text)
    if m is None:
        return KvmMsr(t_ps, cpu, comm, pid, line, *_msr_fields(text))
    verb, index, value, gp = m.groups()
    return KvmMsr(t_ps, cpu, comm, pid, line, verb == "write", int(index, 16), int(value, 16),
                  gp is not None)


def _msr_fields(text: str) -> tuple[bool, int, int, bool]:
    """(write, index, value, gp) of a ``kvm_msr`` payload with unusual spacing, or the
    error."""
    toks = _Tokens("kvm_msr", text)
    offset, verb = toks.take("msr_read or msr_write")
    if verb not in ("msr_read", "msr_write"):
        toks.fail(offset, "msr_read or msr_write", verb)
    index = toks.number(_HEX, 16, "the MSR index in hex without 0x")
    toks.word("=", "'='")
    value = toks.number(_HEX_0X, 16, "the value as 0x<hex>")
    if toks.peek() is None:
        return verb == "msr_write", index, value, False
    offset, token = toks.take("")
    if token != "(#GP)" or toks.peek() is not None:
        toks.fail(offset, "' (#GP)' or the end of the line", text[offset:])
    return verb == "msr_write", index, value, True
