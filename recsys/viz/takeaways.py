"""One-sentence takeaways computed from a page's numbers (the last line of every analysis page).

Each function takes the frame or dict the page already shows and returns one plain sentence that
states the result with its n and its 95 % interval, and says so when the interval does not
separate a difference from zero ("not told apart"). No sentence claims more than its numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

BASELINE_NAMES = ("global mean", "user mean")


def _n(value: int) -> str:
    return f"{int(value):,}"


def _short(name: str) -> str:
    """'poster · tf_efficientnet_lite0 (64 items)' -> 'poster · tf_efficientnet_lite0'."""
    text = str(name)
    return text.split(" (")[0] if text.endswith(" items)") else text


def _signed(value: float, digits: int = 4) -> str:
    return f"{value:+.{digits}f}"


# ---- Rating prediction ----------------------------------------------------------------------------
def rating_takeaway(table: pd.DataFrame, metric: str = "rmse", dataset: str = "this dataset") -> str:
    """From :func:`recsys.eval.headline.headline_table` with reference = the best model.

    "posters do not beat genres on ml-100k: RMSE 0.9495 vs 0.9481, difference +0.0014 inside the
    95 % interval [-0.0011, 0.0039] (n = 20,000 held-out ratings); ..."
    """
    value = metric.upper()
    if table.empty or value not in table.columns:
        return ""
    models = table[~table["model"].isin(BASELINE_NAMES)].sort_values(value)
    if models.empty:
        return ""
    best = models.iloc[0]
    n = _n(best["n"])
    baselines = table[table["model"].isin(BASELINE_NAMES)].set_index("model")[value]
    tail = ""
    if "user mean" in baselines:
        beaten = float(best[value]) < float(baselines["user mean"])
        tail = (
            f"; the user-mean baseline scores {baselines['user mean']:.4f}"
            if beaten
            else f"; none beats the user-mean baseline ({baselines['user mean']:.4f})"
        )
    if len(models) == 1:
        return (
            f"{_short(best['model'])} reaches {value} {best[value]:.4f} "
            f"(95 % interval [{best['CI low']:.4f}, {best['CI high']:.4f}], n = {n} held-out ratings){tail}."
        )
    second = models.iloc[1]
    if "separated" in models.columns and not bool(second["separated"]):
        return (
            f"{_short(second['model'])} does not beat {_short(best['model'])} on {dataset}: "
            f"{value} {second[value]:.4f} vs {best[value]:.4f}, difference {_signed(second['vs reference'])} "
            f"inside the 95 % interval [{second['diff low']:+.4f}, {second['diff high']:+.4f}] "
            f"(n = {n} held-out ratings){tail}."
        )
    return (
        f"{_short(best['model'])} predicts best on {dataset}: {value} {best[value]:.4f} vs "
        f"{second[value]:.4f} for {_short(second['model'])}, a difference of {_signed(-second['vs reference'])} "
        f"outside the 95 % interval [{-second['diff high']:+.4f}, {-second['diff low']:+.4f}] "
        f"(n = {n} held-out ratings){tail}."
    )


def r2_takeaway(r2: pd.DataFrame) -> str:
    """From :func:`recsys.eval.experiments.embedding_r2` (ridge, strength by inner CV)."""
    if r2.empty:
        return ""
    ranked = r2.sort_values("r2_cv", ascending=False)
    best = ranked.iloc[0]
    parts = []
    for row in ranked.itertuples():
        verdict = "" if row.r2_cv_low > 0 else ", not told apart from zero"
        parts.append(
            f"{_short(row.representation)} {row.r2_cv:.3f} [{row.r2_cv_low:.3f}, {row.r2_cv_high:.3f}]{verdict}"
        )
    share = max(best.r2_cv, 0.0) * 100
    return (
        f"Item features explain little of an item's mean rating: at most {share:.1f} % of its variance on "
        f"held-out items (cross-validated R², 95 % interval over {int(best.folds)} folds, "
        f"{_n(best.n_items)} items: " + "; ".join(parts) + ")."
    )


# ---- Fusion ---------------------------------------------------------------------------------------
def fusion_takeaway(gain: Mapping, baselines: Mapping[str, float] | None = None, subset: str = "all") -> str:
    """From :func:`recsys.eval.headline.fusion_gain` (and the mean baselines of the same subset)."""
    estimate = gain["gain"]
    metric = str(gain.get("metric", "rmse")).upper()
    where = "cold-start items" if subset == "cold-start" else "all held-out ratings"
    folds, n = int(gain["folds"]), _n(gain["n"])
    base = ""
    if baselines and "user mean" in baselines:
        user_mean = float(baselines["user mean"])
        if gain["cf"] > user_mean:
            base = f"; note CF alone ({gain['cf']:.4f}) is worse than each user's mean ({user_mean:.4f})" + (
                ", because CF cannot score an item nobody rated in training and falls back to the global mean"
                if subset == "cold-start"
                else ""
            )
        else:
            base = f"; each user's mean scores {user_mean:.4f}"
    if gain["best_w"] >= 0.999:
        return f"On {where}, no fusion weight beats CF alone ({metric} {gain['cf']:.4f}, {folds} folds, n = {n}){base}."
    interval = f"[{estimate.low:+.4f}, {estimate.high:+.4f}]"
    if estimate.excludes_zero and estimate.value > 0:
        return (
            f"On {where}, blending content into CF at w = {gain['best_w']:.2f} lowers {metric} from "
            f"{gain['cf']:.4f} to {gain['fused']:.4f} (gain {estimate.value:+.4f}, 95 % interval {interval} over "
            f"{folds} folds, n = {n} ratings){base}."
        )
    return (
        f"On {where}, the best weight w = {gain['best_w']:.2f} changes {metric} by {estimate.value:+.4f} "
        f"({gain['cf']:.4f} → {gain['fused']:.4f}), inside the 95 % interval {interval} over {folds} folds "
        f"(n = {n} ratings): fusion is not told apart from CF alone{base}."
    )


# ---- Poster neighbours ------------------------------------------------------------------------------
def neighbours_takeaway(rows: list[Mapping], dataset: str = "this dataset") -> str:
    """From the two galleries' genre precision rows (genre_precision, low, high, chance, queries, n)."""
    if not rows:
        return ""
    if len(rows) == 1 or rows[0]["representation"] == rows[1]["representation"]:
        row = rows[0]
        return (
            f"{_short(row['representation'])}: genre precision@{row['n']} {row['genre_precision']:.3f} "
            f"[{row['low']:.3f}, {row['high']:.3f}] over {_n(row['queries'])} movies, chance {row['chance']:.3f}."
        )
    a, b = rows[0], rows[1]
    se_a = (a["high"] - a["low"]) / (2 * 1.959964)
    se_b = (b["high"] - b["low"]) / (2 * 1.959964)
    diff = a["genre_precision"] - b["genre_precision"]
    half = 1.959964 * math.sqrt(se_a**2 + se_b**2)
    low, high = diff - half, diff + half
    na, nb = _short(a["representation"]), _short(b["representation"])
    numbers = (
        f"genre precision@{a['n']} {a['genre_precision']:.3f} vs {b['genre_precision']:.3f} "
        f"(difference {diff:+.3f}, 95 % interval [{low:+.3f}, {high:+.3f}], {_n(min(a['queries'], b['queries']))} "
        f"query movies; chance {a['chance']:.3f})"
    )
    if low > 0:
        return f"On {dataset}, {na} finds same-genre neighbours more often than {nb}: {numbers}."
    if high < 0:
        return f"On {dataset}, {nb} finds same-genre neighbours more often than {na}: {numbers}."
    return f"On {dataset}, {na} and {nb} are not told apart: {numbers}."


