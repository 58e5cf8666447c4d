"""Host perf events: attributes, generic events, counter assignment, contexts."""
