"""The hypervisor's PMU: the neutral design interface, the registry and the designs."""
