"""Wiring: hosts, VMs and the paths from a guest access to hardware or a design."""

from vpmu.machine.baremetal import BareMetal, run_guest

__all__ = ["BareMetal", "run_guest"]
