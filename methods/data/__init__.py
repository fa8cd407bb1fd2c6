"""Data-pruning methods, each registered with ``@register_method``, and the helpers they share."""