# ---- Embedding map --------------------------------------------------------------------------------
def embedding_takeaway(representation: str, method: str, explained: list[float] | None, n_items: int) -> str:
    if method == "pca" and explained:
        kept = 100 * sum(explained[:2])
        return (
            f"The map's two PCA axes keep {kept:.0f} % of the variance of {_short(representation)} over "
            f"{_n(n_items)} items: clusters on it are real, but movies far apart here can still be close "
            "in the full feature space (the gallery of a clicked poster shows its true nearest neighbours)."
        )
    return (
        f"UMAP keeps neighbourhoods of {_short(representation)} ({_n(n_items)} items) but not distances between "
        "clusters: read groups, not gaps (the gallery of a clicked poster shows its true nearest neighbours)."
    )


# ---- Recommend ------------------------------------------------------------------------------------
def topn_takeaway(paired: pd.DataFrame, metric: str = "precision", k: int | None = None) -> str:
    """From the top-N study's paired tests (each α vs α = 1 at the same K)."""
    if paired is None or paired.empty:
        return ""
    rows = paired[paired["metric"] == metric]
    if k is not None and (rows["k"] == k).any():
        rows = rows[rows["k"] == k]
    if rows.empty:
        return ""
    best = rows.loc[rows["mean_diff"].idxmax()]
    interval = f"[{best['diff_ci_low']:+.4f}, {best['diff_ci_high']:+.4f}]"
    head = (
        f"The best poster mix (α = {best['alpha']:g}, K = {int(best['k'])}) changes {metric} by "
        f"{best['mean_diff']:+.4f} over plain CF (95 % interval {interval}, {_n(best['n_users'])} users)"
    )
    if best["diff_ci_low"] > 0:
        return head + ": posters help here."
    if best["diff_ci_high"] < 0:
        return head + ": every mix is worse than plain CF."
    return head + ": not told apart from plain CF."


