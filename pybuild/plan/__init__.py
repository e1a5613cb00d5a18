"""Planning: stages, scope, dependencies and the pure step list, all without running anything."""
