"""The x86 side of the vPMU interface: how an x86 guest reaches its vPMU."""
