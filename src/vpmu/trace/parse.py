"""Import real kernel trace text of KVM events: ``kvm_entry``, ``kvm_exit`` and ``kvm_msr``.

A capture from a real host is how the model is checked against the machine it models, so the
importer reads what people actually have, in the three shapes they have it (one file is one
shape, auto-detected per line; a mix is tolerated):

ftrace
    ``/sys/kernel/tracing/trace`` or ``trace_pipe``, printed by the kernel's
    ``trace_print_context``: ``<comm>-<pid> [<cpu>] <flags> <secs>.<usecs>: <event>: <payload>``.
    The flags column is 4 to 7 characters depending on the kernel (``....``, ``d....``,
    ``.......``); with ``options/record-tgid`` a ``(<tgid>)`` column follows the pid.
trace-cmd
    ``trace-cmd report``: the same shape without the flags column (with ``-l`` a latency column
    like ``d..2.`` takes its place), event names padded, ``secs.nsecs`` with ``-t``.
perf-script
    ``perf script``: ``<comm> <tid> [<cpu>] <secs>.<usecs>: <sys>:<event>: <payload>``
    (``<pid>/<tid>`` with ``-F pid,tid``; ``secs.nsecs`` with ``--ns``).

``comm`` may contain spaces and dashes ("CPU 0/KVM", "qemu-system-x86"), so the header is
anchored on the last ``-<pid> [`` (ftrace) or the last `` <tid> [`` (perf script) before the
CPU's closing bracket: a comm cannot hold a ``]`` but the payload can. Anything that is not one
of the three known events (other events, ``#`` headers, blank lines, trace-cmd's ``cpus=8`` and
``CPU 3 is empty``, lost-event notes) is counted in ``Capture.skipped`` by name, never an error;
a known event that does not read as the kernel prints it is a ``TraceParseError`` naming the
line and column of the bad token.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from vpmu.sim import PS_PER_S
from vpmu.trace.parse_events import KvmEntry, KvmEvent, KvmExit, KvmMsr, TraceParseError
from vpmu.trace.parse_payload import ISA_UNKNOWN, PayloadError, entry, exit_, msr

__all__ = ["SKIP_BLANK", "SKIP_COMMENT", "SKIP_CPUS", "SKIP_CPU_EMPTY", "SKIP_LOST",
           "SKIP_OTHER", "Capture", "KvmEntry", "KvmEvent", "KvmExit", "KvmMsr",
           "TraceParseError", "parse_trace", "parse_trace_file"]

SKIP_BLANK = "<blank>"
SKIP_COMMENT = "<comment>"
"""``#`` lines: ftrace's ``# tracer: nop`` header, perf script's ``--header``."""
SKIP_CPUS = "<cpus=N>"
"""trace-cmd report's first line, the number of CPUs recorded."""
SKIP_CPU_EMPTY = "<CPU N is empty>"
"""trace-cmd report's note for a CPU without events."""
SKIP_LOST = "<lost events>"
"""``CPU:3 [LOST 12 EVENTS]``: the ring buffer overflowed, so the capture has a gap."""
SKIP_OTHER = "<other>"
"""Any other line that is not an event (a stack trace, a wrapped line)."""

_FTRACE = re.compile(
    r"\s*(?P<comm>[^\]]*)-(?P<pid>[0-9]+)\s+(?:\([^)]*\)\s+)?\[(?P<cpu>[^\]]*)\]\s+"
    r"(?:(?P<flags>[^\s:]+)\s+)?(?P<ts>[^\s:]+):\s+(?:(?P<sys>[^\s:]+):)?(?P<event>[^\s:]+):"
    r"\s*(?P<payload>.*)")
"""ftrace and trace-cmd. The greedy comm finds the last ``-<pid>`` before ``[<cpu>]``; cpu and
timestamp are taken loosely here and checked for known events, so that a bad one is an error
at its column instead of a silently skipped line."""
_PERF = re.compile(
    r"\s*(?P<comm>[^\]]*)\s(?:[0-9]+/)?(?P<pid>[0-9]+)\s+\[(?P<cpu>[^\]]*)\]\s+"
    r"(?P<ts>[^\s:]+):\s+(?:[0-9]+\s+)?(?:(?P<sys>[^\s:]+):)?(?P<event>[^\s:]+):"
    r"\s*(?P<payload>.*)")
