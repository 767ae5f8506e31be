"""Top-N ranking metrics, confidence intervals over users and paired tests between settings.

Metrics never know which algorithm produced the lists (LensKit's habit). A recommendation list is
a sequence of item ids in rank order (best first); the relevant set of a user is the set of
held-out items the user liked (the study uses held-out ratings >= 4).

Definitions (N = the list length asked for, not the length actually produced, so a model that
cannot fill its list is charged for the empty slots):

- precision@N   |list ∩ relevant| / N
- recall@N      |list ∩ relevant| / |relevant|
- F1@N          harmonic mean of precision@N and recall@N (0 when both are 0)
- NDCG@N        binary-relevance DCG = Σ_{rank r} rel_r / log2(r + 1), divided by the ideal DCG
                of min(|relevant|, N) relevant items at the top (scikit-learn's ndcg_score, k=N)
- hit rate@N    1 if the list holds at least one relevant item, else 0
- genre diversity  number of distinct genres over the items of one list (mean over lists)
- popularity (novelty)  mean popularity of the listed items, popularity = share of training users
                who rated the item; lower means more novel
- catalogue coverage   share of the catalogue that appears in at least one user's list; a
                property of the set of lists, so its interval comes from a bootstrap over users.

Intervals: per-user metrics get a Student-t 95% interval of the mean over users,
mean ± t_{0.975, n-1} · sd / sqrt(n). Coverage gets a bootstrap interval (users resampled
with replacement, seeded) whose spread is re-centred on the estimate, because resampled user sets
always cover fewer items than the full set (the raw percentiles would lie below the estimate). Paired comparisons between two settings use the per-user differences:
paired t-test (scipy.stats.ttest_rel) and Wilcoxon signed-rank (scipy.stats.wilcoxon), with
Holm's step-down adjustment available for families of comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from recsys.errors import InvalidInput
from recsys.models.base import check_count

PER_USER_METRICS = ("precision", "recall", "f1", "ndcg", "hit_rate", "genre_diversity", "popularity")
ALL_METRICS = PER_USER_METRICS + ("coverage",)

METRIC_LABELS = {
    "precision": "precision@N",
    "recall": "recall@N",
    "f1": "F1@N",
    "ndcg": "NDCG@N",
    "hit_rate": "hit rate@N",
    "genre_diversity": "distinct genres per list",
    "popularity": "mean popularity (novelty, lower = more novel)",
    "coverage": "catalogue coverage",
}

METRIC_DEFINITIONS = {
    "precision": "liked held-out items in the list / N",
    "recall": "liked held-out items in the list / all liked held-out items of the user",
    "f1": "harmonic mean of precision@N and recall@N",
    "ndcg": "binary-relevance DCG of the list / ideal DCG (log2 rank discount)",
    "hit_rate": "share of users whose list holds at least one liked held-out item",
    "genre_diversity": "number of distinct genres among the N listed movies, mean over users",
    "popularity": "mean share of training users who rated the listed movies",
    "coverage": "share of the catalogue recommended to at least one user",
}


# ---- single lists -------------------------------------------------------------------------------
def _check_n(n: int) -> int:
    return check_count(n, "list length N")


def _top(recommended: Sequence, n: int) -> list:
    items = [item for item in list(recommended)[: _check_n(n)]]
    if len(set(items)) != len(items):
        raise InvalidInput(f"recommendation list repeats an item: {items}")
    return items


def hits_at_n(recommended: Sequence, relevant: Iterable, n: int) -> int:
    relevant = set(relevant)
    return sum(item in relevant for item in _top(recommended, n))


def precision_at_n(recommended: Sequence, relevant: Iterable, n: int) -> float:
    return hits_at_n(recommended, relevant, n) / _check_n(n)


def recall_at_n(recommended: Sequence, relevant: Iterable, n: int) -> float:
    relevant = set(relevant)
    if not relevant:
        raise InvalidInput("recall is undefined for a user with no relevant items")
    return hits_at_n(recommended, relevant, n) / len(relevant)


def f1_at_n(recommended: Sequence, relevant: Iterable, n: int) -> float:
    relevant = set(relevant)
    precision = precision_at_n(recommended, relevant, n)
    recall = recall_at_n(recommended, relevant, n)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def ndcg_at_n(recommended: Sequence, relevant: Iterable, n: int) -> float:
    relevant = set(relevant)
    if not relevant:
        raise InvalidInput("NDCG is undefined for a user with no relevant items")
    gains = np.array([item in relevant for item in _top(recommended, n)], dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, n + 2))
    ideal = discounts[: min(len(relevant), n)].sum()
    return float((gains * discounts[: len(gains)]).sum() / ideal)


def hit_at_n(recommended: Sequence, relevant: Iterable, n: int) -> float:
    return float(hits_at_n(recommended, relevant, n) > 0)


def genre_count(recommended: Sequence, genres: pd.DataFrame, n: int | None = None) -> int:
    """Distinct genres among the listed items; `genres` is the item x genre multi-hot frame."""
    items = list(recommended) if n is None else _top(recommended, n)
    if not items:
        return 0
    missing = pd.Index(items).difference(genres.index)
    if len(missing):
        raise InvalidInput(f"no genre row for items {list(missing)[:5]}")
    return int((genres.loc[items].to_numpy() > 0).any(axis=0).sum())


def catalogue_coverage(lists: Iterable[Sequence], catalogue_size: int) -> float:
    if catalogue_size < 1:
        raise InvalidInput("catalogue size must be positive")
    recommended = set()
    for items in lists:
        recommended.update(items)
    return len(recommended) / catalogue_size


# ---- many users at once ---------------------------------------------------------------------------
def per_user_metrics(
    recommendations: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    relevant: sp.csr_matrix | np.ndarray,
    n: int,
    genre_matrix: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
) -> pd.DataFrame:
    """Vectorised per-user metrics for a whole recommendation matrix.

    recommendations: (users, >= N) int array of item *codes* (column positions in `item_ids`),
        best first, -1 for empty slots.
    relevant: (users, items) boolean matrix (dense or sparse) of liked held-out items, rows in the
        order of `user_ids`. Users without any relevant item are dropped: recall and NDCG are
        undefined for them (the caller reports how many users remain).
    genre_matrix: (items, genres) multi-hot, rows in the order of `item_ids`.
    popularity: (items,) popularity per item code.
    """
    n = _check_n(n)
    recs = np.asarray(recommendations)[:, :n]
    if recs.ndim != 2 or len(recs) != len(user_ids):
        raise InvalidInput(f"recommendations shape {recs.shape} does not match {len(user_ids)} users")
    relevant = sp.csr_matrix(relevant, dtype=bool)
    filled = recs >= 0
    safe = np.where(filled, recs, 0)
    rows = np.repeat(np.arange(len(recs)), recs.shape[1]).reshape(recs.shape)
    gains = np.asarray(relevant[rows.ravel(), safe.ravel()]).reshape(recs.shape) & filled
    n_relevant = np.asarray(relevant.sum(axis=1)).ravel()
    hits = gains.sum(axis=1)
    keep = n_relevant > 0
    precision = hits / n
    recall = np.divide(hits, n_relevant, out=np.zeros(len(hits)), where=keep)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(len(hits)), where=denominator > 0)
    discounts = 1.0 / np.log2(np.arange(2, recs.shape[1] + 2))
    dcg = (gains * discounts).sum(axis=1)
    ideal_discount = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, n + 2)))])
    ideal = ideal_discount[np.minimum(n_relevant, n)]
    ndcg = np.divide(dcg, ideal, out=np.zeros(len(hits)), where=ideal > 0)
    frame = {
        "user_id": np.asarray(user_ids),
        "n_relevant": n_relevant,
        "list_length": filled.sum(axis=1),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ndcg": ndcg,
        "hit_rate": (hits > 0).astype(float),
    }
    if genre_matrix is not None:
        genre_matrix = np.asarray(genre_matrix) > 0
        per_slot = genre_matrix[safe] & filled[:, :, None]
        frame["genre_diversity"] = per_slot.any(axis=1).sum(axis=1).astype(float)
    if popularity is not None:
        popularity = np.asarray(popularity, dtype=float)
        slot_popularity = np.where(filled, popularity[safe], 0.0)
        frame["popularity"] = np.divide(
            slot_popularity.sum(axis=1), filled.sum(axis=1), out=np.full(len(hits), np.nan), where=filled.any(axis=1)
        )
    return pd.DataFrame(frame)[keep].reset_index(drop=True)


# ---- intervals and tests ---------------------------------------------------------------------------
def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean; NaNs are ignored; one value -> NaN bounds."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(values.mean())
    if len(values) < 2:
        return (mean, np.nan, np.nan)
    sem = values.std(ddof=1) / np.sqrt(len(values))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * sem)
    return (mean, mean - half, mean + half)


def format_estimate(mean: float, low: float, high: float, digits: int = 3) -> str:
    """'mean [low, high]'; just the mean when there is no interval; 'n/a' without a mean."""
    if np.isnan(mean):
        return "n/a"
    if np.isnan(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def coverage_with_ci(
    recommendations: np.ndarray,
    catalogue_size: int,
    confidence: float = 0.95,
    n_boot: int = 500,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Catalogue coverage of a (users, N) item-code matrix with a percentile bootstrap over users."""
    recs = np.asarray(recommendations)
    n_users = len(recs)
    if n_users == 0:
        return (np.nan, np.nan, np.nan)
    rows, slots = np.nonzero(recs >= 0)
    shown = sp.csr_matrix((np.ones(len(rows)), (rows, recs[rows, slots])), shape=(n_users, catalogue_size))
    point = float((np.asarray(shown.sum(axis=0)).ravel() > 0).sum() / catalogue_size)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_users, size=(n_boot, n_users))
    # Bootstrap weight of each user in each resample; an item is covered if any drawn user saw it.
    weights = np.zeros((n_boot, n_users))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n_users), draws.ravel()), 1.0)
    covered = (sp.csr_matrix(weights) @ shown).toarray() > 0
    boot = covered.sum(axis=1) / catalogue_size
    # A resample repeats some users and misses others, so it always covers fewer items than the
    # full set: the raw percentile interval would sit below the estimate. Re-centre the bootstrap
    # spread on the estimate (removing that bias) instead.
    shift = point - float(boot.mean())
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, alpha) + shift, np.quantile(boot, 1 - alpha) + shift
    return (point, float(max(low, 0.0)), float(min(high, 1.0)))


