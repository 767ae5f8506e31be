"""Headline numbers with their n and a 95 % interval, and whether a difference is told apart from zero.

The pages' big numbers (best-K RMSE, fusion gain, R², genre precision@N, top-N precision, group
F1) come from here with the interval that says how much they would move on other data of the
same size:

- :func:`rmse_interval` / :func:`mae_interval`: from per-rating errors (normal approximation of
  the mean squared / absolute error; the RMSE's bounds are the square roots of the MSE's);
- :func:`error_difference`: a paired difference of two models' RMSE (or MAE) on the same ratings
  (delta method on the paired squared errors), the right test for "do posters beat genres?";
- :func:`mean_interval`: a t-interval of a mean over folds, users or queries;
- :func:`rating_errors`: per-rating errors of user KNN / profile KNN at a chosen K (the same
  models as :func:`recsys.eval.experiments.rmse_vs_k`) and of the global-mean and user-mean
  baselines, pooled over folds in one order so that any two are paired;
- :func:`baseline_fold_rmse`: the two mean baselines per fold and subset (all / cold-start) of a
  fusion curve;
- :func:`fusion_gain`: CF alone vs the best fusion weight per fold, with a t-interval over folds;
- :func:`genre_precision_interval`: genre precision@N per query with its interval, optionally on a
  stated sample of query movies (all movies are still candidates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput, InvalidParameter
from recsys.features.item_features import ItemFeatures
from recsys.models.base import check_count
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress

Z95 = 1.959963984540054
BASELINES = ("global mean", "user mean")


@dataclass(frozen=True)
class Estimate:
    """A number with its 95 % interval and the count it rests on."""

    value: float
    low: float
    high: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies entirely above or below zero (the difference is "separated")."""
        return bool(self.low > 0 or self.high < 0)

    def interval(self, digits: int = 4) -> str:
        return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"

    def as_dict(self, prefix: str = "") -> dict:
        return {
            f"{prefix}value": self.value,
            f"{prefix}low": self.low,
            f"{prefix}high": self.high,
            f"{prefix}n": self.n,
        }


def _finite(values) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[np.isfinite(array)]
    if len(array) == 0:
        raise InvalidInput("no finite values to summarise")
    return array


def mean_interval(values, confidence: float = 0.95) -> Estimate:
    """Mean with a Student-t interval (n = number of values; one value: the interval is the value)."""
    from scipy import stats

    array = _finite(values)
    mean = float(array.mean())
    if len(array) < 2:
        return Estimate(mean, mean, mean, len(array))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(array) - 1) * array.std(ddof=1) / math.sqrt(len(array)))
    return Estimate(mean, mean - half, mean + half, len(array))


def rmse_interval(errors) -> Estimate:
    """RMSE of per-rating errors with a 95 % interval (square roots of the MSE's normal interval)."""
    squared = _finite(errors) ** 2
    mse = float(squared.mean())
    half = Z95 * float(squared.std(ddof=1)) / math.sqrt(len(squared)) if len(squared) > 1 else 0.0
    return Estimate(math.sqrt(mse), math.sqrt(max(mse - half, 0.0)), math.sqrt(mse + half), len(squared))


def mae_interval(errors) -> Estimate:
    """MAE of per-rating errors with a 95 % normal interval."""
    absolute = np.abs(_finite(errors))
    mean = float(absolute.mean())
    half = Z95 * float(absolute.std(ddof=1)) / math.sqrt(len(absolute)) if len(absolute) > 1 else 0.0
    return Estimate(mean, mean - half, mean + half, len(absolute))


def error_interval(errors, metric: str = "rmse") -> Estimate:
    if metric == "rmse":
        return rmse_interval(errors)
    if metric == "mae":
        return mae_interval(errors)
    raise InvalidParameter(f"metric must be 'rmse' or 'mae', got {metric!r}")


