"""The streaming trace importer: its rate, and its memory as the trace gets longer.

A block of real ftrace text (one emulated run of examples/seed-001.toml at ``duration_ms`` 5,
as ``vpmu run --ftrace-out`` writes it) is repeated, each copy shifted later in time, into
files of ``--lines`` lines (2,000,000 by default) and half that. Each step then runs in a
fresh process, so its peak RSS (``ru_maxrss``) is its own:

- ``stream``: ``CaptureReader(path).events(read_lines(f))``, counting the events;
- ``replay``: ``replay_file(path)`` (the stream through ``reconstruct``, then the scenario);
- ``parse``: ``parse_trace`` of the file, which keeps every event (half the lines only).

Time is CPU time (``time.process_time``) of the step alone; RSS is given whole and over the
child's RSS after its imports. A last step feeds hostile lines of 64 KiB and 1 MiB (no event,
or a malformed one) to ``CaptureReader.feed`` and gives CPU seconds per MiB: about the same at
both sizes when the header parser is linear in the line's length. Figures go to
``benchmarks/results/import.json``.

Run: ``python benchmarks/bench_import.py [--lines N] [--output PATH]`` (about 95 s).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_TS = re.compile(r"(.*\S)\s+(\d+)\.(\d{6})(: .*)")
"""An ftrace event line: everything up to the flags, the timestamp (secs.usecs), the rest."""


def _rss_mib() -> float:
    """This process's peak RSS so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_trace(path: Path, lines: int) -> dict[str, Any]:
    """Write ``lines`` lines of ftrace text to ``path``: the header of one seed-001 run's
    export once, then its event lines over and over, each copy later than the one before."""
    from vpmu.scenario.load import load_scenario
    from vpmu.scenario.run import build, run
    from vpmu.trace.ftrace import ftrace_text

    sc = load_scenario(ROOT / "examples/seed-001.toml", overrides=["duration_ms=5"])
    text = ftrace_text(run(build(sc, "emulated", keep_trace=True)).records)
    header = [line for line in text.splitlines() if line.startswith("#")]
    rows = []
    for line in text.splitlines():
        if (m := _TS.fullmatch(line)) is not None:
            rows.append((m[1], int(m[2]) * 10**6 + int(m[3]), m[4]))
    span_us = rows[-1][1] + 10
    written, copies = len(header), 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(h + "\n" for h in header))
        while written < lines:
            block = rows[:lines - written]
            shift = copies * span_us
            f.write("".join(f"{pre} {(t + shift) // 10**6:5d}.{(t + shift) % 10**6:06d}{rest}\n"
                            for pre, t, rest in block))
            written, copies = written + len(block), copies + 1
    return {"lines": written, "block_lines": len(rows), "copies": copies,
            "bytes": path.stat().st_size}


def _stream(path: str) -> dict[str, Any]:
    """Iterate the file's events without keeping them."""
    from vpmu.trace.parse import CaptureReader, open_trace, read_lines

    reader, events = CaptureReader(path), 0
    with open_trace(path) as f:
        for _ in reader.events(read_lines(f)):
            events += 1
    return {"lines": reader.lines, "events": events}


def _replay(path: str) -> dict[str, Any]:
    """``replay_file``: the stream, reconstructed per thread, and the scenario it implies."""
    from vpmu.scenario.replay import replay_file

    rep = replay_file(path)
    pmis = sum(len(p.pmis) for p in rep.profiles)
    # reconstruct keeps a list entry per PMI (its time, its handler's length) and per re-arm
    kept = sum(len(p.pmis) + len(p.handler_ps) + sum(len(c.periods) for c in p.counters.values())
               for p in rep.profiles)
    return {"lines": rep.capture.lines, "events": sum(rep.capture.counts.values()),
            "pmis": pmis, "ints_kept": kept, "scenario": rep.scenario is not None}


def _parse(path: str) -> dict[str, Any]:
    """``parse_trace`` of the file's lines: every event kept in a list."""
    from vpmu.trace.parse import open_trace, parse_trace, read_lines

    with open_trace(path) as f:
        capture = parse_trace(read_lines(f), path)
    return {"lines": capture.lines, "events": len(capture.events)}


