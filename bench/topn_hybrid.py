"""Top-N hybrid CF: vectorised sweep vs a per-user loop peer, on real ML-100K (posters or genres).

Times (1) the per-user loop (numpy per row: similarities, neighbours, scores) for plain CF at
K=10, N=5, (2) HybridUserKNN fit + the same lists, and checks that both give identical lists;
then (3) the full α × K study of `recsys.eval.topn_study` (20 settings, metrics, CIs, paired tests).
Last line: loop_s=… vectorised_s=… vectorised_first_s=… ratio=… lists_equal=… study_s=… precision_a1=… precision_a0.5=…
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recsys.data import load_dataset
from recsys.eval.ranking_metrics import list_codes
from recsys.eval.topn_study import run_topn_study
from recsys.features.item_features import ItemFeatures
from recsys.models.base import RatingMatrix
from recsys.models.hybrid import HybridUserKNN


def per_user_loop(train, k: int, n: int) -> np.ndarray:
    """The straightforward peer: one user at a time, same rules as HybridUserKNN at α = 1."""
    ratings = RatingMatrix(train).matrix.toarray()
    norms = np.linalg.norm(ratings, axis=1)
    lists = np.full((len(ratings), n), -1)
    for u in range(len(ratings)):
        sims = ratings @ ratings[u] / (norms * norms[u])
        sims[u] = -np.inf
        sims[sims <= 0] = -np.inf
        neighbours = np.argsort(-sims, kind="stable")[:k]
        neighbours = neighbours[np.isfinite(sims[neighbours])]
        scores = sims[neighbours] @ ratings[neighbours]
        candidate = (ratings[neighbours] > 0).any(axis=0) & (ratings[u] == 0)
        scores = np.where(candidate, scores, -np.inf)
        ranked = np.argsort(-scores, kind="stable")[:n]
        ranked = ranked[np.isfinite(scores[ranked])]
        lists[u, : len(ranked)] = ranked
    return lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--features", choices=("genre", "poster"), default="genre")
    args = parser.parse_args()
    from _data import SHARED_DATA_DIR

    dataset = load_dataset("ml-100k", args.data_dir or SHARED_DATA_DIR)
    if args.features == "poster":
        from recsys.features.config import RunOptions, make_config
        from recsys.features.extract import extract

        features = extract(dataset, make_config(dataset, "posters"), RunOptions()).features
    else:
        features = ItemFeatures.from_frame(dataset.genres.astype(np.float32), name="genre one-hot")
    train = dataset.ratings
    start = time.perf_counter()
    loop_lists = per_user_loop(train, k=10, n=5)
    loop_s = time.perf_counter() - start
    # The first call in a process also loads the compiled numba kernels (once per process: a
    # running dashboard pays it once); `vectorised_s` is the second call, `vectorised_first_s` the first.
    times = []
    for _ in range(2):
        start = time.perf_counter()
        model = HybridUserKNN(k=10, n=5).fit(train)
        fast_lists = list_codes(model.recommend(), model.user_ids_, model.item_ids_, 5)
        times.append(time.perf_counter() - start)
    fast_first_s, fast_s = times
    equal = bool(np.array_equal(loop_lists, fast_lists))
    print(f"per-user loop {loop_s:.2f} s, vectorised {fast_s:.2f} s, identical lists: {equal}")
    result = run_topn_study(dataset, features)
    at10 = result.summary[(result.summary["k"] == 10) & (result.summary["metric"] == "precision")].set_index("alpha")
    print(result.meta)
    print(
        f"loop_s={loop_s:.2f} vectorised_s={fast_s:.2f} vectorised_first_s={fast_first_s:.2f} "
        f"ratio={loop_s / fast_s:.1f} lists_equal={equal} "
        f"study_s={result.meta['seconds']:.1f} features={args.features} "
        f"precision_a1={at10.loc[1.0, 'mean']:.4f} precision_a0.5={at10.loc[0.5, 'mean']:.4f}"
    )


if __name__ == "__main__":
    main()
