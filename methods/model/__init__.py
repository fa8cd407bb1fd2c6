"""Model-pruning methods (weights removed)."""
