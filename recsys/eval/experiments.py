"""Experiment runners: each returns a tidy pandas frame (one row per fold x parameter x model).

`folds` everywhere accepts a `Splits`, a list of `Fold`s, or one `(train, test)` tuple.
Models are passed as unfitted estimators (templates): each fold fits its own `clone`, so the
template is never changed and folds never share state. Long runs report through
`progress(done, total, message)`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput, InvalidParameter
from recsys.eval.metrics import fold_summary, mae, mae_rows, rmse, rmse_rows
from recsys.eval.splits import Fold
from recsys.features.item_features import ItemFeatures
from recsys.models.base import RatingPredictor, check_count, clone, predict_with_fallback, reports_fallback
from recsys.models.content import ContentPredictor
from recsys.models.fusion import check_weights, fuse_predictions
from recsys.models.knn import UserKNN
from recsys.models.means import UserMeanPredictor
from recsys.models.profiles import ProfileKNN
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress

logger = logging.getLogger(__name__)

# A fallback share above this is logged: the numbers then say more about the default than the model.
LARGE_FALLBACK_SHARE = 0.5

DEFAULT_KS = tuple(range(10, 101, 10))
DEFAULT_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def as_folds(folds) -> list[Fold]:
    """Normalise the accepted inputs to a list of Fold."""
    if isinstance(folds, tuple) and len(folds) == 2 and isinstance(folds[0], pd.DataFrame):
        train, test = folds
        return [Fold(0, train, test, np.arange(len(test)))]
    folds = list(folds)
    if not folds or not all(isinstance(fold, Fold) for fold in folds):
        raise InvalidParameter("folds must be a Splits, a list of Fold, or a (train, test) tuple of frames")
    return folds


def _check_estimator(model, what: str) -> RatingPredictor:
    """An unfitted estimator to clone per fold; factories (lambdas) are refused with the fix."""
    if not hasattr(model, "get_params"):
        raise InvalidParameter(
            f"{what} must be an estimator (e.g. UserKNN(k=40)), not {model!r}: experiments clone it per fold"
        )
    return model


def _log_fallback(label: str, fold: int, share: float) -> None:
    if share > LARGE_FALLBACK_SHARE:
        logger.warning("%s, fold %d: %.0f%% of the test pairs are fallback predictions", label, fold, 100 * share)


def _truth(test: pd.DataFrame) -> np.ndarray:
    return test["rating"].to_numpy(dtype=np.float64)


def _pairs(test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return test["user_id"].to_numpy(), test["item_id"].to_numpy()


# ---- RMSE vs neighbourhood size -----------------------------------------------------------------
def knn_for(features: ItemFeatures | None, similarity: str, min_support: int, mean_centred: bool, relevance):
    """The K-curve model of one representation: ratings-only UserKNN (None) or ProfileKNN on features."""
    if features is None:
        return UserKNN(similarity=similarity, min_support=min_support, mean_centred=mean_centred)
    return ProfileKNN(features, relevance=relevance, mean_centred=mean_centred)


def k_curve_rows(name: str, fold: int, ks: Sequence[int], truth: np.ndarray, curve) -> list[dict]:
    """rmse_vs_k's rows (one per K) for one representation and fold, from a predict_k_curve result."""
    shares = curve.fallback.mean(axis=1)
    return [
        {
            "representation": name,
            "fold": fold,
            "k": k,
            "rmse": row_rmse,
            "mae": row_mae,
            "n_test": len(truth),
            "fallback_share": fallback,
        }
        for k, row_rmse, row_mae, fallback in zip(
            ks, rmse_rows(truth, curve.values), mae_rows(truth, curve.values), shares
        )
    ]


