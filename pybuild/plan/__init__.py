"""Planning: stages, scope and dependencies, resolved without running anything."""
