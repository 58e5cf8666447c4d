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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, TextIO

from vpmu.errors import InputError
from vpmu.sim import PS_PER_S
from vpmu.trace.parse_events import KvmEntry, KvmEvent, KvmExit, KvmMsr, TraceParseError
from vpmu.trace.parse_payload import ISA_UNKNOWN, PayloadError, entry, exit_, msr

__all__ = ["MAX_LINE", "SKIP_BLANK", "SKIP_COMMENT", "SKIP_CPUS", "SKIP_CPU_EMPTY",
           "SKIP_LOST", "SKIP_OTHER", "Capture", "CaptureInfo", "CaptureReader", "KvmEntry",
           "KvmEvent", "KvmExit", "KvmMsr", "TraceParseError", "open_trace", "parse_trace",
           "parse_trace_file", "read_lines", "require_trace"]

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

MAX_LINE = 1 << 20
"""The longest line read (1 MiB). Kernel trace lines are under a few KiB; a longer one is not
trace text, and refusing it keeps memory bounded whatever the file holds."""


class _Header(NamedTuple):
    """The context columns of an event line and where its fields start (0-based)."""

    shape: str
    """``ftrace`` (a flags column), ``trace-cmd`` (none) or ``perf-script``."""
    comm: str
    pid: str
    cpu: str
    cpu_at: int
    ts: str
    ts_at: int
    sys: str | None
    event: str
    payload_at: int


