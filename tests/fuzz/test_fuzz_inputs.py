"""Fuzz targets: hostile scenario files, command lines and trace files.

Whatever the input, the command ends with exit 0, 2 or 3, no traceback, and on exit 2 every
``error:`` line names a place (``file: key``, ``file:line:column``, ``--option``), within the
example deadline. CI runs a bounded number of examples; ``VPMU_FUZZ_EXAMPLES=N`` runs N per
target (the closing note of the reliability issue records a run of 20,000 in all).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from vpmu.cli import main as cli
from vpmu.trace.parse import CaptureReader, TraceParseError

EXAMPLES = int(os.environ.get("VPMU_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=60), derandomize=True,
                database=None, suppress_health_check=list(HealthCheck))
"""The deadline is a hang detector, not a speed test: a run here takes well under a second."""
runner = CliRunner()
PLACE = re.compile(r"^error: (--[a-z-]+[ :]|[^:]+:(\d+:\d+: | ))")
"""An error line starts with the place: an option, or a file (with line:column, or a key)."""

SMALL = {"duration_ms": "0.05", "host.preset": '"intel-icx"', "host.cpus": "2",
         "vm[0].vcpus": "1", "vm[0].design": '"emulated"', "vm[0].guest[0].tool": '"perf-stat"',
         "vm[0].guest[0].events": '["cycles"]'}
HOSTILE = ["0", "-1", "1e300", "1e-300", "nan", "inf", "2", "4097", "1025", "2147483648",
           "18446744073709551616", '"x"', '""', "true", "[]", "[1, 2]", "[[[[[[1]]]]]]",
           "{a = 1}", '"mediated"', '"none"', '"emulated:is_paused=false"', '"emulated:"',
           '"perf-record"', '["bogus"]', '["cycles", "cycles:u", "r00c0"]', '"amd-zen4"']
KEYS = [*SMALL, "seed", "host.nmi_watchdog", "host.tick_hz", "host.max_sample_rate",
        "vm[0].pin", "vm[0].guest[0].vcpu", "vm[0].guest[0].freq", "vm[0].guest[0].period",
        "vm[0].guest[0].runs", "vm[0].guest[0].start_ms", "vm[0].guest[0].workload",
        "vm[0].filter", "vm[0].pmu.version", "vm[0].pmu.gp_counters", "nosuch", "vm[1].x"]


def _toml(values: dict[str, str]) -> str:
    """A scenario file from dotted keys (array entries as tables)."""
    top = {k: v for k, v in values.items() if "." not in k}
    host = {k[5:]: v for k, v in values.items() if k.startswith("host.")}
    vm = {k[6:]: v for k, v in values.items() if k.startswith("vm[0].") and "guest" not in k}
    guest = {k[15:]: v for k, v in values.items() if k.startswith("vm[0].guest[0].")}
    lines = [f"{k} = {v}" for k, v in top.items()]
    lines += ["[host]", *(f"{k} = {v}" for k, v in host.items())]
    lines += ["[[vm]]", *(f"{k} = {v}" for k, v in vm.items())]
    lines += ["[[vm.guest]]", *(f"{k} = {v}" for k, v in guest.items())]
    return "\n".join(lines) + "\n"


def check(result: Result) -> None:
    """The contract of every command, whatever its input (the exit code is counted in the
    statistics: ``--hypothesis-show-statistics``)."""
    event(f"exit {result.exit_code}")
    assert result.exit_code in (0, 2, 3), (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    lines = [x for x in result.output.splitlines() if x.startswith("error:")]
    if result.exit_code == 2 and "╭─ Error ─" in result.output:
        return  # Click's own usage error (an unknown option, a missing value), in its box
    if result.exit_code in (2, 3):
        assert lines, result.output
    if result.exit_code == 2:
        assert all(PLACE.match(x) for x in lines), lines


VALID = {"duration_ms": ["0.02", "0.1", "1"], "host.preset": ['"amd-zen4"', '"intel-spr"'],
         "host.nmi_watchdog": ["true", "false"], "vm[0].design": ['"none"', '"mediated"'],
         "vm[0].guest[0].tool": ['"perf-record"', '"none"'],
         "vm[0].guest[0].events": ['["branches", "r00c0"]', "[]"],
         "vm[0].guest[0].runs": ["2"], "vm[0].guest[0].freq": ["1000"],
         "vm[0].guest[0].workload": ['"compute"']}
"""Changes that keep a scenario valid (or nearly): the fuzz also runs scenarios to the end."""

scenario_values = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(HOSTILE), max_size=3),
    st.lists(st.sampled_from([(k, v) for k, vs in VALID.items() for v in vs]),
             max_size=4).map(dict))


@FUZZ
@given(changes=scenario_values, drop=st.sets(st.sampled_from(list(SMALL)), max_size=2),
       junk=st.sampled_from(["", "x", "[", "= 1", "\x00", "[[vm]]\n[[vm]]"]))
def test_fuzz_scenario_files(tmp_path_factory: object, changes: dict[str, str],
                             drop: set[str], junk: str) -> None:
    """Small valid scenarios with keys changed to hostile values, keys dropped, junk added."""
    values = {k: v for k, v in {**SMALL, **changes}.items() if k not in drop}
    path = Path(str(tmp_path_factory.mktemp("s"))) / "s.toml"  # type: ignore[attr-defined]
    path.write_text(_toml(values) + junk)
    check(runner.invoke(cli.app, ["run", str(path)], env={"COLUMNS": "80"}))


ARGS = st.lists(st.one_of(
    st.sampled_from(["--design", "-d", "--set", "--json", "--html", "--preset", "--allow-large",
                     "--nosuch", "-x"]),
    st.sampled_from(["emulated", "mediated", "none", "bogus", "emulated:a=1,a=2", ":",
                     "duration_ms=0.05", "duration_ms=1e300", "vm[0].vcpus=9999", "x=1",
                     "vm[9].design=none", "=", "host.cpus=[[[1]]]", "/dev/full",
                     "/proc/x.json", ".", "", "\x7f"])), max_size=6)


@FUZZ
@given(command=st.sampled_from(["run", "compare", "replay", "conformance", "msrs", "nosuch"]),
       args=ARGS)
def test_fuzz_command_lines(tmp_path_factory: object, command: str, args: list[str]) -> None:
    """Option lists in any order with good and bad values, on a small valid scenario."""
    where = Path(str(tmp_path_factory.mktemp("c")))  # type: ignore[attr-defined]
    path = where / "s.toml"
    path.write_text(_toml(SMALL))
    target = [] if command in ("conformance", "msrs", "nosuch") else [str(path)]
    if command == "conformance":  # one small suite, not every preset's
        target = ["--suite", "nosuch"]
    cwd = Path.cwd()
    os.chdir(where)  # outputs the fuzz names (--json bogus) land here, not in the checkout
    try:
        check(runner.invoke(cli.app, [command, *target, *args], env={"COLUMNS": "80"}))
    finally:
        os.chdir(cwd)


TRACE_LINES = [
    "CPU 0/KVM-100 [000] d.... 1.000010: kvm_exit: vcpu 0 reason MSR_WRITE rip 0x0 info1 0x1 "
    "info2 0x0 intr_info 0x00000000 error_code 0x00000000",
    "CPU 0/KVM-100 [000] d.... 1.000011: kvm_msr: msr_write 38f = 0x70000000f",
    "CPU 0/KVM-100 [000] d.... 1.000012: kvm_entry: vcpu 0, rip 0x0",
    "CPU 0/KVM-100 [000] d.... 1.000020: kvm_msr: msr_write 38d = 0x3333",
    "qemu 100 [000] 1.000030: kvm:kvm_exit: reason msr rip 0x0 info1 0x0 info2 0x0",
    "# tracer: nop", "cpus=4", "CPU:3 [LOST 12 EVENTS]", "", "bash-1 [000] .... 1.0: sched: x",
]


@st.composite
def trace_text(draw: st.DrawFn) -> str:
    lines = draw(st.lists(st.sampled_from(TRACE_LINES), max_size=12))
    out = []
    for line in lines:
        if line and draw(st.booleans()):  # mutate: cut, splice or overwrite a slice
            i = draw(st.integers(0, len(line)))
            cut = i + draw(st.integers(0, 4))
            out.append(line[:i] + draw(st.text(max_size=8)) + line[cut:])
        else:
            out.append(line)
    return "\n".join(out)


@FUZZ
@given(text=trace_text())
def test_fuzz_trace_files(tmp_path_factory: object, text: str) -> None:
    """Valid trace lines cut, spliced and overwritten, replayed under a design."""
    path = Path(str(tmp_path_factory.mktemp("t"))) / "t.txt"  # type: ignore[attr-defined]
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    check(runner.invoke(cli.app, ["replay", str(path), "-d", "emulated",
                                  "--set", "duration_ms=0.05"], env={"COLUMNS": "80"}))


HOSTILE_LINES = ["a-1 ", "-", "[", "]", " ", "a-1 [0] ", ": ", "kvm_exit: ", "(", "-1 (",
                 "x [0] d 1.0: ", "\t"]


@settings(max_examples=max(EXAMPLES // 4, 10), deadline=timedelta(seconds=20),
          derandomize=True, database=None)
@given(unit=st.sampled_from(HOSTILE_LINES), tail=st.sampled_from(["", "x", "]", " kvm_exit: x"]))
def test_long_hostile_lines_are_read_in_linear_time(unit: str, tail: str) -> None:
    """A 256 KiB line of a repeated hostile unit is read (or refused at its place) within the
    deadline: the header parser never backtracks (the regex it replaced took about 100 s on
    such a line, growing with the square of its length)."""
    line = unit * (256 * 1024 // len(unit)) + tail
    reader = CaptureReader("long.txt")
    try:
        reader.feed(1, line)
    except TraceParseError as err:
        assert err.line == 1 and err.column >= 1
    assert reader.lines == 1
