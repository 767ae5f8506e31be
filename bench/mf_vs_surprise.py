"""Our biased MF and factorization machine against Surprise's SVD and SVD++ on one ML-100K split.

All models get the same seed-0 80/20 holdout (recsys.eval.splits). Ours at their defaults (the
measured best settings, see the README): BiasedMF, the FM on ids + genres and the same with lite0
poster features (PCA on the training items) as one more block, plus the previous MF default (ALS,
k=20, 15 sweeps) for reference. Poster features come from the feature store; without a cached
extraction the script extracts them (``--no-extract`` skips that) and leaves that row out, with a
note, if that is impossible. Then the cold-start item split: the FM with side features on items it
never saw, next to the user-mean baseline. bench/fm_vs_myfm.py compares the FM with myFM.

    .venv/bin/python bench/mf_vs_surprise.py [--data-dir DIR] [--no-svdpp] [--no-extract] [--no-cold-start]

Last line: mf_rmse=… fm_rmse=… fm_posters_rmse=… svd_rmse=… svdpp_rmse=… mf_s=… fm_s=… svd_s=…
svdpp_s=… cold_fm_rmse=… cold_user_mean_rmse=…
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _data import SHARED_DATA_DIR

from recsys.config import torch_device_name
from recsys.data import load_dataset
from recsys.eval.cold_start import cold_start_report
from recsys.eval.metrics import mae, rmse
from recsys.eval.splits import make_splits
from recsys.features.baselines import genre_features
from recsys.models.fm import FactorizationMachine
from recsys.models.mf import BiasedMF


def poster_features(dataset, extract: bool):
    """The lite0 poster features (raw: each fit reduces them on its own training items), or None
    with the reason printed."""
    try:
        from recsys.features.representations import resolve

        last = [0.0]

        def progress(done, total, message):
            if time.perf_counter() - last[0] > 15:
                last[0] = time.perf_counter()
                print(f"  {done}/{total} {message}", flush=True)

        features = resolve(dataset, "poster:tf_efficientnet_lite0", extract=extract, progress=progress)
        print(
            f"poster features: {len(features)} items x {features.dim} dims (PCA inside each fit, on its training items)"
        )
        return features
    except Exception as exc:  # noqa: BLE001 - the benchmark must still compare the models without posters
        print(f"note: poster features unavailable ({type(exc).__name__}: {exc}); no poster row")
        return None


def describe(model) -> str:
    if isinstance(model, BiasedMF):
        return f"{model.solver}, k={model.n_factors}, {model.n_epochs} sweeps"
    return f"{model.solver}, k={model.n_factors}, {model.n_epochs} sweeps, implicit={model.implicit}"


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
    genres = {"genres": genre_features(dataset)}
    posters = poster_features(dataset, extract=not args.no_extract)
    FactorizationMachine(implicit="both", side_features=genres, n_epochs=2, burn_in=1).fit(train.head(2000))  # numba

    rows = {}

    def report(key, name, fit, predict):
        model, predictions, fit_s, predict_s = timed(fit, predict)
        rows[key] = (rmse(truth, predictions), mae(truth, predictions), fit_s, predict_s)
        print(
            f"{name:<66} rmse={rows[key][0]:.4f} mae={rows[key][1]:.4f} fit={fit_s:7.2f}s predict={predict_s:6.2f}s",
            flush=True,
        )
        return model

    ours = lambda model: model.predict(users, items)  # noqa: E731
    report("mf", f"ours BiasedMF, defaults ({describe(BiasedMF())})", lambda: BiasedMF(seed=0).fit(train), ours)
    report(
        "mf_als",
        "ours BiasedMF ALS (k=20, 15 sweeps, reg 0.15: the previous default)",
        lambda: BiasedMF(n_factors=20, n_epochs=15, reg=0.15, solver="als", seed=0).fit(train),
        ours,
    )
    fm = FactorizationMachine()
    report(
        "fm",
        f"ours FM ids + genres, defaults ({describe(fm)})",
        lambda: FactorizationMachine(side_features=genres, seed=0).fit(train),
        ours,
    )
    if posters is not None:
        report(
            "fm_posters",
            "ours FM ids + genres + lite0 posters (PCA 64), defaults",
            lambda: FactorizationMachine(side_features={**genres, "posters": posters}, seed=0).fit(train),
            ours,
        )

    trainset = SurpriseDataset.load_from_df(
        train[["user_id", "item_id", "rating"]], Reader(rating_scale=(1, 5))
    ).build_full_trainset()
    pairs = list(zip(users.tolist(), items.tolist()))
    surprise = lambda algo: np.array([algo.predict(u, i).est for u, i in pairs])  # noqa: E731
    report("svd", "Surprise SVD (defaults, k=100, 20 epochs)", lambda: SVD(random_state=0).fit(trainset), surprise)
    if not args.no_svdpp:
        report(
            "svdpp",
            "Surprise SVD++ (defaults, k=20, 20 epochs)",
            lambda: SVDpp(random_state=0, cache_ratings=True).fit(trainset),
            surprise,
        )

    cold = ""
    if not args.no_cold_start:
        print("\ncold start: 20% of the items held out entirely (seed 0)")
        side = {**genres, **({"posters": posters} if posters is not None else {})}
        report_frame = cold_start_report(dataset, side, item_share=0.2, seed=0)
        print(
            report_frame[
                ["model", "features", "rmse", "mae", "n_test", "n_cold_items", "fit_s", "fallback_share"]
            ].to_string(index=False, float_format="%.4f")
        )
        fm_cold = report_frame[(report_frame.model == "FM (MCMC)") & (report_frame.features != "ids")]["rmse"].item()
        user_mean_cold = report_frame[report_frame.model == "user mean"]["rmse"].item()
        cold = f" cold_fm_rmse={fm_cold:.4f} cold_user_mean_rmse={user_mean_cold:.4f}"

    nan = (float("nan"),) * 4
    get = lambda key: rows.get(key, nan)  # noqa: E731
    print(
        f"mf_rmse={get('mf')[0]:.4f} fm_rmse={get('fm')[0]:.4f} fm_posters_rmse={get('fm_posters')[0]:.4f} "
        f"svd_rmse={get('svd')[0]:.4f} svdpp_rmse={get('svdpp')[0]:.4f} mf_s={get('mf')[2]:.2f} "
        f"fm_s={get('fm')[2]:.2f} svd_s={get('svd')[2]:.2f} svdpp_s={get('svdpp')[2]:.2f}{cold}"
    )


if __name__ == "__main__":
    main()
