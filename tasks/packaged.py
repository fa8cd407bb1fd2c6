"""Data files that a pip package ships (installed with ``--no-deps``), or that a user keeps
in a task's ``data_dir`` under the same file name."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from benchmark.api.task import DataNotFoundError


def find_packaged_file(task: str, data_dir: str | None, file_name: str, package: str, folder: str,
                       install: str) -> Path:
    """``data_dir/file_name`` when a directory is given, else ``<package>/<folder>/file_name``;
    a clear error naming the path and the install command when it is not there. The package
    is found without importing it (some import heavy things)."""
    if data_dir:
        path = Path(data_dir) / file_name
        if not path.is_file():
            raise DataNotFoundError(f"{path} not found: {task} reads {file_name} from its data_dir "
                                    f"(or, without data_dir, from the {package} package: {install})")
        return path
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(f"{task} needs {file_name} from the {package} package: {install}")
    path = Path(spec.submodule_search_locations[0]) / folder / file_name
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found in the installed {package}; reinstall it: {install}")
    return path
