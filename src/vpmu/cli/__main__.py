"""``python -m vpmu.cli``."""

from vpmu.cli.main import main

main()
