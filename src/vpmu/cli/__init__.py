"""The command line (``vpmu``)."""
