"""Linux facts and algorithms that more than one layer models: the host's perf
(``vpmu.host.perf``) and the guest's (``vpmu.guest.linux``) are both Linux perf, so what they
share lives once, here. Imports nothing of the project."""
