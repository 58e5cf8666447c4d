"""Kernel uapi as data: the numbers and encodings of the ioctls a user (QEMU, a selftest)
gives KVM. Neither hardware facts nor model: the hypervisor model (``vpmu.vpmu``) and the
guest-side ports of the selftests both read them, so this package imports nothing of the
project."""
