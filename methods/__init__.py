"""Built-in pruning methods. Each module registers its method with ``@register_method``."""
