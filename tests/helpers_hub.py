"""Write a data set in the Hugging Face hub's repository layout, as the hub stores it: a
``README.md`` whose YAML header declares each config's data files, and one parquet file per
config and split, ``<config>/<split>-00000-of-00001.parquet``, written by ``datasets`` itself
(so the schema carries the features, ClassLabel names included, as the hub's files do)."""
from __future__ import annotations

from pathlib import Path

import pytest


def write_hub_repo(repo_dir: Path, configs: dict[str, dict[str, dict[str, list]]],
                   features: dict[str, dict] | None = None) -> Path:
    """``configs``: ``{config: {split: {column: values}}}``; ``features``: ``{config:
    {column: datasets feature}}`` (defaults: inferred types)."""
    import datasets

    repo_dir.mkdir(parents=True, exist_ok=True)
    header = ["---", "configs:"]
    for config, splits in configs.items():
        header += [f"- config_name: {config}", "  data_files:"]
        for split, columns in splits.items():
            declared = (features or {}).get(config)
            table = datasets.Dataset.from_dict(columns, features=datasets.Features(declared) if declared else None)
            path = repo_dir / config / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            table.to_parquet(str(path))
            header += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    (repo_dir / "README.md").write_text("\n".join(header + ["---", "", "A local copy in the hub layout.", ""]))
    return repo_dir


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """A private Hugging Face datasets cache for this test (``datasets`` reads its cache
    folder from ``datasets.config`` at call time; ``HF_HOME`` counts only at import)."""
    import datasets

    cache = tmp_path / "hf-datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    return cache