def paired_test(a, b) -> dict:
    """Compare two settings on the same users: a - b with t interval, paired t and Wilcoxon p-values.

    `a` and `b` are aligned per-user values. Pairs with a NaN on either side are dropped. When every
    difference is zero both tests report p = 1 (no evidence of a difference) instead of NaN.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise InvalidInput(f"paired test needs aligned values, got shapes {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = a[keep] - b[keep]
    mean, low, high = mean_ci(diff)
    result = {"n_users": int(keep.sum()), "mean_diff": mean, "diff_ci_low": low, "diff_ci_high": high}
    if len(diff) < 2 or np.allclose(diff, 0):
        result.update(t_stat=0.0, t_p=1.0 if len(diff) >= 2 else np.nan, wilcoxon_p=1.0 if len(diff) >= 2 else np.nan)
        return result
    t = stats.ttest_rel(a[keep], b[keep])
    result["t_stat"] = float(t.statistic)
    result["t_p"] = float(t.pvalue)
    result["wilcoxon_p"] = float(stats.wilcoxon(a[keep], b[keep], zero_method="wilcox").pvalue)
    return result


def holm_adjust(p_values) -> np.ndarray:
    """Holm's step-down family-wise adjustment (NaNs stay NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    if len(valid) == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def summarise_per_user(values: pd.DataFrame, metrics: Sequence[str] = PER_USER_METRICS) -> pd.DataFrame:
    """Tidy rows (metric, mean, ci_low, ci_high, n_users) from one per-user frame."""
    rows = []
    for metric in metrics:
        if metric not in values:
            continue
        mean, low, high = mean_ci(values[metric])
        rows.append(
            {
                "metric": metric,
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "n_users": int(values[metric].notna().sum()),
            }
        )
    return pd.DataFrame(rows)


