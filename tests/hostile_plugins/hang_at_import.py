"""Never finishes importing (an entry-point plugin stuck on a network call, say)."""
import time

from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

time.sleep(3600)


@register_method("hostile-hang-at-import")
class HangAtImport(DataPruner):  # never reached
    pass
