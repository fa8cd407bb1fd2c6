"""What a method or task author imports: the base classes, the hooks they act through, the
mask helpers of model pruning, and the registry that names them (docs/registry.md).

Everything here is importable without torch; the modules import it where a tensor is touched.
"""
from .hooks import Hook, TrainState
from .lazy import lazy_import, no_grad
from .method import DataPruner, Method, ModelPruner
from .registry import get_method, get_task, register_method, register_task
from .task import DataFormatError, DataNotFoundError, Recipe, Split, Splits, Task

__all__ = ["DataFormatError", "DataNotFoundError", "DataPruner", "Hook", "Method", "ModelPruner", "Recipe", "Split",
           "Splits", "Task", "TrainState", "get_method", "get_task", "lazy_import", "no_grad", "register_method",
           "register_task"]