def error_difference(errors_a, errors_b, metric: str = "rmse") -> Estimate:
    """metric(a) − metric(b) on the same ratings, paired, with a 95 % interval (negative: a is better).

    RMSE: delta method on the paired squared errors, d = √m_a − √m_b with
    var(d) ≈ gᵀ Σ g / n, g = (1 / 2√m_a, −1 / 2√m_b), Σ the covariance of (e_a², e_b²).
    MAE: a paired mean of |e_a| − |e_b|.
    """
    a = np.asarray(errors_a, dtype=np.float64).ravel()
    b = np.asarray(errors_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InvalidInput(f"paired errors need the same ratings: {a.shape} vs {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n < 2:
        raise InvalidInput("a paired difference needs at least two ratings")
    if metric == "mae":
        return mean_interval(np.abs(a) - np.abs(b), confidence=0.95)
    if metric != "rmse":
        raise InvalidParameter(f"metric must be 'rmse' or 'mae', got {metric!r}")
    sa, sb = a**2, b**2
    ma, mb = float(sa.mean()), float(sb.mean())
    ra, rb = math.sqrt(ma), math.sqrt(mb)
    if ra == 0 or rb == 0:
        return Estimate(ra - rb, ra - rb, ra - rb, n)
    g = np.array([1 / (2 * ra), -1 / (2 * rb)])
    cov = np.cov(np.vstack([sa, sb]), ddof=1)
    half = Z95 * math.sqrt(max(float(g @ cov @ g), 0.0) / n)
    d = ra - rb
    return Estimate(d, d - half, d + half, n)


# ---- per-rating errors of the Rating page's models -------------------------------------------------
def rating_errors(
    folds,
    representations: Mapping[str, ItemFeatures | None],
    ks: Mapping[str, int],
    similarity: str = "cosine",
    min_support: int = 1,
    mean_centred: bool = True,
    relevance: str | float = "user_mean",
    baselines: bool = True,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Per held-out rating: truth and the error (prediction − truth) of every model, pooled over folds.

    A representation of None is ratings-only UserKNN, an ItemFeatures Ben Hassen's ProfileKNN,
    built by :func:`recsys.eval.experiments.knn_for` as in rmse_vs_k, each at its K from `ks`
    (so on one fold the RMSE here equals the curve's at that K). With `baselines`, the global
    mean and each user's mean are added. Columns: fold, user_id, item_id, rating, then one column
    of errors per model: rows are the same ratings for every model, so any two are paired.
    """
    from recsys.eval.experiments import as_folds, knn_for
    from recsys.models.means import GlobalMeanPredictor, UserMeanPredictor

    folds = as_folds(folds)
    progress = progress or _no_progress
    missing = [name for name in representations if name not in ks]
    if missing:
        raise InvalidParameter(f"no K given for {missing}")
    total = len(folds) * (len(representations) + (2 if baselines else 0))
    done, parts = 0, []
    for fold in folds:
        test = fold.test
        users, items = test["user_id"].to_numpy(), test["item_id"].to_numpy()
        truth = test["rating"].to_numpy(dtype=np.float64)
        part = pd.DataFrame({"fold": fold.fold, "user_id": users, "item_id": items, "rating": truth})
        if baselines:
            for name, model in (("global mean", GlobalMeanPredictor()), ("user mean", UserMeanPredictor())):
                progress(done, total, f"fold {fold.fold}: {name}")
                part[name] = model.fit(fold.train).predict(users, items) - truth
                done += 1
        for name, features in representations.items():
            progress(done, total, f"fold {fold.fold}: {name} at K={ks[name]}")
            k = check_count(ks[name], "K (neighbours)")
            model = knn_for(features, similarity, min_support, mean_centred, relevance)
            curve = model.fit(fold.train).predict_k_curve(users, items, [k])
            part[name] = curve.values[0] - truth
            done += 1
        parts.append(part)
    progress(total, total, "done")
    return pd.concat(parts, ignore_index=True)


def k_curve_with_errors(
    folds,
    representations: Mapping[str, ItemFeatures | None],
    ks,
    similarity: str = "cosine",
    min_support: int = 1,
    mean_centred: bool = True,
    relevance: str | float = "user_mean",
    baselines: bool = True,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """:func:`recsys.eval.experiments.rmse_vs_k`'s frame *and* the per-rating errors at each
    representation's best K, from one fit per (representation, fold) (half the work of the two
    calls: at ML-25M size a fit is minutes).

    Returns (curve, errors): `curve` has rmse_vs_k's columns and numbers; ``errors[metric]`` for
    metric in ("rmse", "mae") is :func:`rating_errors`'s frame with every representation at its best
    K for that metric (lowest mean over folds; ``errors[metric].attrs["ks"]`` maps name -> K).
    Progress follows the neighbour sweep inside each fit, so a long fit moves the bar.
    """
    from recsys.eval.experiments import as_folds, k_curve_rows, knn_for
    from recsys.models.means import GlobalMeanPredictor, UserMeanPredictor

    folds = as_folds(folds)
    if not representations:
        raise InvalidParameter("no representation to evaluate")
    progress = progress or _no_progress
    ks = [check_count(k, "K (neighbours)") for k in ks]
    steps = len(folds) * len(representations)
    scale = 1000  # sub-steps per fit, so the bar moves inside a long neighbour sweep
    rows, parts, predictions = [], [], {}
    for f_index, fold in enumerate(folds):
        test = fold.test
        users, items = test["user_id"].to_numpy(), test["item_id"].to_numpy()
        truth = test["rating"].to_numpy(dtype=np.float64)
        part = pd.DataFrame({"fold": fold.fold, "user_id": users, "item_id": items, "rating": truth})
        if baselines:
            for name, model in (("global mean", GlobalMeanPredictor()), ("user mean", UserMeanPredictor())):
                part[name] = model.fit(fold.train).predict(users, items) - truth
        parts.append(part)
        for r_index, (name, features) in enumerate(representations.items()):
            step = f_index * len(representations) + r_index
            label = f"fold {fold.fold}: {name}"
            progress(step * scale, steps * scale, label)

            def inner(done, total, message="", step=step, label=label):
                if total:
                    progress(step * scale + int(scale * min(done / total, 1.0)), steps * scale, f"{label} · {message}")

            model = knn_for(features, similarity, min_support, mean_centred, relevance)
            curve = model.fit(fold.train).predict_k_curve(users, items, ks, progress=inner)
            rows.extend(k_curve_rows(name, fold.fold, ks, truth, curve))
            predictions[(name, f_index)] = curve.values - truth[None, :]
    progress(steps * scale, steps * scale, "done")
    frame = pd.DataFrame(rows)
    errors = {}
    for metric in ("rmse", "mae"):
        means = frame.groupby(["representation", "k"], sort=False)[metric].mean()
        best = {name: int(means.loc[name].idxmin()) for name in representations}
        columns = []
        for f_index, part in enumerate(parts):
            extra = {name: predictions[(name, f_index)][ks.index(best[name])] for name in representations}
            columns.append(part.assign(**extra))
        table = pd.concat(columns, ignore_index=True)
        table.attrs["ks"] = best
        errors[metric] = table
    return frame, errors


def headline_table(
    errors: pd.DataFrame, metric: str = "rmse", reference: str | None = None, ks: Mapping[str, int] | None = None
) -> pd.DataFrame:
    """One row per model in `errors` (from :func:`rating_errors`): metric, 95 % interval, n, and the
    paired difference to `reference` with its interval and whether it excludes zero."""
    models = [c for c in errors.columns if c not in ("fold", "user_id", "item_id", "rating")]
    if reference is not None and reference not in models:
        raise InvalidParameter(f"reference {reference!r} is not among {models}")
    rows = []
    for name in models:
        estimate = error_interval(errors[name], metric)
        row = {
            "model": name,
            "K": (ks or {}).get(name),
            metric.upper(): estimate.value,
            "CI low": estimate.low,
            "CI high": estimate.high,
            "n": estimate.n,
        }
        if reference is not None:
            if name == reference:
                row.update({"vs reference": 0.0, "diff low": 0.0, "diff high": 0.0, "separated": False})
            else:
                diff = error_difference(errors[name], errors[reference], metric)
                row.update(
                    {
                        "vs reference": diff.value,
                        "diff low": diff.low,
                        "diff high": diff.high,
                        "separated": diff.excludes_zero,
                    }
                )
        rows.append(row)
    return pd.DataFrame(rows)


# ---- fusion --------------------------------------------------------------------------------------
def baseline_fold_rmse(folds) -> pd.DataFrame:
    """Global-mean and user-mean RMSE/MAE per fold on the fusion curve's subsets ("all", and
    "cold-start" = test items absent from that fold's train, when there are any).
    Columns: fold, subset, model, rmse, mae, n."""
    from recsys.eval.experiments import as_folds
    from recsys.models.means import GlobalMeanPredictor, UserMeanPredictor

    rows = []
    for fold in as_folds(folds):
        users, items = fold.test["user_id"].to_numpy(), fold.test["item_id"].to_numpy()
        truth = fold.test["rating"].to_numpy(dtype=np.float64)
        cold = ~np.isin(items, fold.train["item_id"].unique())
        subsets = {"all": np.ones(len(truth), dtype=bool)}
        if cold.any():
            subsets["cold-start"] = cold
        for name, model in (("global mean", GlobalMeanPredictor()), ("user mean", UserMeanPredictor())):
            error = model.fit(fold.train).predict(users, items) - truth
            for subset, mask in subsets.items():
                rows.append(
                    {
                        "fold": fold.fold,
                        "subset": subset,
                        "model": name,
                        "rmse": float(np.sqrt(np.mean(error[mask] ** 2))),
                        "mae": float(np.mean(np.abs(error[mask]))),
                        "n": int(mask.sum()),
                    }
                )
    return pd.DataFrame(rows)


def fusion_gain(curve: pd.DataFrame, subset: str = "all", metric: str = "rmse", w: float | None = None) -> dict:
    """CF alone (w = 1) minus the fusion at the best mean weight (or at `w`), per fold, with a
    t-interval over folds.

    The best w is chosen on the same folds (as in VT2's figures), which flatters it a little; the
    interval is over folds, so with 3-10 folds it is wide on purpose. Returns best_w, cf, fused,
    content (w = 0) means, gain (Estimate over folds), gain_pct, folds, n (ratings, all folds),
    n_per_fold (list).
    """
    for column in ("fold", "weight", "subset", metric, "n"):
        if column not in curve.columns:
            raise InvalidInput(f"fusion_gain: the curve lacks column {column!r}")
    rows = curve[curve["subset"] == subset]
    if rows.empty:
        raise InvalidParameter(f"no fusion rows for subset {subset!r}")
    means = rows.groupby("weight")[metric].mean()
    best_w = float(means.idxmin()) if w is None else float(means.index[np.argmin(np.abs(means.index - float(w)))])
    cf_w = float(means.index[np.argmin(np.abs(means.index - 1.0))])
    content_w = float(means.index[np.argmin(np.abs(means.index))])
    per_fold = rows.pivot_table(index="fold", columns="weight", values=metric)
    gains = per_fold[cf_w] - per_fold[best_w]
    n_per_fold = rows[np.isclose(rows["weight"], cf_w)].set_index("fold")["n"].astype(int)
    estimate = mean_interval(gains.to_numpy())
    cf = float(means[cf_w])
    return {
        "subset": subset,
        "metric": metric,
        "best_w": best_w,
        "cf": cf,
        "fused": float(means[best_w]),
        "content": float(means[content_w]),
        "gain": estimate,
        "gain_pct": 100.0 * estimate.value / cf if cf else float("nan"),
        "folds": int(len(gains)),
        "n": int(n_per_fold.sum()),
        "n_per_fold": n_per_fold.tolist(),
    }


# ---- genre precision@N -------------------------------------------------------------------------
def genre_precision_interval(
    features: ItemFeatures,
    genres: pd.DataFrame,
    max_n: int = 20,
    metric: str = "euclidean",
    max_queries: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """genre precision@N for N = 1..max_n with a 95 % t-interval over query movies.

    The same definition as :func:`recsys.eval.neighbours.genre_precision_curve` (movies with
    features and at least one genre; a neighbour counts when it shares a genre) and, with every
    movie as a query, the same numbers. `max_queries` draws a stated random sample of query
    movies (seeded) when there are more: neighbours are still searched among all movies.
    Columns: n, genre_precision, low, high, chance, queries, candidates, sampled, metric.
    """
    from recsys.eval import neighbours

    max_n = check_count(max_n, "max_n")
    common, flags = neighbours.items_with_genre(features, genres)
    matrix, _ = features.aligned(common.to_numpy())
    rows = np.arange(len(common))
    sampled = max_queries is not None and len(common) > max_queries
    if sampled:
        rows = np.sort(np.random.default_rng(seed).choice(len(common), size=int(max_queries), replace=False))
    n = min(max_n, len(common) - 1)
    if not sampled:
        found = neighbours.neighbour_indices(matrix, n, metric)
    else:
        # The same distances as neighbour_indices (private helpers of that module, on purpose: one
        # definition of the distance), for the sampled queries against every movie.
        prepared = neighbours._prepared(matrix, metric)
        norms = np.einsum("ij,ij->i", prepared, prepared)
        found = np.empty((len(rows), n), dtype=np.int64)
        for start in range(0, len(rows), 512):
            chunk = rows[start : start + 512]
            distances = neighbours._distances(prepared[chunk], prepared, metric, norms)
            distances[np.arange(len(chunk)), chunk] = np.inf
            part = np.argpartition(distances, n - 1, axis=1)[:, :n]
            order = np.argsort(np.take_along_axis(distances, part, axis=1), axis=1, kind="stable")
            found[start : start + len(chunk)] = np.take_along_axis(part, order, axis=1)
    flags_f = flags.astype(np.float32)
    hits = (flags_f[rows][:, None, :] * flags_f[found]).sum(axis=2) > 0
    cumulative = np.cumsum(hits, axis=1) / np.arange(1, n + 1)
    overlaps = (flags_f[rows] @ flags_f.T) > 0
    chance = float(((overlaps.sum(axis=1) - 1) / (len(common) - 1)).mean())
    out = []
    for column in range(n):
        estimate = mean_interval(cumulative[:, column])
        out.append(
            {
                "n": column + 1,
                "genre_precision": estimate.value,
                "low": estimate.low,
                "high": estimate.high,
                "chance": chance,
                "queries": len(rows),
                "candidates": len(common),
                "sampled": bool(sampled),
                "metric": metric,
            }
        )
    return pd.DataFrame(out)


def unpaired_difference(a: Estimate, b: Estimate) -> Estimate:
    """a − b from two independent estimates with normal intervals (standard errors read back from
    the intervals and added in quadrature). Conservative for numbers measured on the same items,
    whose positive correlation would narrow a paired interval."""
    se_a = (a.high - a.low) / (2 * Z95)
    se_b = (b.high - b.low) / (2 * Z95)
    diff = a.value - b.value
    half = Z95 * math.sqrt(se_a**2 + se_b**2)
    return Estimate(diff, diff - half, diff + half, min(a.n, b.n))


# ---- group F1 (Audience) -------------------------------------------------------------------------
def group_f1_intervals(per_user: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The group evaluation's table (``recsys.eval.groups.summarise``) with a 95 % bootstrap interval
    of each F1 (users resampled; F1 = harmonic mean of the mean precision and mean recall, the
    paper's formula): columns f1_low, f1_high added."""
    from recsys.eval.groups import summarise

    table = summarise(per_user)
    rng = np.random.default_rng(seed)
    lows, highs = [], []
    for row in table.itertuples():
        part = per_user[per_user["method"] == row.method]
        if row.facet == "age band":
            part = part[part["age_band"] == row.group]
        elif row.facet == "gender":
            part = part[part["gender"] == row.group]
        p = part["precision"].to_numpy(dtype=np.float64)
        r = part["recall"].to_numpy(dtype=np.float64)
        if len(p) < 2:
            lows.append(np.nan)
            highs.append(np.nan)
            continue
        draws = rng.integers(0, len(p), size=(n_boot, len(p)))
        mp, mr = p[draws].mean(axis=1), r[draws].mean(axis=1)
        f1 = np.divide(2 * mp * mr, mp + mr, out=np.zeros_like(mp), where=(mp + mr) > 0)
        lows.append(float(np.quantile(f1, 0.025)))
        highs.append(float(np.quantile(f1, 0.975)))
    table["f1_low"], table["f1_high"] = lows, highs
    return table
