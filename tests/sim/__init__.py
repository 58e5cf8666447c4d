"""Tests of vpmu.sim, the event kernel."""
