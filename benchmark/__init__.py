"""prunebench: a benchmark and leaderboard harness for data and model pruning."""
from .registry import get_method, get_task, register_method, register_task

__version__ = "0.1.0"
__all__ = ["get_method", "get_task", "register_method", "register_task", "__version__"]
