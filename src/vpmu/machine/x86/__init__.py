"""The x86 trap layer: the x86 vCPU and bare-metal execution of the x86 port operations."""
