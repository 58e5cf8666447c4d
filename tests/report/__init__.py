"""Tests of vpmu.metrics and vpmu.report: numbers and tables from hand-built records."""
