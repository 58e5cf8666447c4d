"""The vPMU designs, one folder each; its ``entry.py`` registers it (``vpmu.vpmu.registry``)."""
