"""Arm facts as data: the PMUv3 capabilities (``caps``)."""