def rmse_vs_k(
    folds,
    representations: Mapping[str, ItemFeatures | None],
    ks: Sequence[int] = DEFAULT_KS,
    similarity: str = "cosine",
    min_support: int = 1,
    mean_centred: bool = True,
    relevance: str | float = "user_mean",
    progress: Progress | None = None,
) -> pd.DataFrame:
    """RMSE/MAE of user KNN for every K, per representation and fold.

    A representation of None is the ratings-only UserKNN (`similarity`, `min_support`); an
    ItemFeatures is Ben Hassen's ProfileKNN on those features. Each (representation, fold) is fitted
    once and the whole K curve is read from one neighbour sort.
    Columns: representation, fold, k, rmse, mae, n_test, fallback_share.
    """
    folds = as_folds(folds)
    if not representations:
        raise InvalidParameter("no representation to evaluate")
    progress = progress or _no_progress
    ks = [check_count(k, "K (neighbours)") for k in ks]  # int() would run K=2.5 as K=2
    total = len(folds) * len(representations)
    rows, done = [], 0
    for fold in folds:
        users, items = _pairs(fold.test)
        truth = _truth(fold.test)
        for name, features in representations.items():
            progress(done, total, f"fold {fold.fold}: {name}")
            model = knn_for(features, similarity, min_support, mean_centred, relevance)
            curve = model.fit(fold.train).predict_k_curve(users, items, ks)
            _log_fallback(f"user KNN on {name}", fold.fold, float(curve.fallback.mean(axis=1).min()))
            rows.extend(k_curve_rows(name, fold.fold, ks, truth, curve))
            done += 1
    progress(total, total, "done")
    return pd.DataFrame(rows)


