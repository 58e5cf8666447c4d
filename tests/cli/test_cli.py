"""The vpmu command line: tables, exit codes and errors that name the option."""

import pytest
from typer.testing import CliRunner

from vpmu.cli import main as cli
from vpmu.guest.conformance import CheckResult
from vpmu.machine import conformance as machine_conformance

runner = CliRunner()


def test_presets_lists_every_preset() -> None:
    """`vpmu presets` prints one row per built-in CPU preset, then the host presets with
    their clusters."""
    result = runner.invoke(cli.app, ["presets"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("intel-skl", "intel-icx", "intel-spr", "intel-emr", "amd-zen4", "amd-zen5",
                 "arm-a53", "arm-a72", "arm-n1", "arm-a520", "arm-a720"):
        assert name in result.output
    assert "20 event + cycle" in result.output     # the A720's PMCR_EL0.N
    assert "0-3 arm-a53, 4-5 arm-a72" in result.output


@pytest.mark.parametrize(("preset", "summary"), [
    # kvm-unit-tests arm/pmu: 44 checks, the 5 64-bit ones skipped without FEAT_PMUv3p5 (67
    # on the A720); the vpmu_counter_access port: one case per N (6 or 20 counters, and 0),
    # its 5 KVM-only cases skipped on bare metal
    ("arm-a53", "72 passed, 0 failed, 10 skipped checks"),
    ("arm-a720", "151 passed, 0 failed, 5 skipped checks"),
])
def test_conformance_on_an_arm_preset_runs_kvm_unit_tests_arm_pmu(preset: str,
                                                                    summary: str) -> None:
    """On an Arm preset `vpmu conformance` runs the Arm suites, on bare metal, and passes."""
    result = runner.invoke(cli.app, ["conformance", "-p", preset], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "kvm-unit-tests/arm/pmu" in result.output and "x86/pmu" not in result.output
    assert "vpmu_counter_access" in result.output
    assert f"{preset}: {summary}" in result.output


def test_msrs_of_an_arm_preset_lists_its_system_registers() -> None:
    """`vpmu msrs` on an Arm preset lists the PMU system registers up to PMCR_EL0.N."""
    result = runner.invoke(cli.app, ["msrs", "-p", "arm-a72"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "PMCR_EL0" in result.output and "PMEVTYPER5_EL0" in result.output
    assert "PMEVTYPER6_EL0" not in result.output


def test_conformance_passes_and_summarises() -> None:
    """`vpmu conformance` on one preset and suite exits 0 with a pass/fail summary line."""
    result = runner.invoke(cli.app, ["conformance", "-p", "intel-skl", "-s",
                                     "kvm-unit-tests/x86/pmu"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "check_counter_overflow" in result.output
    assert "0 failed" in result.output


@pytest.mark.parametrize(("args", "option"), [
    (["conformance", "-p", "intel-486"], "--preset"),
    (["conformance", "-s", "nosuch"], "--suite"),
])
def test_bad_option_exits_2_naming_it(args: list[str], option: str) -> None:
    """An unknown preset or suite exits 2 with one line naming the option and the choices."""
    result = runner.invoke(cli.app, args, env={"COLUMNS": "200"})
    assert result.exit_code == cli.EXIT_BAD_INPUT
    assert option in result.output and "must be one of" in result.output


def test_failed_check_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed check makes the command exit 1 and shows the failing check."""
    bad = [CheckResult("s", "t[version=2]", "instructions-0", False, "got 1, expected 2")]
    monkeypatch.setattr(machine_conformance, "run_conformance", lambda *a, **k: bad)
    result = runner.invoke(cli.app, ["conformance", "-p", "intel-icx"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == cli.EXIT_CHECK_FAILED
    assert "FAIL" in result.output and "got 1, expected 2" in result.output


def test_msrs_table_is_derived_from_the_declarations() -> None:
    """`vpmu msrs` shows the declared fields, e.g. EVNTSEL's CMASK 31:24 and GLOBAL_CTRL's reset."""
    result = runner.invoke(cli.app, ["msrs", "-p", "intel-skl"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "IA32_PERFEVTSEL3" in result.output and "IA32_PERFEVTSEL4" not in result.output
    assert "CMASK 31:24 rw" in result.output
    assert "0xf" in result.output  # GLOBAL_CTRL reset: one bit per GP counter (4)
