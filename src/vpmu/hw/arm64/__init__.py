"""Arm hardware: the PMUv3 register file and counting rules, and a minimal GIC line."""
