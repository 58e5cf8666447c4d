"""Results users read: the results JSON (DESIGN.md contract), tables, and later HTML."""
