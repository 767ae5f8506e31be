"""Cold-start items: the FM with side features on items held out entirely, beside the baselines.

The numbers come from `recsys.eval.experiments.cold_start_rmse` (the same loop, metrics and
fallback shares as `evaluate cold-start`) on the shared cold-item split of `recsys.eval.splits`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.data.dataset import Dataset
from recsys.eval.experiments import cold_start_rmse
from recsys.eval.splits import make_splits
from recsys.features.baselines import genre_features
from recsys.features.item_features import ItemFeatures
from recsys.models.base import clone
from recsys.models.fm import FactorizationMachine, _side_blocks
from recsys.models.means import GlobalMeanPredictor
from recsys.models.mf import BiasedMF
from recsys.progress import Progress

# cold_start_rmse always adds this baseline under this label.
_USER_MEAN = "user mean"


def cold_start_report(
    dataset: Dataset,
    features: dict[str, ItemFeatures] | ItemFeatures | None = None,
    item_share: float = 0.2,
    seed: int = 0,
    n_factors: int | None = None,
    n_epochs: int | None = None,
    burn_in: int | None = None,
    max_side_dims: int | None = 32,
    device=None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """RMSE/MAE on items held out entirely (none of their ratings in train), one row per model.

    Rows: global mean, user mean (the baseline), biased MF (which can only say μ + b_u for an unseen
    item), the FM on ids only (no item information: the user's "average rated item"), the FM with
    ``features`` (default: the dataset's genres) and the same with the textbook zero prior for unseen
    ids (see FactorizationMachine's ``unseen``). Feature blocks wider than ``max_side_dims`` (raw CNN
    vectors) are PCA-reduced inside each fit, on that split's training items only. Uses the shared
    cold-item split of ``recsys.eval.splits`` so the content predictor's cold-start numbers are on the
    same items. Columns: model, features, rmse, mae, n_test, n_cold_items, test_share_with_features,
    fit_s, fallback_share, seed, item_share.
    """
    if features is None:
        features = {"genres": genre_features(dataset)}
    blocks = _side_blocks(features)
    feature_name = " + ".join(block.name for block in blocks)
    splits = make_splits(dataset.ratings, kind="cold_items", seed=seed, item_share=item_share)
    fold = splits[0]
    settings = {"n_factors": n_factors, "n_epochs": n_epochs, "burn_in": burn_in}  # None: the FM's defaults
    fm = FactorizationMachine(
        **{key: value for key, value in settings.items() if value is not None},
        max_side_dims=max_side_dims,
        seed=seed,
        device=device,
    )
    mf = BiasedMF(seed=seed, device=device)
    rows = {  # (model, features) -> unfitted estimator, in the order of the report
        ("global mean", "-"): GlobalMeanPredictor(),
        (f"biased MF ({mf.solver.upper()})", "ids"): mf,
        ("FM (MCMC)", "ids"): clone(fm, side_features=None, unseen="user_average"),
        ("FM (MCMC)", f"ids + {feature_name}"): clone(fm, side_features=features, unseen="user_average"),
        ("FM (MCMC, zero prior)", f"ids + {feature_name}"): clone(fm, side_features=features, unseen="zero"),
    }
    labels = {f"{model} · {feats}": (model, feats) for model, feats in rows}
    frame = cold_start_rmse(splits, {label: rows[key] for label, key in labels.items()}, progress=progress)
    labels[_USER_MEAN] = (_USER_MEAN, "-")
    pairs = [labels[label] for label in frame["model"]]
    frame["model"], frame["features"] = [m for m, _ in pairs], [f for _, f in pairs]
    order = ["global mean", _USER_MEAN]
    frame["_order"] = [order.index(m) if m in order else len(order) for m in frame["model"]]
    frame = frame.sort_values("_order", kind="stable").drop(columns=["_order", "fold"]).reset_index(drop=True)
    test_items = fold.test["item_id"].to_numpy()
    with_features = np.isin(test_items, np.concatenate([block.item_ids for block in blocks]))
    frame = frame.rename(columns={"n": "n_test"})
    frame["n_cold_items"] = len(fold.cold_items)
    frame["test_share_with_features"] = float(with_features.mean())
    frame["seed"] = seed
    frame["item_share"] = item_share
    columns = ["model", "features", "rmse", "mae", "n_test", "n_cold_items", "test_share_with_features", "fit_s"]
    return frame[columns + ["fallback_share", "seed", "item_share"]]
