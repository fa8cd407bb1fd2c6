"""Built-in pruning methods, by family: ``data/`` (which samples to train on), ``model/``
(which weights to keep), and the full-data / dense reference. Each module registers its
method with ``@register_method``; discovery finds them by reading the files."""
import benchmark  # noqa: F401 - installs the old module paths (methods.el2n, ...): benchmark.moved
