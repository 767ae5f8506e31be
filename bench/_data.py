"""Where the benchmarks find data by default: the workplace's shared data beside the repository.

Benchmarks run by path from the repository root (``.venv/bin/python bench/x.py``), so Python puts
``bench/`` on the import path and they import this module as ``_data``; the package itself comes
from the editable install (no ``sys.path`` edits). ``--data-dir`` (or ``$RECSYS_BENCH_DATA_DIR``)
points a benchmark elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SHARED_DATA_DIR = Path(os.environ.get("RECSYS_BENCH_DATA_DIR") or REPOSITORY.parent / "shared" / "data")

if __name__ == "__main__":  # `make bench` runs every bench/*.py: say what this one is
    print(f"shared_data_dir={SHARED_DATA_DIR} present={(SHARED_DATA_DIR / 'ml-100k' / 'u.data').is_file()}")