def _is_dec(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _skip_ws(line: str, i: int) -> int:
    n = len(line)
    while i < n and line[i].isspace():
        i += 1
    return i


def _token(line: str, i: int) -> int:
    """The end of the run of characters that are neither whitespace nor ':' from ``i``."""
    n = len(line)
    while i < n and not line[i].isspace() and line[i] != ":":
        i += 1
    return i


def _header(line: str) -> _Header | None:
    r"""Read an event line's header; None if the line is not one.

    Every step is a find or a scan that moves forward, so the time is linear in the line's
    length whatever it holds (a regex with a free-form comm backtracks quadratically on a long
    garbage line). The grammar, as the tools print it::

        ftrace     comm-pid \s+ [(tgid) \s+] [cpu] \s+ [flags \s+] ts: \s+ [sys:]event: payload
        trace-cmd  the same without flags
        perf       comm \s [pid/]tid \s+ [cpu] \s+ ts: \s+ [period \s+] [sys:]event: payload

    ``comm`` cannot hold ``]``, so the CPU column is the last ``[`` before the first ``]``.
    The common ftrace line is read by one possessive pattern first (``_FAST``); any other is
    read by the scans of ``_scan_header``.
    """
    m = _FAST.match(line)
    if m is not None:
        return _Header("ftrace" if m["flags"] else "trace-cmd", m["comm"], m["pid"], m["cpu"],
                       m.start("cpu"), m["ts"], m.start("ts"), m["sys"], m["event"], m.end())
    return _scan_header(line)


_FAST = re.compile(
    r"\s*+(?P<comm>[^\[\]]*?)-(?P<pid>[0-9]++)\s++(?:\([^()\[\]]*+\)\s++)?"
    r"\[(?P<cpu>[0-9]++)\]\s++(?:(?P<flags>[^\s:]++)\s++)?(?P<ts>[^\s:]++):\s++"
    r"(?:(?P<sys>[^\s:]++):)?(?P<event>[^\s:]++):\s*+")
"""An ftrace or trace-cmd line whose comm holds no bracket, with a decimal CPU. The comm is
lazy and every other run possessive, and no bracket can be skipped, so each start of the comm's
``-<pid>`` is tried once and fails within its own run: linear time. On the lines it matches it
reads what ``_scan_header`` reads (tests/trace/test_parse_header_oracle.py)."""


def _scan_header(line: str) -> _Header | None:
    """``_header`` by forward scans only, for every shape."""
    close = line.find("]")
    if close < 0:
        return None
    open_ = line.rfind("[", 0, close)
    if open_ <= 0 or not line[open_ - 1].isspace():
        return None
    head = line[:open_].rstrip()
    cpu = line[open_ + 1:close]
    ftrace = _ftrace_head(head)
    if ftrace is not None:
        return _tail(line, close + 1, "ftrace", *ftrace, cpu, open_ + 1)
    perf = _perf_head(head)
    if perf is not None:
        return _tail(line, close + 1, "perf-script", *perf, cpu, open_ + 1)
    return None


def _ftrace_head(head: str) -> tuple[str, str] | None:
    """``comm-pid`` with an optional `` (tgid)`` after it: (comm, pid)."""
    if head.endswith(")"):
        paren = head.rfind("(")
        if paren <= 0 or ")" in head[paren + 1:-1] or not head[paren - 1].isspace():
            return None
        head = head[:paren].rstrip()
    comm, dash, pid = head.rpartition("-")
    return (comm.lstrip(), pid) if dash and _is_dec(pid) else None


def _perf_head(head: str) -> tuple[str, str] | None:
    """``comm tid`` or ``comm pid/tid``: (comm, tid)."""
    i = len(head) - 1
    while i >= 0 and not head[i].isspace():
        i -= 1
    if i < 0:
        return None
    pid, slash, tid = head[i + 1:].rpartition("/")
    if (slash and not _is_dec(pid)) or not _is_dec(tid):
        return None
    return head[:i].lstrip(), tid


def _tail(line: str, i: int, shape: str, comm: str, pid: str, cpu: str, cpu_at: int
          ) -> _Header | None:
    """The columns after ``[cpu]``: flags (ftrace), the timestamp, a period (perf script),
    then ``[sys:]event:`` and the payload."""
    if i >= len(line) or not line[i].isspace():
        return None
    i = _skip_ws(line, i)
    end = _token(line, i)
    if end == i:
        return None
    ts_at = i
    if shape == "ftrace" and end < len(line) and line[end] != ":":
        ts_at = _skip_ws(line, end)  # a flags column: the timestamp follows
        end = _token(line, ts_at)
        if end == ts_at:
            return None
    else:
        shape = "trace-cmd" if shape == "ftrace" else shape
    if end >= len(line) or line[end] != ":" or end + 1 >= len(line) \
            or not line[end + 1].isspace():
        return None
    ts = line[ts_at:end]
    i = _skip_ws(line, end + 1)
    if shape == "perf-script":
        period_end = _token(line, i)
        if period_end > i and _is_dec(line[i:period_end]) and period_end < len(line) \
                and line[period_end].isspace():
            i = _skip_ws(line, period_end)
    return _event(line, i, shape, comm, pid, cpu, cpu_at, ts, ts_at)


def _event(line: str, i: int, shape: str, comm: str, pid: str, cpu: str, cpu_at: int,
           ts: str, ts_at: int) -> _Header | None:
    """``[sys:]event:`` at ``i`` and the payload after it."""
    end = _token(line, i)
    if end == i or end >= len(line) or line[end] != ":":
        return None
    sys, event, after = None, line[i:end], end + 1
    second = _token(line, after)
    if second > after and second < len(line) and line[second] == ":":
        sys, event, after = event, line[after:second], second + 1
    return _Header(shape, comm, pid, cpu, cpu_at, ts, ts_at, sys, event,
                   _skip_ws(line, after))


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


@dataclass(frozen=True)
class CaptureInfo:
    """What a capture was, without its events: what a streaming reader knows at its end."""

    source: str
    """The file name (or the ``source`` given), for messages."""
    format: str
    """``ftrace``, ``trace-cmd`` or ``perf-script``: the shape most event lines had, where a
    header line (``# tracer:``, ``cpus=``) tells ftrace from trace-cmd -l, whose lines are
    alike; ``ftrace`` when nothing tells."""
    lines: int
    """Lines read."""
    skipped: dict[str, int]
    """Lines not imported, counted by event name as printed (``sched_switch``,
    ``kvm:kvm_userspace_msr``) or by a ``SKIP_*`` key for lines that are not events."""
    counts: dict[str, int]
    """Imported events by tracepoint name (``kvm_exit``, ``kvm_entry``, ``kvm_msr``)."""
    isa: str
    """``vmx`` or ``svm``: the vendor of most named exit reasons (``vmx`` when none)."""


@dataclass(frozen=True, repr=False)
class Capture:
    """The KVM events of one capture and what was ignored on the way."""

    source: str
    """The file name (or the ``source`` given), for messages."""
    format: str
    """``ftrace``, ``trace-cmd`` or ``perf-script`` (see :class:`CaptureInfo`)."""
    events: list[KvmEvent]
    """In file order (the order the tracer printed them: time order per CPU)."""
    lines: int
    """Lines read."""
    skipped: dict[str, int]
    """Lines not imported (see :class:`CaptureInfo`)."""
    isa: str = "vmx"
    """The capture's vendor (see :class:`CaptureInfo`)."""

    @property
    def info(self) -> CaptureInfo:
        """The capture without its events."""
        counts: dict[str, int] = {}
        for e in self.events:
            name = _TRACEPOINT[type(e)]
            counts[name] = counts.get(name, 0) + 1
        return CaptureInfo(self.source, self.format, self.lines, dict(self.skipped), counts,
                           self.isa)

    def __repr__(self) -> str:
        # A capture holds up to millions of events: show their number, not the events.
        return (f"Capture(source={self.source!r}, format={self.format!r}, "
                f"events=<{len(self.events)} events>, lines={self.lines}, "
                f"skipped={self.skipped!r})")


_TRACEPOINT: dict[type, str] = {KvmEntry: "kvm_entry", KvmExit: "kvm_exit", KvmMsr: "kvm_msr"}


class CaptureReader:
    """Reads a capture line by line in constant memory: the header of each line here,
    payloads in ``parse_payload``; keeps the counts that decide the capture's format.

    ``events(lines)`` yields the KVM events as they are read. A ``kvm_exit`` whose reason
    is a number names no vendor: it is yielded with ``isa`` ISA_UNKNOWN, and ``info()``
    gives the capture's vendor once every line is read (``parse_trace`` fills it in).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.skipped: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.lines = 0
        self.shapes = {"ftrace": 0, "trace-cmd": 0, "perf-script": 0}
        self.ftrace_header = False
        self.trace_cmd_header = False
        self.named_isa = {"vmx": 0, "svm": 0}

    def events(self, lines: Iterable[str]) -> Iterator[KvmEvent]:
        """The KVM events of ``lines`` (without their line ends), in order."""
        for number, line in enumerate(lines, 1):
            event = self.feed(number, line)
            if event is not None:
                yield event

    def feed(self, number: int, line: str) -> KvmEvent | None:
        """Read line ``number`` (1-based, without its newline); its KVM event, if any."""
        self.lines = number
        if len(line) > MAX_LINE:
            raise TraceParseError(self.source, number, MAX_LINE + 1,
                                  f"a line longer than {MAX_LINE} characters is not kernel "
                                  "trace text")
        h = None if line.startswith("#") else _header(line)
        if h is None:
            # A header line, even one that happens to look like an event, or no event.
            self._not_an_event(number, line)
            return None
        self.shapes[h.shape] += 1
        decode = _DECODERS.get(h.event)
        if decode is None or (h.sys is not None and h.sys != "kvm"):
            key = h.event if h.sys is None else f"{h.sys}:{h.event}"
            self.skipped[key] = self.skipped.get(key, 0) + 1
            return None
        cpu, t_ps = self._context(number, h)
        try:
            event = decode(line[h.payload_at:].rstrip(), t_ps, cpu, h.comm.strip(),
                           int(h.pid), number)
        except PayloadError as e:
            raise TraceParseError(self.source, number, h.payload_at + e.offset + 1,
                                  e.message) from None
        self.counts[h.event] = self.counts.get(h.event, 0) + 1
        if type(event) is KvmExit and event.isa != ISA_UNKNOWN:
            self.named_isa[event.isa] += 1
        return event

    def _context(self, number: int, h: _Header) -> tuple[int, int]:
        """The CPU and the timestamp (ps) of a known event's line, checked."""
        if _CPU.fullmatch(h.cpu) is None:
            raise TraceParseError(self.source, number, h.cpu_at + 1,
                                  f"{h.event}: expected the CPU number in decimal inside [], "
                                  f"got {_short(h.cpu)!r}")
        t = _TIMESTAMP.fullmatch(h.ts)
        if t is None:
            raise TraceParseError(self.source, number, h.ts_at + 1,
                                  f"{h.event}: expected a timestamp <secs>.<usecs> or "
                                  f"<secs>.<nsecs>, got {_short(h.ts)!r}")
        secs, fraction = t.groups()
        return int(h.cpu), int(secs) * PS_PER_S + int(fraction) * _PS_PER_UNIT[len(fraction)]

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
                    "<secs>.<usecs>: ' (perf script), got "
                    f"{_short(line[:mention.start(1)].strip())!r}")
            key = SKIP_OTHER
        self.skipped[key] = self.skipped.get(key, 0) + 1

    @property
    def isa(self) -> str:
        """A host has one vendor: a numeric reason takes the vendor of the named ones."""
        return "svm" if self.named_isa["svm"] > self.named_isa["vmx"] else "vmx"

    @property
    def trace_lines(self) -> int:
        """Lines that read as a tracer's event line (any event) or its header."""
        return sum(self.shapes.values()) + self.ftrace_header + self.trace_cmd_header

    def info(self) -> CaptureInfo:
        """What the lines read so far were."""
        return CaptureInfo(self.source, self._format(), self.lines, dict(self.skipped),
                           dict(self.counts), self.isa)

    def _format(self) -> str:
        """The capture's shape: perf script if most event lines were, else the header lines
        decide (``# tracer:`` is ftrace, ``cpus=`` trace-cmd), else the flags column."""
        shapes = self.shapes
        if shapes["perf-script"] > shapes["ftrace"] + shapes["trace-cmd"]:
            return "perf-script"
        if self.ftrace_header or self.trace_cmd_header:
            return "ftrace" if self.ftrace_header else "trace-cmd"
        return "trace-cmd" if shapes["trace-cmd"] > shapes["ftrace"] else "ftrace"