def list_codes(lists: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray, n: int) -> np.ndarray:
    """The (users, N) code matrix of `per_user_metrics` from a top-N frame (user_id, rank, item_id).

    Rows follow `user_ids` (users without a list, or missing from the frame, get an all -1 row);
    codes are positions in `item_ids` (the catalogue).
    """
    n = _check_n(n)
    out = np.full((len(user_ids), n), -1, dtype=np.int64)
    lists = lists[lists["rank"] <= n]
    rows = pd.Index(np.asarray(user_ids)).get_indexer(lists["user_id"].to_numpy())
    codes = pd.Index(np.asarray(item_ids)).get_indexer(lists["item_id"].to_numpy())
    if (codes < 0).any():
        raise InvalidInput(f"recommended items not in the catalogue: {lists['item_id'].to_numpy()[codes < 0][:5]}")
    keep = rows >= 0
    out[rows[keep], lists["rank"].to_numpy()[keep] - 1] = codes[keep]
    return out


def lists_to_codes(lists: Mapping[int, Sequence] | Sequence[Sequence], item_ids: np.ndarray, n: int) -> np.ndarray:
    """Turn lists of item ids into the (users, N) code matrix that `per_user_metrics` takes."""
    n = _check_n(n)
    values = list(lists.values()) if isinstance(lists, Mapping) else list(lists)
    index = pd.Index(np.asarray(item_ids))
    out = np.full((len(values), n), -1, dtype=np.int64)
    for row, items in enumerate(values):
        items = _top(items, n)
        codes = index.get_indexer(np.asarray(items)) if items else np.array([], dtype=np.int64)
        if (codes < 0).any():
            raise InvalidInput(f"recommended items not in the catalogue: {np.asarray(items)[codes < 0][:5]}")
        out[row, : len(codes)] = codes
    return out
