"""Our biased MF and factorization machine against Surprise's SVD and SVD++ on one ML-100K split.

All models get the same seed-0 80/20 holdout (recsys.eval.splits). Ours: BiasedMF by ALS (the
default) and by Gibbs sampling, and the FM (MCMC, libFM-style) on ids + genres + poster features
(tf_efficientnet_lite0, PCA fitted on the training items only). Poster features come from the
feature store; without a cached extraction the script extracts them (``--no-extract`` skips that)
and falls back to genres alone, with a note, if that is impossible. Then the cold-start item split:
the FM with side features on items it never saw, next to the user-mean baseline.

    .venv/bin/python bench/mf_vs_surprise.py [--data-dir DIR] [--no-svdpp] [--no-extract] [--pca 32]

Last line: mf_rmse=… fm_rmse=… svd_rmse=… svdpp_rmse=… mf_s=… svd_s=…
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import SHARED_DATA_DIR

from recsys.config import torch_device_name
from recsys.data import load_dataset
from recsys.eval.cold_start import cold_start_report
from recsys.eval.metrics import mae, rmse
from recsys.eval.splits import make_splits
from recsys.features.baselines import genre_features
from recsys.models.fm import FactorizationMachine
from recsys.models.mf import BiasedMF


def poster_features(dataset, train_item_ids, n_components: int, extract: bool):
    """(raw, PCA-reduced) lite0 poster features, PCA fitted on training items; (None, None) with the
    reason printed when there are none."""
    try:
        from recsys.features.extract import extract_poster_features, load_cached_features
        from recsys.features.reduce import PCAReducer

        features = load_cached_features(dataset, "tf_efficientnet_lite0")
        if features is None and extract:
            print("poster features: not cached, extracting tf_efficientnet_lite0 (once) ...", flush=True)
            last = [0.0]

            def progress(done, total, message):
                if time.perf_counter() - last[0] > 15:
                    last[0] = time.perf_counter()
                    print(f"  {done}/{total} {message}", flush=True)

            result = extract_poster_features(dataset, "tf_efficientnet_lite0", progress=progress)
            print(f"poster features: {result.summary()}", flush=True)
            features = result.features
        if features is None:
            print(
                "note: no cached lite0 poster features (run `python -m recsys extract` or drop --no-extract); "
                "the FM uses genres only"
            )
            return None, None
        reduced = PCAReducer(n_components=n_components).fit(features, train_item_ids).transform(features)
        print(
            f"poster features: {len(features)} items x {features.dim} dims -> PCA {n_components} (fitted on training items)"
        )
        return features, reduced
    except Exception as exc:  # noqa: BLE001 - the benchmark must still compare the models without posters
        print(f"note: poster features unavailable ({type(exc).__name__}: {exc}); the FM uses genres only")
        return None, None


def timed(fit, predict):
    start = time.perf_counter()
    model = fit()
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    predictions = predict(model)
    return model, predictions, fit_s, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(SHARED_DATA_DIR))
    parser.add_argument("--no-svdpp", action="store_true", help="skip SVD++ (minutes on ML-100K)")
    parser.add_argument("--no-extract", action="store_true", help="use cached poster features only")
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--pca", type=int, default=32, help="PCA dims of the poster features")
    parser.add_argument("--fm-epochs", type=int, default=60)
    args = parser.parse_args()
    from surprise import SVD, Reader, SVDpp
    from surprise import Dataset as SurpriseDataset

    dataset = load_dataset("ml-100k", args.data_dir)
    train, test = make_splits(dataset.ratings, "holdout", seed=0, test_size=0.2)[0]
    truth = test["rating"].to_numpy(dtype=np.float64)
    users, items = test["user_id"].to_numpy(), test["item_id"].to_numpy()
    print(
        f"ml-100k: {len(train)} train / {len(test)} test ratings (holdout, seed 0); torch device {torch_device_name()}"
    )

    side = {"genres": genre_features(dataset)}
    raw_posters, posters = poster_features(dataset, train["item_id"].unique(), args.pca, extract=not args.no_extract)
    cold_side = dict(side)
    if posters is not None:
        side["posters"] = posters
        cold_side["posters"] = raw_posters  # reduced inside each cold-start fit, on its own training items
    side_name = " + ".join(side)

    rows = []

    def report(name, fit, predict):
        model, predictions, fit_s, predict_s = timed(fit, predict)
        rows.append((name, rmse(truth, predictions), mae(truth, predictions), fit_s, predict_s))
        print(
            f"{name:<44} rmse={rows[-1][1]:.4f} mae={rows[-1][2]:.4f} fit={fit_s:7.2f}s predict={predict_s:6.2f}s",
            flush=True,
        )
        return model

    ours = lambda model: model.predict(users, items)  # noqa: E731
    mf_default = BiasedMF(seed=0)
    mf_name = f"ours BiasedMF ALS (k={mf_default.n_factors}, {mf_default.n_epochs} sweeps)"
    fm_k = FactorizationMachine().n_factors
    fm_name = f"ours FM MCMC ids + {side_name} (k={fm_k})"
    report(mf_name, lambda: mf_default.fit(train), ours)
    report(
        "ours BiasedMF MCMC (k=10, 60 sweeps)",
        lambda: BiasedMF(n_factors=10, solver="mcmc", n_epochs=60, seed=0).fit(train),
        ours,
    )
    report(
        f"ours FM MCMC ids only (k={fm_k})",
        lambda: FactorizationMachine(n_epochs=args.fm_epochs, seed=0).fit(train),
        ours,
    )
    report(fm_name, lambda: FactorizationMachine(side_features=side, n_epochs=args.fm_epochs, seed=0).fit(train), ours)

    trainset = SurpriseDataset.load_from_df(
        train[["user_id", "item_id", "rating"]], Reader(rating_scale=(1, 5))
    ).build_full_trainset()
    pairs = list(zip(users.tolist(), items.tolist()))
    surprise = lambda algo: np.array([algo.predict(u, i).est for u, i in pairs])  # noqa: E731
    report("Surprise SVD (defaults, k=100, 20 epochs)", lambda: SVD(random_state=0).fit(trainset), surprise)
    if not args.no_svdpp:
        report(
            "Surprise SVD++ (defaults, k=20, 20 epochs)",
            lambda: SVDpp(random_state=0, cache_ratings=True).fit(trainset),
            surprise,
        )

    by_name = {row[0]: row for row in rows}
    mf = by_name[mf_name]
    fm = by_name[fm_name]
    svd = by_name["Surprise SVD (defaults, k=100, 20 epochs)"]
    svdpp = by_name.get("Surprise SVD++ (defaults, k=20, 20 epochs)", (None, float("nan")))

    if not args.no_cold_start:
        print("\ncold start: 20% of the items held out entirely (seed 0)")
        cold = cold_start_report(dataset, cold_side, item_share=0.2, seed=0, max_side_dims=args.pca)
        print(
            cold[["model", "features", "rmse", "mae", "n_test", "n_cold_items", "fit_s"]].to_string(
                index=False, float_format="%.4f"
            )
        )
        fm_cold = cold[(cold.model == "FM (MCMC)") & (cold.features != "ids")]["rmse"].item()
        user_mean_cold = cold[cold.model == "user mean"]["rmse"].item()
        print(f"cold_fm_rmse={fm_cold:.4f} cold_user_mean_rmse={user_mean_cold:.4f}")

    print(
        f"mf_rmse={mf[1]:.4f} fm_rmse={fm[1]:.4f} svd_rmse={svd[1]:.4f} svdpp_rmse={svdpp[1]:.4f} "
        f"mf_s={mf[3]:.2f} svd_s={svd[3]:.2f}"
    )


if __name__ == "__main__":
    main()