def _short(text: str) -> str:
    """A token of a line for an error message, shortened (a line may be a megabyte)."""
    return text if len(text) <= 60 else text[:57] + "..."


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
    """Read a capture given as one string or as lines (a file object, a list), keeping every
    event in memory (``CaptureReader`` streams).

    Raises TraceParseError at the first malformed ``kvm_entry``, ``kvm_exit`` or ``kvm_msr``.
    """
    reader = CaptureReader(source)
    return _capture(reader, list(reader.events(_lines(text))))


def _capture(reader: CaptureReader, events: list[KvmEvent]) -> Capture:
    """The capture ``reader`` read, its numeric exit reasons given the capture's vendor."""
    isa = reader.isa
    events = [dataclasses.replace(e, isa=isa)
              if type(e) is KvmExit and e.isa == ISA_UNKNOWN else e for e in events]
    info = reader.info()
    return Capture(info.source, info.format, events, info.lines, info.skipped, isa)


def read_lines(f: TextIO) -> Iterator[str]:
    """The lines of an open text file without their line ends, each read with a bound
    (MAX_LINE) so that a file without newlines cannot fill memory."""
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        yield line.rstrip("\r\n")  # a chunk of MAX_LINE + 1 without one is refused


def open_trace(path: str | os.PathLike[str]) -> TextIO:
    """Open a capture file. Undecodable bytes (a comm is raw bytes) become U+FFFD."""
    return open(path, encoding="utf-8", errors="replace")


def require_trace(reader: CaptureReader) -> None:
    """A file in which no line reads as trace text is not a capture: InputError naming it."""
    if reader.trace_lines == 0:
        raise InputError(reader.source, f"no line of the {reader.lines} read is kernel trace "
                                        "text: expected ftrace, trace-cmd report or perf script "
                                        "output (lines like '<comm>-<pid> [<cpu>] <flags> "
                                        "<secs>.<usecs>: kvm_exit: ...')")


def parse_trace_file(path: str | os.PathLike[str]) -> Capture:
    """Read a capture file; one in which no line is trace text is an InputError."""
    reader = CaptureReader(os.fspath(path))
    with open_trace(path) as f:
        events = list(reader.events(read_lines(f)))
    require_trace(reader)
    return _capture(reader, events)
