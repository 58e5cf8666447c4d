"""Every failure that is not a bug ends with one exit code and one line per place.

Bad input (a scenario key, an option, a trace line, an output path) exits 2 and names the
place; a run that cannot finish exits 3. Click's ``Exit`` is a RuntimeError, so none of these
may be caught through a base class: before the CLI's edge caught exactly InputError and
RunIncompleteError, build-time input errors exited 3 with a stray ``error: 2`` line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from vpmu.cli import main as cli
from vpmu.scenario.limits import size_problems
from vpmu.scenario.load import parse_scenario

runner = CliRunner()

BASE = """\
duration_ms = 2
[host]
preset = "intel-icx"
cpus = 2
[[vm]]
pin = [0]
[[vm.guest]]
tool = "perf-record"
events = ["cycles", "instructions"]
"""


def invoke(*args: str | Path) -> Result:
    return runner.invoke(cli.app, [str(a) for a in args], env={"COLUMNS": "80"})


def errors(result: Result) -> list[str]:
    """The ``error:`` lines, each whole (errors never wrap, even at 80 columns)."""
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_bad_input(result: Result, *expected: str) -> None:
    """Exit 2, no traceback, no stray exit code, every expected text in one error line."""
    assert result.exit_code == cli.EXIT_BAD_INPUT, result.output
    assert "Traceback" not in result.output and "error: 2" not in result.output
    lines = errors(result)
    assert lines, result.output
    for text in expected:
        assert any(text in line for line in lines), (text, lines)


@pytest.mark.parametrize(("args", "expected"), [
    (["--design", "bogus"], ["--design: design must be one of"]),
    (["--design", "emulated:nope=1"], ["--design: design 'emulated' option must be one of"]),
    (["--design", "emulated:is_paused=true,is_paused=false"],
     ["--design: design option is_paused must be given once"]),
    (["--design", "emulated:"], ["--design: design option must be key=value, not ''"]),
    (["--set", "vm[0].guest[0].events=['cycles','bogus']"],
     ["vm[0].guest[0].events[1]: event must be one of"]),
    (["--set", "vm[0].guest[0].freq=200000"],
     ["vm[0].guest[0].freq: expected at most max_sample_rate = 100000"]),
    (["--set", "duration_ms=1e300"], ["duration_ms: expected a value <= 1000000000"]),
    (["--set", "duration_ms=1e-300"], ["duration_ms: expected a value >= 0.001"]),
    (["--set", "host.nmi_watchdog=true", "--design", "mediated"],
     ["--design mediated: vm[0].design: 'mediated' on VM 'vm0'", "(EBUSY)"]),
])
def test_build_time_input_errors_exit_2(tmp_path: Path, args: list[str],
                                        expected: list[str]) -> None:
    """Unknown design, option or event, a duplicate option, a bare ':', freq above the
    sysctl, absurd durations, a mediated VM beside the NMI watchdog: exit 2, the place."""
    assert_bad_input(invoke("run", write(tmp_path, BASE), *args), *expected)


def test_errors_in_the_file_name_the_file_and_key_path(tmp_path: Path) -> None:
    """An unknown event name, a filter KVM refuses (E2BIG) and a huge duration in the file."""
    bad_event = BASE.replace('"instructions"', '"instrucions"')
    assert_bad_input(invoke("run", write(tmp_path, bad_event)),
                     "s.toml: vm[0].guest[0].events[1]: event must be one of")
    events = ", ".join(str(i) for i in range(301))
    bad_filter = BASE.replace("[[vm.guest]]", f'[vm.filter]\naction = "deny"\n'
                                               f"events = [{events}]\n[[vm.guest]]")
    assert_bad_input(invoke("run", write(tmp_path, bad_filter)),
                     "s.toml: vm[0].filter: KVM_SET_PMU_EVENT_FILTER fails with E2BIG")
    huge = BASE.replace("duration_ms = 2", "duration_ms = 1e300")
    assert_bad_input(invoke("run", write(tmp_path, huge)), "s.toml: duration_ms:")


def test_deeply_nested_arrays_are_an_error_not_a_recursion_error(tmp_path: Path) -> None:
    """500 nested arrays (tomllib recurses per level) and 40 (pydantic would): exit 2."""
    for depth in (500, 40):
        text = BASE + f"x = {'[' * depth}{']' * depth}\n"
        assert_bad_input(invoke("run", write(tmp_path, text)), "s.toml:", "nested more than")


def test_large_work_asks_for_allow_large(tmp_path: Path) -> None:
    """2000 vCPUs or 10^6 ms at 2.3 GHz are refused with the option's name, before running;
    with --allow-large the same scenario passes the check (not run here: it is large)."""
    path = write(tmp_path, BASE)
    assert_bad_input(invoke("run", path, "--set", "vm[0].vcpus=2000", "--set", "vm[0].pin=[]"),
                     "vm[0].pin")  # the pin list must match first: schema before size
    res = invoke("run", path, "--set", "duration_ms=1e6")
    assert_bad_input(res, "s.toml: duration_ms:", "pass --allow-large")
    big = parse_scenario(BASE, "s.toml",
                         overrides=["vm[0].vcpus=2000", "vm[0].pin=" + str([0] * 2000)])
    assert [p.path for p in size_problems(big, "s.toml")] == ["vm"]
    ok = parse_scenario(BASE, "s.toml")
    assert size_problems(ok, "s.toml") == []


def test_a_run_that_does_not_finish_exits_3(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """RunIncompleteError is exit 3 with its own line (here the guests are made to never
    finish)."""
    monkeypatch.setattr("vpmu.scenario.run.run_until_done", lambda *a, **k: False)
    res = invoke("run", write(tmp_path, BASE))
    assert res.exit_code == cli.EXIT_RUN_FAILED, res.output
    assert errors(res) == [e for e in errors(res) if "did not finish within 100" in e]
    assert len(errors(res)) == 1 and "Traceback" not in res.output


def _capture(tmp_path: Path, *lines: str) -> Path:
    return write(tmp_path, "\n".join(lines) + "\n", "cap.txt")


def _line(t_us: int, event: str, payload: str, vcpu: int = 0, pid: int = 1000) -> str:
    return f"CPU {vcpu}/KVM-{pid} [000] d.... 1.{t_us:06d}: {event}: {payload}"


def _access(t: int, index: int, value: int, vcpu: int = 0) -> list[str]:
    return [_line(t, "kvm_exit", f"vcpu {vcpu} reason MSR_WRITE rip 0x0 info1 0x1 info2 0x0 "
                                 "intr_info 0x00000000 error_code 0x00000000", vcpu),
            _line(t, "kvm_msr", f"msr_write {index:x} = 0x{value:x}", vcpu),
            _line(t + 1, "kvm_entry", f"vcpu {vcpu}, rip 0x0", vcpu)]


def _counting(vcpu: int = 0, fixed_ctrl: int = 0x333) -> list[str]:
    """A guest enabling fixed counters (0x333: 0-2; 0x3333 also fixed counter 3)."""
    return [*_access(10, 0x38D, fixed_ctrl, vcpu), *_access(20, 0x38F, 0x70000000F, vcpu),
            *_access(900, 0x38F, 0, vcpu)]


def test_replay_of_a_capture_enabling_fixed_counter_3(tmp_path: Path) -> None:
    """TOPDOWN.SLOTS on fixed counter 3 has no event in the guest model: it is left out and
    said so, and the replay runs (it was reconstructed as 'fixed3' and refused)."""
    out = tmp_path / "r.json"
    res = invoke("replay", _capture(tmp_path, *_counting(fixed_ctrl=0x3333)), "-d", "emulated",
                 "--json", out)
    assert res.exit_code == 0, res.output
    assert "fixed counter 3 (TOPDOWN.SLOTS, perf's slots) is enabled but not modelled" in \
        out.read_text()


def test_replay_bad_input_exits_2_not_did_not_finish(tmp_path: Path) -> None:
    """A --set the reconstructed scenario refuses exits 2 (it was recorded as 'did not
    finish' and the command exited 0)."""
    res = invoke("replay", _capture(tmp_path, *_counting()), "-d", "emulated",
                 "--set", "vm[0].guest[0].events=['nosuch']")
    assert_bad_input(res, "--set vm[0].guest[0].events=['nosuch']: vm[0].guest[0].events[0]")


def test_replay_records_a_design_that_did_not_finish(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """RunIncompleteError under one design is a recorded error; the command exits 0."""
    monkeypatch.setattr("vpmu.scenario.run.run_until_done", lambda *a, **k: False)
    out = tmp_path / "r.json"
    res = invoke("replay", _capture(tmp_path, *_counting()), "-d", "emulated", "--json", out)
    assert res.exit_code == 0, res.output
    assert "did not finish within 20 x the reconstructed duration_ms" in out.read_text()


def test_replay_problems_name_the_trace_line(tmp_path: Path) -> None:
    """A vCPU index beyond what a VM may have is reported at the line that named it, not at
    a key path of a scenario the user never wrote."""
    res = invoke("replay", _capture(tmp_path, *_counting(vcpu=5000)), "-d", "emulated")
    assert_bad_input(res, "cap.txt:1: vCPU thread CPU 5000/KVM-1000 (vCPU 5000",
                     "vm[0].vcpus")


@pytest.mark.parametrize(("content", "expected"), [
    (bytes(range(256)) * 40, "no line of the"),
    (b'{"traceEvents": [{"ph": "X", "name": "kvm_exit"}]}\n', "no line of the 1 read"),
    (b"garbage line\n" * 5000, "no line of the 5000 read"),
    (b"", "no line of the 0 read"),
    (b"bash-1 [000] d.... 1.000001: sched_switch: prev_comm=a\n",
     "has no kvm_entry, kvm_exit or kvm_msr event"),
])
def test_replay_of_something_that_is_not_a_trace(tmp_path: Path, content: bytes,
                                                 expected: str) -> None:
    """Random bytes, a Perfetto JSON, garbage, an empty file or a trace without KVM events:
    exit 2 naming the file (they exited 0 as 'a guest that does not use its PMU')."""
    path = tmp_path / "t.bin"
    path.write_bytes(content)
    assert_bad_input(invoke("replay", path, "-d", "emulated"), f"{path}:", expected)
