"""prunebench: a benchmark and leaderboard harness for data and model pruning.

The harness in four rooms, each importing only the rooms listed before it:

- :mod:`benchmark.api`: what a method or task author uses (base classes, hooks, masks,
  registry and discovery);
- :mod:`benchmark.training`: the one training loop, the context a method's ``prepare`` gets,
  cost, FLOPs and memory;
- :mod:`benchmark.sweeps`: sweep files and cells, running one cell, its evidence, the runner,
  claims, the tracking store, executors and servers;
- :mod:`benchmark.boards`: leaderboards read from the store: statistics, tables, HTML, plots,
  the board inside MLflow;

and :mod:`benchmark.cli` on top. Modules' old flat paths (``benchmark.method``, ...) still
import, with a DeprecationWarning naming the new path (:mod:`benchmark.moved`).
"""
from . import moved
from .api.registry import get_method, get_task, register_method, register_task
from .version import __version__

moved.install()

__all__ = ["get_method", "get_task", "register_method", "register_task", "__version__"]