"""perf script; the optional number before the event is the period (``-F period``)."""
_TIMESTAMP = re.compile(r"([0-9]+)\.([0-9]{1,12})")
"""usecs (6 digits) and nsecs (9) are what the tools print; any fraction down to the ps is
exact, so none is refused."""
_CPU = re.compile(r"[0-9]+")
_PS_PER_UNIT = [PS_PER_S // 10**digits for digits in range(13)]
"""Picoseconds per unit of a fraction with that many digits: 6 is usecs, 9 nsecs."""
_MENTION = re.compile(r"(?:^|[\s:])(kvm_entry|kvm_exit|kvm_msr):")
_CPUS = re.compile(r"cpus=[0-9]+")
_CPU_EMPTY = re.compile(r"CPU [0-9]+ is empty")
_LOST = re.compile(r"CPU:?\s*[0-9]+ \[.*\]")

_Decoder = Callable[[str, int, int, str, int, int], KvmEvent]
_DECODERS: dict[str, _Decoder] = {"kvm_entry": entry, "kvm_exit": exit_, "kvm_msr": msr}
"""The known events and the TP_printk reader of each (``parse_payload``)."""


@dataclass(frozen=True, repr=False)
class Capture:
    """The KVM events of one capture and what was ignored on the way."""

    source: str
    """The file name (or the ``source`` given), for messages."""
    format: str
    """``ftrace``, ``trace-cmd`` or ``perf-script``: the shape most event lines had, where a
    header line (``# tracer:``, ``cpus=``) tells ftrace from trace-cmd -l, whose lines are
    alike; ``ftrace`` when nothing tells."""
    events: list[KvmEvent]
    """In file order (the order the tracer printed them: time order per CPU)."""
    lines: int
    """Lines read."""
    skipped: dict[str, int]
    """Lines not imported, counted by event name as printed (``sched_switch``,
    ``kvm:kvm_userspace_msr``) or by a ``SKIP_*`` key for lines that are not events."""

    def __repr__(self) -> str:
        # A capture holds up to millions of events: show their number, not the events.
        return (f"Capture(source={self.source!r}, format={self.format!r}, "
                f"events=<{len(self.events)} events>, lines={self.lines}, "
                f"skipped={self.skipped!r})")


class _Reader:
    """Reads a capture line by line: the header of each line here, payloads in
    ``parse_payload``; keeps the counts that decide the capture's format."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.events: list[KvmEvent] = []
        self.skipped: dict[str, int] = {}
        self.lines = 0
        self.shapes = {"ftrace": 0, "trace-cmd": 0, "perf-script": 0}
        self.ftrace_header = False
        self.trace_cmd_header = False
        self.unknown_isa: list[tuple[int, KvmExit]] = []

    def feed(self, number: int, line: str) -> None:
        """Read line ``number`` (1-based, without its newline)."""
        self.lines = number
        if line.startswith("#"):
            # A header line, even one that happens to look like an event.
            self._not_an_event(number, line)
            return
        m = _FTRACE.match(line)
        if m is not None:
            self.shapes["ftrace" if m.group("flags") else "trace-cmd"] += 1
        else:
            m = _PERF.match(line)
            if m is None:
                self._not_an_event(number, line)
                return
            self.shapes["perf-script"] += 1
        sys, name = m.group("sys", "event")
        decode = _DECODERS.get(name)
        if decode is None or (sys is not None and sys != "kvm"):
            key = name if sys is None else f"{sys}:{name}"
            self.skipped[key] = self.skipped.get(key, 0) + 1
            return
        cpu, t_ps = self._context(number, m, name)
        payload = m.group("payload").rstrip()
        try:
            event = decode(payload, t_ps, cpu, m.group("comm").strip(), int(m.group("pid")),
                           number)
        except PayloadError as e:
            raise TraceParseError(self.source, number, m.start("payload") + e.offset + 1,
                                  e.message) from None
        if type(event) is KvmExit and event.isa == ISA_UNKNOWN:
            self.unknown_isa.append((len(self.events), event))
        self.events.append(event)

    def _context(self, number: int, m: re.Match[str], name: str) -> tuple[int, int]:
        """The CPU and the timestamp (ps) of a known event's line, checked."""
        cpu = m.group("cpu")
        if _CPU.fullmatch(cpu) is None:
            raise TraceParseError(self.source, number, m.start("cpu") + 1,
                                  f"{name}: expected the CPU number in decimal inside [], "
                                  f"got {cpu!r}")
        t = _TIMESTAMP.fullmatch(m.group("ts"))
        if t is None:
            raise TraceParseError(self.source, number, m.start("ts") + 1,
                                  f"{name}: expected a timestamp <secs>.<usecs> or "
                                  f"<secs>.<nsecs>, got {m.group('ts')!r}")
        secs, fraction = t.groups()
        return int(cpu), int(secs) * PS_PER_S + int(fraction) * _PS_PER_UNIT[len(fraction)]

    def _not_an_event(self, number: int, line: str) -> None:
        """Count a line without an event header; refuse one that names a known event, since
        its header must then be malformed (a missing timestamp, say)."""
        text = line.strip()
        if not text:
            key = SKIP_BLANK
        elif text[0] == "#":
            key = SKIP_COMMENT
            self.ftrace_header |= text.startswith("# tracer:")
        elif _CPUS.fullmatch(text) or _CPU_EMPTY.fullmatch(text):
            key = SKIP_CPUS if text[0] == "c" else SKIP_CPU_EMPTY
            self.trace_cmd_header = True
        elif _LOST.fullmatch(text):
            key = SKIP_LOST
        else:
            mention = _MENTION.search(line)
            if mention is not None:
                raise TraceParseError(
                    self.source, number, len(line) - len(line.lstrip()) + 1,
                    f"{mention.group(1)}: expected the header '<comm>-<pid> [<cpu>] <flags> "
                    "<secs>.<usecs>: ' (ftrace, trace-cmd) or '<comm> <tid> [<cpu>] "
                    f"<secs>.<usecs>: ' (perf script), got {line[:mention.start(1)].strip()!r}")
            key = SKIP_OTHER
        self.skipped[key] = self.skipped.get(key, 0) + 1

    def capture(self) -> Capture:
        """The capture read so far."""
        if self.unknown_isa:
            # A host has one vendor: a numeric reason takes the vendor of the named ones.
            named = [e.isa for e in self.events if type(e) is KvmExit and e.isa != ISA_UNKNOWN]
            isa = "svm" if named.count("svm") > named.count("vmx") else "vmx"
            for i, event in self.unknown_isa:
                self.events[i] = dataclasses.replace(event, isa=isa)
        return Capture(self.source, self._format(), self.events, self.lines, self.skipped)

    def _format(self) -> str:
        """The capture's shape: perf script if most event lines were, else the header lines
        decide (``# tracer:`` is ftrace, ``cpus=`` trace-cmd), else the flags column."""
        shapes = self.shapes
        if shapes["perf-script"] > shapes["ftrace"] + shapes["trace-cmd"]:
            return "perf-script"
        if self.ftrace_header or self.trace_cmd_header:
            return "ftrace" if self.ftrace_header else "trace-cmd"
        return "trace-cmd" if shapes["trace-cmd"] > shapes["ftrace"] else "ftrace"


def _lines(text: str | Iterable[str]) -> Iterable[str]:
    """The lines of ``text`` without their line ends; a str is split on newlines only (not
    on the other characters ``str.splitlines`` breaks at, which a comm may hold)."""
    if isinstance(text, str):
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        return (line.removesuffix("\r") for line in lines)
    return (line.rstrip("\r\n") for line in text)


def parse_trace(text: str | Iterable[str], source: str = "<trace>") -> Capture:
    """Read a capture given as one string or as lines (a file object, a list).

    Raises TraceParseError at the first malformed ``kvm_entry``, ``kvm_exit`` or ``kvm_msr``.
    """
    reader = _Reader(source)
    for number, line in enumerate(_lines(text), 1):
        reader.feed(number, line)
    return reader.capture()


def parse_trace_file(path: str | os.PathLike[str]) -> Capture:
    """Read a capture file. Undecodable bytes (a comm is raw bytes) become U+FFFD."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_trace(f, os.fspath(path))
