"""Results users read: the results JSON (docs/scenarios.md, "Results"), tables, and later HTML."""