HOSTILE: dict[str, Callable[[int], str]] = {
    "'a-1 ' * n": lambda n: "a-1 " * (n // 4),
    "'-' * n + '['": lambda n: "-" * (n - 1) + "[",
    "' ' * n + 'x'": lambda n: " " * (n - 1) + "x",
    "'[' * n": lambda n: "[" * n,
    "'a-1 [0] ' + ' ' * n + 'x'": lambda n: "a-1 [0] " + " " * (n - 9) + "x",
    "'a-1 [0] 1.0: ' + 'x' * n": lambda n: "a-1 [0] 1.0: " + "x" * (n - 13),
    "'a' * n + ' kvm_exit: x'": lambda n: "a" * (n - 12) + " kvm_exit: x",
}
"""Lines of about ``n`` characters that no event header fits; the last names kvm_exit, so it
is a TraceParseError."""


def _hostile(_: str) -> dict[str, Any]:
    """CPU seconds per MiB of ``CaptureReader.feed`` (``_header`` and the not-an-event checks)
    on each hostile line at 64 KiB and at 1 MiB: best of 5 rounds of 4 MiB of lines each."""
    from vpmu.trace.parse import MAX_LINE, CaptureReader, TraceParseError

    def per_mib(line: str, count: int) -> float:
        best = float("inf")
        for _ in range(5):
            reader = CaptureReader("<hostile>")
            t0 = time.process_time()
            for i in range(count):
                with contextlib.suppress(TraceParseError):
                    reader.feed(i + 1, line)
            best = min(best, time.process_time() - t0)
        return best / (count * len(line) / 2**20)

    out: dict[str, Any] = {}
    for name, make in HOSTILE.items():
        small, large = make(64 * 1024), make(MAX_LINE)
        per_mib(large, 1)  # warm up: the first rounds of a fresh process run slow
        s64, s1m = per_mib(small, 64), per_mib(large, 4)
        out[name] = {"s_per_mib_64k": round(s64, 4), "s_per_mib_1m": round(s1m, 4),
                     "ratio": round(s1m / s64, 2)}
    return out


STEPS: dict[str, Callable[[str], dict[str, Any]]] = {
    "stream": _stream, "replay": _replay, "parse": _parse, "hostile": _hostile}


def child(step: str, path: str, *extra: str) -> None:
    """Run one step in this (fresh) process and print its figures as JSON."""
    if step == "generate":
        print(json.dumps(write_trace(Path(path), int(extra[0]))))
        return
    import vpmu.scenario.replay  # noqa: F401  (imports outside the measured region)

    base = _rss_mib()
    t0, w0 = time.process_time(), time.perf_counter()
    out = STEPS[step](path)
    cpu, wall = time.process_time() - t0, time.perf_counter() - w0
    if "lines" in out:
        out |= {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                "lines_per_s": round(out["lines"] / cpu), "peak_rss_mib": round(_rss_mib(), 1),
                "over_imports_mib": round(_rss_mib() - base, 1)}
    print(json.dumps(out))


def measure(step: str, path: Path, *extra: str) -> dict[str, Any]:
    """One step's figures, from a fresh Python process. This process only orchestrates (even
    the trace is written by a child) so that it stays smaller than any child: Linux carries
    the parent's RSS at the fork into the child's ``ru_maxrss``."""
    done = subprocess.run([sys.executable, __file__, "--step", step, str(path), *extra],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> None:
    if sys.argv[1:2] == ["--step"]:
        child(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=2_000_000, help="lines of the larger trace")
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/import.json")
    args = ap.parse_args()
    steps: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {"half": args.lines // 2, "full": args.lines}
        paths = {k: Path(tmp, f"{k}.ftrace") for k in sizes}
        for k, n in sizes.items():
            steps[f"trace_{k}"] = measure("generate", paths[k], str(n))
        for k in sizes:
            for step in ("stream", "replay"):
                steps[f"{step}_{k}"] = measure(step, paths[k])
        steps["parse_trace_half"] = measure("parse", paths["half"])
    steps["hostile"] = measure("hostile", Path("-"))
    ratios = {f"{step}_full_over_half": {
        k: round(steps[f"{step}_full"][k] / max(steps[f"{step}_half"][k], 0.1), 2)
        for k in ("cpu_s", "peak_rss_mib", "over_imports_mib")} for step in ("stream", "replay")}
    report = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
              "machine": platform.machine(), "scenario": "seed-001", "overrides":
              ["duration_ms=5"], "steps": steps, "ratios": ratios}
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for k, v in (steps | ratios).items():
        if k == "hostile":
            for name, row in v.items():
                print(f"{'hostile ' + name:>40}: {row}")
        else:
            print(f"{k:>40}: {v}")


if __name__ == "__main__":
    main()
