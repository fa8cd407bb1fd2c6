"""Data-pruning methods (one module each)."""