# ---- linear fusion ------------------------------------------------------------------------------
def fusion_curve(
    folds,
    features: ItemFeatures,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    cf_model: RatingPredictor | None = None,
    content_model: RatingPredictor | None = None,
    k: int = 40,
    top_m: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """r = w·r_CF + (1 − w)·r_content for every fusion weight w, per fold, on all test pairs and on
    the cold-start pairs (test items absent from that fold's train) when there are any.

    Both base models are cloned, fitted and predict once per fold (defaults: UserKNN(k=k) cosine
    and ContentPredictor(features, top_m)). `k` is the CF model's neighbours, never the weight.
    Columns: fold, weight (w), subset ("all" / "cold-start"), rmse, mae, n.
    """
    folds = as_folds(folds)
    weights = check_weights(weights)
    cf_model = _check_estimator(cf_model if cf_model is not None else UserKNN(k=k), "cf_model")
    if content_model is None:
        content_model = ContentPredictor(features, top_m=top_m)
    content_model = _check_estimator(content_model, "content_model")
    progress = progress or _no_progress
    rows = []
    for number, fold in enumerate(folds):
        progress(number, len(folds), f"fold {fold.fold}: fitting CF and content models")
        users, items = _pairs(fold.test)
        truth = _truth(fold.test)
        cf = clone(cf_model).fit(fold.train).predict(users, items)
        content = clone(content_model).fit(fold.train).predict(users, items)
        # A convex blend of in-scale predictions stays in scale: no clipping needed.
        fused = fuse_predictions(cf, content, weights)
        cold = ~np.isin(items, fold.train["item_id"].unique())
        subsets = {"all": np.ones(len(truth), dtype=bool)}
        if cold.any():
            subsets["cold-start"] = cold
        for subset, mask in subsets.items():
            for weight, row_rmse, row_mae in zip(
                weights, rmse_rows(truth[mask], fused[:, mask]), mae_rows(truth[mask], fused[:, mask])
            ):
                rows.append(
                    {
                        "fold": fold.fold,
                        "weight": float(weight),
                        "subset": subset,
                        "rmse": row_rmse,
                        "mae": row_mae,
                        "n": int(mask.sum()),
                    }
                )
    progress(len(folds), len(folds), "done")
    return pd.DataFrame(rows)


def fusion_summary(curve: pd.DataFrame, value: str = "rmse") -> pd.DataFrame:
    """Per subset and weight: mean, median, min, max, p10, p90, std over folds; `best` marks the
    weight with the lowest mean, `gain_vs_cf` = mean at weight 1 (CF alone) − mean at this weight."""
    rows = []
    for (subset, weight), group in curve.groupby(["subset", "weight"], sort=True):
        rows.append({"subset": subset, "weight": weight, **fold_summary(group[value].to_numpy())})
    summary = pd.DataFrame(rows)
    summary["best"] = False
    summary["gain_vs_cf"] = np.nan
    for _subset, group in summary.groupby("subset"):
        summary.loc[group["mean"].idxmin(), "best"] = True
        cf_alone = group.loc[np.isclose(group["weight"], 1.0), "mean"]
        if len(cf_alone):
            summary.loc[group.index, "gain_vs_cf"] = float(cf_alone.iloc[0]) - group["mean"]
    return summary


def best_fusion_weight(curve: pd.DataFrame, subset: str = "all") -> dict:
    """The weight with the lowest mean RMSE over folds and its gain over CF alone (weight 1)."""
    summary = fusion_summary(curve)
    rows = summary[summary["subset"] == subset]
    if rows.empty:
        raise InvalidParameter(f"no rows for subset {subset!r}")
    best = rows[rows["best"]].iloc[0]
    cf = rows.loc[np.isclose(rows["weight"], 1.0), "mean"]
    cf_rmse = float(cf.iloc[0]) if len(cf) else np.nan
    return {
        "subset": subset,
        "weight": float(best["weight"]),
        "rmse": float(best["mean"]),
        "cf_rmse": cf_rmse,
        "gain": cf_rmse - float(best["mean"]),
        "gain_pct": 100.0 * (cf_rmse - float(best["mean"])) / cf_rmse if cf_rmse else np.nan,
    }


# ---- cold start -----------------------------------------------------------------------------------
def cold_start_rmse(
    folds,
    models: Mapping[str, RatingPredictor],
    progress: Progress | None = None,
) -> pd.DataFrame:
    """RMSE/MAE on test items unseen in train, per model and fold, next to the user-mean baseline.

    `models` maps a label to an unfitted estimator, cloned and fitted per fold, e.g.
    {"content · poster": ContentPredictor(poster_features)}. Columns: fold, model, rmse, mae, n,
    fallback_share (pairs the model could not score and answered with its fallback; NaN for a model
    that does not report fallbacks), fit_s (seconds to fit).
    """
    folds = as_folds(folds)
    progress = progress or _no_progress
    all_models = {"user mean": UserMeanPredictor(), **models}
    for label, model in all_models.items():
        _check_estimator(model, f"model {label!r}")
    rows = []
    total = len(folds) * len(all_models)
    for number, fold in enumerate(folds):
        cold = fold.test[~fold.test["item_id"].isin(fold.train["item_id"].unique())]
        if cold.empty:
            raise InvalidInput(f"fold {fold.fold} has no cold-start test items: use a 'cold_items' split")
        users, items = _pairs(cold)
        truth = _truth(cold)
        for position, (label, template) in enumerate(all_models.items()):
            progress(number * len(all_models) + position, total, f"fold {fold.fold}: {label}")
            start = time.perf_counter()
            model = clone(template).fit(fold.train)
            fit_s = time.perf_counter() - start
            predictions, fallback = predict_with_fallback(model, users, items)
            share = float(np.mean(fallback)) if reports_fallback(model) else np.nan
            if not np.isnan(share):
                _log_fallback(str(label), fold.fold, share)
            rows.append(
                {
                    "fold": fold.fold,
                    "model": label,
                    "rmse": rmse(truth, predictions),
                    "mae": mae(truth, predictions),
                    "n": len(truth),
                    "fallback_share": share,
                    "fit_s": fit_s,
                }
            )
    progress(total, total, "done")
    return pd.DataFrame(rows)


# ---- how much of an item's mean rating do its embeddings explain? ----------------------------------
R2_ALPHAS = tuple(np.logspace(-3, 6, 19))  # ridge strengths RidgeCV chooses from (inner CV)


def embedding_r2(
    ratings: pd.DataFrame,
    features: ItemFeatures | Mapping[str, ItemFeatures],
    cv: int = 5,
    seed: int = 0,
    min_ratings: int = 1,
    alpha: float | str = "cv",
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Ridge regression from item embeddings to each item's mean rating.

    alpha="cv" (default) chooses the ridge strength among :data:`R2_ALPHAS` by inner
    cross-validation (scikit-learn's ``RidgeCV``, efficient leave-one-out) *inside* each outer
    training fold, so the held-out items never pick their own penalty; a number fixes it (0:
    ordinary least squares, which overfits wide CNN features badly: R² of -30 on 1,280-d posters).
    r2_in_sample is what the VT2 paper reports (fit and score on the same items; it grows with the
    dimension); r2_cv is the mean R² over `cv` shuffled outer folds, the honest number, with its
    spread over folds (std and a 95 % t-interval of the mean).
    Columns: representation, n_items, dim, alpha (the strength chosen on all items), r2_in_sample,
    r2_cv, r2_cv_std, r2_cv_low, r2_cv_high, folds.
    """
    from scipy import stats
    from sklearn.linear_model import LinearRegression, Ridge, RidgeCV
    from sklearn.model_selection import KFold, cross_val_score

    if isinstance(features, ItemFeatures):
        features = {features.name: features}
    if isinstance(cv, bool) or int(cv) != cv or cv < 2:
        raise InvalidParameter(f"cv must be a whole number of folds >= 2 for the cross-validated R², got {cv}")
    if isinstance(alpha, str):
        if alpha != "cv":
            raise InvalidParameter(
                f"alpha must be 'cv' (chosen by inner cross-validation) or a number >= 0, got {alpha!r}"
            )
    elif not alpha >= 0:
        raise InvalidParameter(f"alpha must be 'cv' or a number >= 0, got {alpha!r}")
    progress = progress or _no_progress
    counts = ratings.groupby("item_id")["rating"].agg(["mean", "size"])
    counts = counts[counts["size"] >= min_ratings]

    def make():
        if alpha == "cv":
            return RidgeCV(alphas=R2_ALPHAS, gcv_mode="svd")
        return Ridge(alpha=float(alpha)) if alpha > 0 else LinearRegression()

    rows = []
    for number, (name, item_features) in enumerate(features.items()):
        progress(number, len(features), f"regressing mean rating on {name}")
        matrix, present = item_features.aligned(counts.index.to_numpy())
        X = matrix[present].astype(np.float64)
        y = counts["mean"].to_numpy(dtype=np.float64)[present]
        if len(y) < 2 * cv:  # R² of a fold needs at least two held-out items
            raise InvalidInput(
                f"{name}: only {len(y)} rated items have features; need at least {2 * cv} for {cv}-fold R²"
            )
        full = make().fit(X, y)
        in_sample = full.score(X, y)
        scores = cross_val_score(make(), X, y, cv=KFold(cv, shuffle=True, random_state=seed), scoring="r2")
        half = float(stats.t.ppf(0.975, cv - 1) * scores.std(ddof=1) / np.sqrt(cv))
        rows.append(
            {
                "representation": name,
                "n_items": len(y),
                "dim": X.shape[1],
                "alpha": float(getattr(full, "alpha_", alpha if alpha != "cv" else np.nan)),
                "r2_in_sample": float(in_sample),
                "r2_cv": float(scores.mean()),
                "r2_cv_std": float(scores.std()),
                "r2_cv_low": float(scores.mean()) - half,
                "r2_cv_high": float(scores.mean()) + half,
                "folds": int(cv),
            }
        )
    progress(len(features), len(features), "done")
    return pd.DataFrame(rows)
