"""One-time fix of SQLite stores made before artifact locations were relative to the store: rewrite
``experiments.artifact_location`` and ``runs.artifact_uri`` to the form relative to the store's
folder (``mlartifacts/<run>/artifacts``), under the store's lock, nothing else changed. A copied
store folder then reads its own artifacts.

    python scripts/fix_store_paths.py results/*/mlflow.db            # fix
    python scripts/fix_store_paths.py --dry-run results/*/mlflow.db  # say what would change

Exit status 1 if a store could not be fixed (nothing of that store is changed); see
:func:`benchmark.sweeps.store_paths.relativize_store` for the rules.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.sweeps.store_paths import RelocationError, absolute_locations, relativize_store  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", nargs="+", type=Path, help="mlflow.db files of SQLite stores")
    parser.add_argument("--dry-run", action="store_true", help="say what would change; change nothing")
    args = parser.parse_args(argv)
    failed = 0
    for db in args.stores:
        print(f"== {db}")
        try:
            relocation = relativize_store(db, dry_run=args.dry_run)
        except (RelocationError, FileNotFoundError) as error:
            print(f"not fixed: {error}")
            failed += 1
            continue
        print(relocation.describe())
        if not args.dry_run and absolute_locations(db):
            print(f"still absolute: {absolute_locations(db)[:3]}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
