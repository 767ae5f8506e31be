"""Cold-start items: the FM with side features on items held out entirely, beside the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.features.baselines import genre_features
from recsys.features.item_features import ItemFeatures
from recsys.models.base import RatingMatrix
from recsys.models.fm import FactorizationMachine, _side_blocks
from recsys.models.mf import BiasedMF
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress


def cold_start_report(
    dataset,
    features: dict[str, ItemFeatures] | ItemFeatures | None = None,
    item_share: float = 0.2,
    seed: int = 0,
    n_factors: int = 10,
    n_epochs: int = 40,
    burn_in: int = 10,
    max_side_dims: int | None = 32,
    device=None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """RMSE/MAE on items held out entirely (none of their ratings in train), one row per model.

    Rows: global mean, user mean (the baseline), biased MF (which can only say μ + b_u for an unseen
    item), the FM on ids only (no item information: the user's "average rated item"), the FM with
    ``features`` (default: the dataset's genres) and the same with the textbook zero prior for unseen
    ids (see FactorizationMachine's ``unseen``). Feature blocks wider than ``max_side_dims`` (raw CNN
    vectors) are PCA-reduced inside each fit, on that split's training items only. Uses the shared cold-item split of
    ``recsys.eval.splits`` so the content predictor's cold-start numbers are on the same items.
    """
    import time

    from recsys.eval.metrics import mae, rmse
    from recsys.eval.splits import make_splits

    progress = progress or _no_progress
    if features is None:
        features = {"genres": genre_features(dataset)}
    blocks = _side_blocks(features)
    feature_name = " + ".join(block.name for block in blocks)
    fold = make_splits(dataset.ratings, kind="cold_items", seed=seed, item_share=item_share)[0]
    train, test = fold.train, fold.test
    truth = test["rating"].to_numpy(dtype=np.float64)
    users, items = test["user_id"].to_numpy(), test["item_id"].to_numpy()
    with_features = np.isin(items, np.concatenate([block.item_ids for block in blocks]))
    rows = []

    def add(model: str, feats: str, predictions: np.ndarray, seconds: float) -> None:
        rows.append(
            {
                "model": model,
                "features": feats,
                "rmse": rmse(truth, predictions),
                "mae": mae(truth, predictions),
                "n_test": len(truth),
                "n_cold_items": len(fold.cold_items),
                "test_share_with_features": float(with_features.mean()),
                "fit_s": seconds,
                "seed": seed,
                "item_share": item_share,
            }
        )

    matrix = RatingMatrix(train)
    global_mean = float(train["rating"].mean())
    add("global mean", "-", np.full(len(truth), global_mean), 0.0)
    codes = matrix.user_codes(users)
    user_mean = np.where(codes >= 0, matrix.user_means()[np.maximum(codes, 0)], global_mean)
    add("user mean", "-", user_mean, 0.0)  # a mean of ratings is always on the rating scale
    steps = 4
    start = time.perf_counter()
    mf = BiasedMF(seed=seed, device=device).fit(train)
    add("biased MF (ALS)", "ids", mf.predict(users, items), time.perf_counter() - start)
    progress(1, steps, "cold start: biased MF")
    fms = (
        ("FM (MCMC)", None, "user_average"),
        ("FM (MCMC)", features, "user_average"),
        ("FM (MCMC, zero prior)", features, "zero"),
    )
    for done, (label, side, unseen) in enumerate(fms, start=2):
        start = time.perf_counter()
        fm = FactorizationMachine(
            n_factors=n_factors,
            side_features=side,
            n_epochs=n_epochs,
            burn_in=burn_in,
            unseen=unseen,
            max_side_dims=max_side_dims,
            seed=seed,
            device=device,
        ).fit(train)
        add(
            label,
            "ids" if side is None else f"ids + {feature_name}",
            fm.predict(users, items),
            time.perf_counter() - start,
        )
        progress(done, steps, f"cold start: {label}")
    return pd.DataFrame(rows)
