"""The vPMU designs, one module each, registered by name in ``vpmu.vpmu.design.DESIGNS``."""
