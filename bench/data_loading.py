"""Time the validated ML-100K loader against a naive, unvalidated pandas read of the same files.

Ours: load_ml100k (strict field counts, encodings, ranges, duplicates, referential checks) and
load_dataset (the same plus the ML-100K -> ML-1M title matcher and poster lookup).
Naive: three plain pd.read_csv calls with no checks at all, i.e. the floor for reading these files.
Also times the demo generator (fresh build in a temporary cache) and a cached demo load.

    .venv/bin/python bench/data_loading.py [--data-dir DIR] [--repeat N]

Last line: loader_s=… naive_s=… overhead=… load_dataset_s=… demo_build_s=… demo_cached_s=…
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
from _data import SHARED_DATA_DIR

from recsys.data import load_dataset
from recsys.data.movielens import load_ml100k


def naive_ml100k(folder: Path) -> tuple:
    ratings = pd.read_csv(folder / "u.data", sep="\t", header=None, names=["user_id", "item_id", "rating", "timestamp"])
    items = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1")
    users = pd.read_csv(folder / "u.user", sep="|", header=None)
    return ratings, items, users


def best_of(repeat: int, function, *args) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED_DATA_DIR))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(args.data_dir) / "ml-100k"
    naive_ml100k(folder), load_ml100k(folder)  # warm the page cache and imports
    naive = best_of(args.repeat, naive_ml100k, folder)
    ours = best_of(args.repeat, load_ml100k, folder)
    full = best_of(1, load_dataset, "ml-100k", args.data_dir)  # first call: matcher not yet cached
    dataset = load_dataset("ml-100k", args.data_dir)
    print(
        f"ML-100K: validated loader {ours:.3f}s, naive pandas {naive:.3f}s, load_dataset with "
        f"posters {full:.3f}s ({dataset.summary()['items_with_poster']} posters)"
    )
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RECSYS_CACHE_DIR"] = cache
        from recsys.data.demo import load_demo

        build = best_of(1, load_demo, 0)
        cached = best_of(args.repeat, load_demo, 0)
    print(f"demo: fresh build {build:.2f}s, cached load {cached:.3f}s")
    print(
        f"loader_s={ours:.3f} naive_s={naive:.3f} overhead={ours / naive:.2f} load_dataset_s={full:.3f} "
        f"demo_build_s={build:.2f} demo_cached_s={cached:.3f}"
    )


if __name__ == "__main__":
    main()
