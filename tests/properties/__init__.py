"""Property tests (Hypothesis): the hardware model against a small reference written from the
manuals."""
