"""Zero-shot accuracy of a cell's final causal LM through lm-evaluation-harness (the optional
extra ``prunebench[lm-eval]``, ``lm_eval==0.4.13``), evaluated in memory: lm-eval's ``HFLM``
wraps the pruned model and its tokenizer as they are, nothing is saved or reloaded.

Task options of the SFT and perplexity tasks (off unless ``lm_eval_tasks`` is given):
``lm_eval_tasks`` (a list of lm-eval task names, or ``true`` for the Wanda repository's seven:
BoolQ, RTE, HellaSwag, WinoGrande, ARC-easy, ARC-challenge, OpenBookQA), ``lm_eval_include``
(a folder of task YAML files, lm-eval's ``include_path``), ``lm_eval_limit`` (at most this
many examples per task), ``lm_eval_batch_size``. Each task's figures are logged as metrics
``lm_eval.<task>.<metric>`` (``acc``, ``acc_norm`` where the task gives it, their ``_stderr``;
a filter other than ``none`` is appended), with tags ``lm_eval.version``, and per task
``lm_eval.task_version.<task>``, ``lm_eval.config_hash.<task>`` (SHA-256 of its resolved
config, the local path of its YAML left out) and ``lm_eval.task_hash.<task>`` (lm-eval's own
hash over every evaluated document, prompt and target, as its results files record it).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from benchmark.api.task import DataFormatError, DataNotFoundError

#: the zero-shot tasks of the Wanda repository's ``lib/eval.py`` (``eval_zero_shot``)
WANDA_TASKS = ("boolq", "rte", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")
#: resamples where lm-eval bootstraps a standard error (accuracy's is closed-form): its default,
#: 100,000, takes minutes on a CPU for an F1 or a correlation
BOOTSTRAP_ITERS = 1000
INSTALL = "pip install 'prunebench[lm-eval]' (lm_eval==0.4.13 and accelerate)"


class ZeroShot:
    """The checked ``lm_eval_*`` options of one task, and the evaluation they ask for."""

    def __init__(self, task: str, tasks: Any, include: Any = None, limit: Any = None, batch_size: Any = 8):
        if tasks is True:
            tasks = list(WANDA_TASKS)
        if not isinstance(tasks, (list, tuple)) or not tasks or not all(isinstance(t, str) and t.strip()
                                                                       for t in tasks):
            raise ValueError(f"task {task!r}: option lm_eval_tasks must be a non-empty list of lm-eval task names, "
                             f"or true for the Wanda repository's {list(WANDA_TASKS)}; got {tasks!r}")
        if include is not None and (not isinstance(include, str) or not include.strip()):
            raise ValueError(f"task {task!r}: option lm_eval_include must be a folder of lm-eval task YAML files, "
                             f"got {include!r}")
        for option, value in (("lm_eval_limit", limit), ("lm_eval_batch_size", batch_size)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"task {task!r}: option {option} must be a positive integer, got {value!r}")
        missing = [module for module in ("lm_eval", "accelerate") if importlib.util.find_spec(module) is None]
        if missing:
            raise ValueError(f"task {task!r}: option lm_eval_tasks needs lm-evaluation-harness, and {missing} "
                             f"is not installed: {INSTALL}")
        self.task, self.tasks, self.include = task, list(tasks), include
        self.limit, self.batch_size = limit, batch_size

    def task_manager(self, include_defaults: bool = True):
        from lm_eval.tasks import TaskManager

        return TaskManager(include_path=self.include, include_defaults=include_defaults)

    def resolving_manager(self):
        """The include folder's own index where it holds every task (seconds), else lm-eval's
        whole index as well (half a minute: thousands of YAML files)."""
        if self.include is not None:
            local = self.task_manager(include_defaults=False)
            if all(t in local.all_tasks for t in self.tasks):
                return local
        return self.task_manager()

    def check(self) -> None:
        """Every task name resolves: the Wanda repository's by name, the rest against lm-eval's
        index (built only when needed: indexing lm-eval's thousands of tasks takes half a minute)."""
        if self.include is not None and not Path(self.include).is_dir():
            raise DataNotFoundError(f"task {self.task!r}: lm_eval_include {self.include!r} is not a folder of "
                                    f"lm-eval task YAML files")
        unknown = [t for t in self.tasks if t not in WANDA_TASKS]
        if unknown and self.include is not None:
            local = self.task_manager(include_defaults=False).all_tasks
            unknown = [t for t in unknown if t not in local]
        if unknown:
            known = self.task_manager().all_tasks
            missing = [t for t in unknown if t not in known]
            if missing:
                where = f" nor in {self.include}" if self.include else ""
                raise DataFormatError(f"task {self.task!r}: lm_eval_tasks {missing} are not lm-eval tasks (not in "
                                      f"lm_eval {_version()}{where}); see `lm-eval ls tasks`, or give a folder of "
                                      f"task YAML files as lm_eval_include")

    def evaluate(self, model, tokenizer) -> tuple[dict[str, float], dict[str, str]]:
        """Run the tasks on ``model`` (a Hugging Face ``*ForCausalLM``) in memory."""
        from lm_eval import simple_evaluate
        from lm_eval.models.huggingface import HFLM

        was_training = model.training
        model.eval()
        try:
            wrapped = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=self.batch_size)
            results = simple_evaluate(model=wrapped, tasks=self.tasks, task_manager=self.resolving_manager(),
                                      limit=self.limit, num_fewshot=0, log_samples=True,
                                      bootstrap_iters=BOOTSTRAP_ITERS)
        except (ConnectionError, FileNotFoundError) as error:
            raise DataNotFoundError(f"task {self.task!r}: lm-eval could not load the data of {self.tasks} "
                                    f"({type(error).__name__}: {error}). lm-eval fetches each task's data set "
                                    f"into the Hugging Face cache on first use: run once with internet, or give "
                                    f"local task configs as lm_eval_include") from error
        finally:
            model.train(was_training)
        return figures(results)


def figures(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, str]]:
    """lm-eval's results as the cell's metrics and tags (see the module's docstring)."""
    from lm_eval.utils import hash_string

    metrics: dict[str, float] = {}
    tags = {"lm_eval.version": _version(), "lm_eval.tasks": ",".join(sorted(results["results"]))}
    for name, values in results["results"].items():
        for key, value in values.items():
            metric, _, kind = key.partition(",")
            if not kind or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue  # the alias, the name, an "N/A" stderr
            metrics[f"lm_eval.{name}.{metric}" + ("" if kind == "none" else f".{kind}")] = float(value)
        if name in results.get("n-samples", {}):
            metrics[f"lm_eval.{name}.samples"] = float(results["n-samples"][name]["effective"])
    for name, config in results.get("configs", {}).items():
        config = {**config, "metadata": {k: v for k, v in (config.get("metadata") or {}).items()
                                         if k != "config_source"}}  # where the YAML lies, not what it says
        tags[f"lm_eval.config_hash.{name}"] = hashlib.sha256(
            json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]
        tags[f"lm_eval.task_version.{name}"] = str(results.get("versions", {}).get(name, ""))
    for name, samples in results.get("samples", {}).items():
        tags[f"lm_eval.task_hash.{name}"] = hash_string(
            "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples))
    return metrics, tags


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("lm_eval")
