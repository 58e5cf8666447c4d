"""The arm64 machine: the port operations on bare metal (a vCPU trap layer comes with the
arm64 vPMU)."""
