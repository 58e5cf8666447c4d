"""vpmu: a laboratory for PMU virtualization.

``vpmu.run_guest(program, preset=..., design=None)`` runs a guest program written against the
register port (``vpmu.guest``) and returns its return value.
"""

from vpmu.machine.baremetal import run_guest

__all__ = ["run_guest"]
__version__ = "0.1.0"
