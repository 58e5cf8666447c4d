"""The guest register port's operations per architecture (``x86``, ``arm64``); the neutral
operations and the whole port are in ``vpmu.guest.port``."""
