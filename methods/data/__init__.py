"""Data-pruning methods: each module registers one method with ``@register_method``."""
