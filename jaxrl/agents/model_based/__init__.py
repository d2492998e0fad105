"""Model-based algorithms that learn a world model and act from imagination (Drama)."""
