"""Tests of vpmu.metrics' sections, from hand-built trace records."""