# ---- Audience -------------------------------------------------------------------------------------
def audience_takeaway(table: pd.DataFrame, method: str, baseline: str, n: int = 10) -> str:
    """From the group evaluation's "all" rows (facet, method, f1, f1_low, f1_high, n_users)."""
    rows = table[table["facet"] == "all"].set_index("method")
    if method not in rows.index or baseline not in rows.index:
        return ""
    ours, base = rows.loc[method], rows.loc[baseline]
    users = _n(ours["n_users"])

    def text(row):
        if "f1_low" in row and not pd.isna(row["f1_low"]):
            return f"{row['f1']:.3f} [{row['f1_low']:.3f}, {row['f1_high']:.3f}]"
        return f"{row['f1']:.3f}"

    overlap = (
        "f1_low" in ours
        and not pd.isna(ours.get("f1_low"))
        and ours["f1_low"] <= base["f1_high"]
        and base["f1_low"] <= ours["f1_high"]
    )
    if ours["f1"] < base["f1"] and not overlap:
        return (
            f"The reproduced method loses to its baseline: F1@{n} {text(ours)} for {method} vs {text(base)} for "
            f"{baseline} ({users} users, 95 % intervals)."
        )
    if overlap:
        return (
            f"The reproduced method and its baseline are not told apart: F1@{n} {text(ours)} for {method} vs "
            f"{text(base)} for {baseline} ({users} users, 95 % intervals overlap)."
        )
    return (
        f"The reproduced method beats its baseline: F1@{n} {text(ours)} vs {text(base)} for {baseline} ({users} users)."
    )


# ---- Data ----------------------------------------------------------------------------------------
def data_takeaway(summary: Mapping, activity: pd.DataFrame, dataset: str) -> str:
    users = activity.loc[activity["entity"] == "user", "n_ratings"]
    items = activity.loc[activity["entity"] == "item", "n_ratings"]
    return (
        f"{dataset}: {_n(summary['ratings'])} ratings by {_n(summary['users'])} users on {_n(summary['items'])} "
        f"items, {100 * summary['sparsity']:.1f} % of the user × item matrix empty; the median user rated "
        f"{users.median():.0f} items and the median item has {items.median():.0f} ratings."
    )
