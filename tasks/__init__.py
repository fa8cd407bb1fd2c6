"""Built-in tasks. Each module registers its tasks with ``@register_task``."""
