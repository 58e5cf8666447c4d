"""Commands that list what the lab has: CPU presets, PMU MSRs, designs and examples."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vpmu.arch.arm64.caps import ArmPmuCaps
from vpmu.arch.arm64.sysregs import pmu_sysregs
from vpmu.arch.caps import PmuCaps
from vpmu.arch.presets import HOST_PRESETS, PRESETS
from vpmu.arch.regs import RegisterSpec
from vpmu.arch.x86.caps import x86_caps
from vpmu.arch.x86.msrs import lvtpc_msr, pmu_msrs
from vpmu.cli.app import bad, check_preset, command, console
from vpmu.vpmu.design import DESIGNS, design_info
from vpmu.vpmu.registry import default_design

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"
"""The examples of a source checkout (``pip install -e``)."""


def examples_dir() -> Path:
    """The checkout's examples, else ``./examples`` (a ``pip install .`` run from the clone)."""
    return EXAMPLES_DIR if EXAMPLES_DIR.is_dir() else Path.cwd() / "examples"


@command()
def presets() -> None:
    """List the built-in CPU presets and the hosts whose clusters carry different PMUs."""
    table = Table(title="CPU presets")
    for col in ("name", "arch", "vendor", "PMU", "counters", "core MHz", "description"):
        table.add_column(col)
    for p in PRESETS.values():
        c = p.caps
        table.add_row(p.name, c.arch, c.vendor, c.label, c.counters_label, str(p.core_mhz),
                      p.description)
    console.print(table)
    hosts = Table(title="Host presets (clusters in PMU registration order)")
    for col in ("name", "arch", "CPUs", "clusters"):
        hosts.add_column(col)
    for h in HOST_PRESETS.values():
        clusters = ", ".join(f"{_cpus(cl.cpus)} {cl.preset.name}" for cl in h.clusters)
        hosts.add_row(h.name, h.arch, str(h.ncpus), clusters)
    console.print(hosts)


def _cpus(cpus: tuple[int, ...]) -> str:
    """CPUs as the kernel lists a range ("0-3")."""
    return f"{cpus[0]}-{cpus[-1]}" if len(cpus) > 1 else str(cpus[0])


def _registers(caps: PmuCaps) -> list[RegisterSpec]:
    """The PMU registers a core implements: x86 MSRs (with the LVTPC), arm64 system
    registers."""
    if isinstance(caps, ArmPmuCaps):
        return list(pmu_sysregs(caps))
    return [*pmu_msrs(x86_caps(caps)), lvtpc_msr()]


@command()
def msrs(
    preset: Annotated[str, typer.Option("--preset", "-p", help="CPU preset.")] = "intel-icx",
) -> None:
    """Print the PMU registers a preset implements (MSRs, or system registers on arm64),
    derived from their declarations; addresses of system registers are Linux's sys_reg()
    encodings."""
    check_preset(preset, PRESETS)
    table = Table(title=f"PMU registers of {preset}")
    for col in ("address", "name", "fields (msb:lsb access)", "reset", "gate"):
        table.add_column(col, overflow="fold")
    for spec in _registers(PRESETS[preset].caps):
        fields = ", ".join(f"{f.name} {f.msb}:{f.lsb} {f.access.value}" for f in spec.fields)
        table.add_row(f"{spec.addr:#x}", spec.name, fields, f"{spec.reset:#x}", spec.gate)
    console.print(table)


@command()
def designs() -> None:
    """List the vPMU designs, what each models, and their options with defaults."""
    table = Table(title="vPMU designs (use as --design NAME or NAME:key=value,...)")
    for col in ("design", "what it models", "option", "default", "values"):
        table.add_column(col, overflow="fold")
    for name in DESIGNS:
        info = design_info(name)
        opts = list(info.options.items()) or [("-", (None, ()))]
        for i, (key, (default, choices)) in enumerate(opts):
            table.add_row(name if i == 0 else "", info.summary if i == 0 else "", key,
                          "-" if default is None else _show(default),
                          ", ".join(choices) if choices else _kind(default), end_section=
                          i == len(opts) - 1)
    console.print(table)


def _show(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _kind(default: object) -> str:
    return "true, false" if isinstance(default, bool) else ""


def example_files() -> list[Path]:
    """The example scenarios, by name."""
    where = examples_dir()
    return sorted(where.glob("*.toml")) if where.is_dir() else []


@command()
def examples() -> None:
    """List the example scenarios with one line on what each shows."""
    files = example_files()
    if not files:
        raise bad(str(examples_dir()), "no examples found (they ship with the source "
                                       "checkout)")
    table = Table(title=f"examples ({examples_dir()})")
    for col in ("file", "what it shows", "default design"):
        table.add_column(col, overflow="fold")
    for f in files:
        data = tomllib.loads(f.read_text())
        vms = data.get("vm", [])
        design = vms[0].get("design", default_design()) if vms else "-"
        table.add_row(f"examples/{f.name}", str(data.get("description", "")), design)
    console.print(table)
    console.print("run one: [bold]vpmu run examples/seed-001.toml --html report.html[/]")
