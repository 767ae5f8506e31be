"""Top-N study: does mixing poster taste into user-based CF change what users are recommended?

Protocol (shown verbatim by the Recommend page and `python -m recsys topn --help`):

1. Split. Every user's ratings are split at random, with a fixed seed, into 80 % training and
   20 % held out (per-user holdout: each user keeps ratings on both sides). The items a user rated
   4 or 5 among the held-out ones are that user's "liked" items, the ground truth. Users with no
   liked held-out item are left out of every metric (their count is reported as n_users).
2. Models. Hybrid user-based CF, fitted on the training ratings only:
   sim(u, v) = α · cos(ratings of u, ratings of v) + (1 − α) · cos(MUP(u), MUP(v)),
   MUP(u) = Σ r_ui · poster_features(i) over the training items u rated at or above u's mean
   (Ben Hassen; optionally from mean-centred features, see --centre-features). α = 1 is plain
   user-based CF. The K most similar users (sim > 0) are the neighbours; candidates are items a
   neighbour rated and u did not rate in training; the score of a candidate is Σ sim(u, v) · r_vi
   over the neighbours who rated it; the N best are listed.
3. Metrics per user on the N-item list: precision@N, recall@N, F1@N, NDCG@N (binary relevance),
   hit rate (≥ 1 liked item in the list), distinct genres in the list, mean popularity of the
   listed items (share of training users who rated them; lower = more novel). Catalogue coverage
   (share of all items recommended to anyone) is computed over all lists.
4. Uncertainty. 95 % Student-t confidence intervals of the mean over users; coverage gets a
   bootstrap over users (500 resamples, seeded; the spread is re-centred on the estimate because
   a resample of users always covers fewer items than all users do). Each α is compared with α = 1 at the
   same K on the same users: mean paired difference with its 95 % interval, paired t-test and
   Wilcoxon signed-rank p-values, and Holm-adjusted t-test p-values over all α × K comparisons
   of a metric.
5. Sweep. α ∈ {0, 0.25, 0.5, 0.75, 1} × K ∈ {5, 10, 20, 50} neighbours, N = 5 recommendations
   (Guo's setting is K = 10, N = 5). The split and the similarities are computed once; every
   setting sees the same users and the same held-out items.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.dataset import Dataset
from recsys.errors import InvalidInput, InvalidParameter
from recsys.eval import ranking_metrics as rm
from recsys.eval.splits import cached_splits, per_user_split
from recsys.features.item_features import ItemFeatures
from recsys.models.base import check_count, check_fraction
from recsys.models.hybrid import HybridUserKNN
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress

logger = logging.getLogger(__name__)

PROTOCOL = __doc__.split("\n\n", 2)[2].strip()  # the numbered steps below the title


DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_KS = (5, 10, 20, 50)
LIKED_THRESHOLD = 4.0
TEST_SIZE = 0.2
SUMMARY_COLUMNS = ["alpha", "k", "metric", "mean", "ci_low", "ci_high", "n_users"]


# ---- split -------------------------------------------------------------------------------------------
# `per_user_split` (imported above from recsys.eval.splits) is the study's split: the same function,
# hence the same split for a seed, as the Recommend page and the group evaluation.


def liked_matrix(
    test: pd.DataFrame, user_ids: np.ndarray, item_ids: np.ndarray, threshold: float = LIKED_THRESHOLD
) -> sp.csr_matrix:
    """users x items boolean matrix of held-out ratings >= threshold.

    Pass the whole dataset catalogue as `item_ids`: liked items that nobody rated in training
    (which CF cannot recommend) then still count in recall's denominator instead of vanishing.
    """
    liked = test[test["rating"] >= threshold]
    rows = pd.Index(user_ids).get_indexer(liked["user_id"].to_numpy())
    cols = pd.Index(item_ids).get_indexer(liked["item_id"].to_numpy())
    keep = (rows >= 0) & (cols >= 0)
    return sp.csr_matrix(
        (np.ones(keep.sum(), dtype=bool), (rows[keep], cols[keep])), shape=(len(user_ids), len(item_ids))
    )


def _item_context(dataset: Dataset, train: pd.DataFrame, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    genres = dataset.genres.reindex(item_ids).fillna(0).to_numpy() > 0
    counts = train.groupby("item_id").size().reindex(item_ids).fillna(0).to_numpy(dtype=float)
    return genres, counts / train["user_id"].nunique()


# ---- the study ----------------------------------------------------------------------------------------
@dataclass
class TopNStudyResult:
    """summary: tidy (alpha, k, metric, mean, ci_low, ci_high, n_users).
    per_user: one row per (alpha, k, user) with every per-user metric (for paired tests, plots).
    paired: each α vs α = 1 at the same K (see `paired_tests`).
    meta: split sizes, features, timings."""

    summary: pd.DataFrame
    per_user: pd.DataFrame
    paired: pd.DataFrame
    meta: dict = field(default_factory=dict)


def _check_grid(alphas, ks, n) -> tuple[list[float], list[int], int]:
    alphas, ks = list(alphas), list(ks)
    if not alphas or not ks:
        raise InvalidParameter("the sweep needs at least one alpha and one K")
    try:
        alphas = [check_fraction(a, "alpha") for a in alphas]
    except InvalidParameter:
        raise InvalidParameter(f"alphas must lie in [0, 1], got {alphas}") from None
    # int() would quietly turn K=2.5 into 2 or N=0.5 into 0: only integers are accepted (check_count).
    try:
        ks = [check_count(k, "K") for k in ks]
        n = check_count(n, "N")
    except InvalidParameter:
        raise InvalidParameter(f"K and N must be positive integers, got ks={ks}, n={n!r}") from None
    return sorted(set(alphas)), sorted(set(ks)), n


def run_topn_study(
    dataset: Dataset,
    features: ItemFeatures | None,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    ks: Sequence[int] = DEFAULT_KS,
    n: int = 5,
    seed: int = 0,
    test_size: float = TEST_SIZE,
    progress: Progress | None = None,
    n_boot: int = 500,
    centre_features: bool = False,
    split=None,
) -> TopNStudyResult:
    """Run the protocol in the module docstring and return every frame the page and CLI show.

    `split`: a recsys.eval.splits Fold (or (train, test)) to use instead of the per-user holdout,
    e.g. ML-100K's published u1 or the user's own files (``recsys topn --split u1``)."""
    started = time.perf_counter()
    progress = progress or _no_progress
    alphas, ks, n = _check_grid(alphas, ks, n)
    if features is None and any(a < 1 for a in alphas):
        raise InvalidParameter("alphas below 1 need poster (or other item) features")
    if features is not None and len(features) == 0:
        raise InvalidInput(f"features '{features.name}' hold no items")
    total = 1 + len(alphas) * len(ks)
    progress(0, total, "splitting and fitting")
    if split is not None:
        train, test = split
    else:
        train, test = per_user_split(
            dataset.ratings, test_size=test_size, seed=seed, dataset_name=getattr(dataset, "name", None)
        )
    model = HybridUserKNN(
        features=features, alpha=1.0, k=max(ks), n=n, score="weighted_sum", centre_features=centre_features
    ).fit(train)
    # Metrics live on the full catalogue, so coverage and recall count items unseen in training too.
    catalogue = dataset.items.index.to_numpy(dtype=np.int64)
    to_catalogue = pd.Index(catalogue).get_indexer(model.item_ids_)
    if (to_catalogue < 0).any():
        raise InvalidInput("ratings mention items that are not in the dataset's item table")
    relevant = liked_matrix(test, model.user_ids_, catalogue)
    genre_matrix, popularity = _item_context(dataset, train, catalogue)
    progress(1, total, "fitted")
    frames, summary_rows = [], []
    done = 1
    for alpha in alphas:
        neighbours = model.neighbour_order(alpha)
        for k in ks:
            lists = model.recommend(n=n, k=k, neighbours=neighbours)
            codes = rm.list_codes(lists, model.user_ids_, catalogue, n)
            per_user = rm.per_user_metrics(codes, model.user_ids_, catalogue, relevant, n, genre_matrix, popularity)
            per_user.insert(0, "k", k)
            per_user.insert(0, "alpha", alpha)
            frames.append(per_user)
            summary = rm.summarise_per_user(per_user)
            kept = np.isin(model.user_ids_, per_user["user_id"].to_numpy())
            coverage = rm.coverage_with_ci(codes[kept], len(catalogue), n_boot=n_boot, seed=seed)
            summary = pd.concat(
                [
                    summary,
                    pd.DataFrame(
                        [
                            {
                                "metric": "coverage",
                                "mean": coverage[0],
                                "ci_low": coverage[1],
                                "ci_high": coverage[2],
                                "n_users": int(kept.sum()),
                            }
                        ]
                    ),
                ],
                ignore_index=True,
            )
            summary.insert(0, "k", k)
            summary.insert(0, "alpha", alpha)
            summary_rows.append(summary)
            done += 1
            progress(done, total, f"alpha={alpha:g} K={k}")
    per_user_frame = pd.concat(frames, ignore_index=True)
    summary_frame = pd.concat(summary_rows, ignore_index=True)[SUMMARY_COLUMNS]
    paired = paired_tests(per_user_frame) if 1.0 in alphas and len(alphas) > 1 else pd.DataFrame()
    meta = {
        "dataset": getattr(dataset, "name", "?"),
        "features": (features.name + (" (centred)" if centre_features else "")) if features is not None else "none",
        "centre_features": centre_features,
        "n": n,
        "seed": seed,
        "test_size": test_size if split is None else len(test) / (len(train) + len(test)),
        "split": "per-user holdout" if split is None else "given",
        "train_ratings": len(train),
        "test_ratings": len(test),
        "liked_test_ratings": int((test["rating"] >= LIKED_THRESHOLD).sum()),
        "users_evaluated": int(per_user_frame.groupby(["alpha", "k"]).size().iloc[0]),
        "users_without_profile": len(model.users_without_profile_),
        "items_with_features": 0 if features is None else int(np.isin(model.item_ids_, features.item_ids).sum()),
        "catalogue_items": len(catalogue),
        "items_in_training": len(model.item_ids_),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return TopNStudyResult(summary_frame, per_user_frame, paired, meta)


def paired_tests(
    per_user: pd.DataFrame, baseline_alpha: float = 1.0, metrics: Sequence[str] = rm.PER_USER_METRICS
) -> pd.DataFrame:
    """Each α vs `baseline_alpha` at the same K, per metric, on the users both settings evaluated.

    Columns: alpha, k, metric, n_users, mean_diff (α minus baseline), diff_ci_low, diff_ci_high,
    t_stat, t_p, wilcoxon_p, t_p_holm (Holm over all α × K comparisons of that metric).
    """
    rows = []
    baseline = per_user[per_user["alpha"] == baseline_alpha]
    if baseline.empty:
        raise InvalidInput(f"no results for the baseline alpha={baseline_alpha}")
    for (alpha, k), group in per_user.groupby(["alpha", "k"], sort=True):
        if alpha == baseline_alpha:
            continue
        reference = baseline[baseline["k"] == k]
        merged = group.merge(reference, on="user_id", suffixes=("", "_base"))
        for metric in metrics:
            if metric not in merged:
                continue
            result = rm.paired_test(merged[metric].to_numpy(), merged[f"{metric}_base"].to_numpy())
            rows.append({"alpha": alpha, "k": k, "metric": metric, **result})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["t_p_holm"] = np.nan
    for _metric, group in frame.groupby("metric"):
        frame.loc[group.index, "t_p_holm"] = rm.holm_adjust(group["t_p"].to_numpy())
    return frame


# ---- tables ------------------------------------------------------------------------------------------
def study_table(summary: pd.DataFrame, metric: str = "precision", digits: int = 3) -> pd.DataFrame:
    """α × K table of 'mean [95% CI]' strings for one metric (rows α, columns K)."""
    rows = summary[summary["metric"] == metric]
    if rows.empty:
        raise InvalidParameter(f"metric {metric!r} not in the study (have {sorted(summary['metric'].unique())})")
    cells = rows.assign(
        cell=[
            rm.format_estimate(m, lo, hi, digits)
            for m, lo, hi in rows[["mean", "ci_low", "ci_high"]].itertuples(index=False)
        ]
    )
    table = cells.pivot(index="alpha", columns="k", values="cell")
    table.index.name = "alpha"
    table.columns = [f"K={k}" for k in table.columns]
    return table


GUO_ROWS = (
    # indicator, paper without, paper with, our metric, why this metric
    (
        "Recommendation accuracy",
        "70%",
        "85%",
        "precision",
        "'accuracy rate' is undefined in the paper; precision@5 = share of the 5 listed movies that the "
        "user rated >= 4 among held-out ratings",
    ),
    (
        "Recommendation diversity",
        "5 genres",
        "8 genres",
        "genre_diversity",
        "distinct genres among the 5 listed movies, mean over users",
    ),
    (
        "Preference fit",
        "60%",
        "80%",
        "hit_rate",
        "the paper used a satisfaction survey, which cannot be rerun offline; closest offline proxy: "
        "share of users with at least one liked held-out movie among the 5",
    ),
)


def guo_table(
    study_frame: pd.DataFrame, paired: pd.DataFrame | None = None, k: int = 10, hybrid_alpha: float = 0.5
) -> pd.DataFrame:
    """Guo's Table 1 next to our measurements at Guo's K (default 10) and N.

    Columns: the paper's two values; ours for plain CF (α = 1) and for the hybrid at `hybrid_alpha`
    (0.5 by default: fixed in advance, equal weight on ratings and posters, not chosen on the test
    data); and, for reference only, the best α by that metric at this K, which is picked on the
    held-out data and therefore optimistic. With `paired`, the paired t-test p-value of hybrid vs
    plain CF is added.
    """
    at_k = study_frame[study_frame["k"] == k]
    if at_k.empty:
        raise InvalidParameter(f"the study has no K={k}; it has {sorted(study_frame['k'].unique())}")
    rows = []
    for indicator, paper_without, paper_with, metric, definition in GUO_ROWS:
        values = at_k[at_k["metric"] == metric].set_index("alpha")
        if values.empty:
            continue

        def cell(alpha, values=values):
            if alpha not in values.index:
                return "n/a"
            row = values.loc[alpha]
            return rm.format_estimate(row["mean"], row["ci_low"], row["ci_high"])

        best_alpha = float(values["mean"].idxmax())
        row = {
            "indicator": indicator,
            "paper: without posters": paper_without,
            "paper: with posters": paper_with,
            "our metric": rm.METRIC_LABELS[metric],
            "ours: plain CF (α=1)": cell(1.0),
            f"ours: hybrid (α={hybrid_alpha:g})": cell(hybrid_alpha),
            "ours: best α (picked on test, optimistic)": f"α={best_alpha:g}: {cell(best_alpha)}",
        }
        if paired is not None and not paired.empty:
            match = paired[(paired["alpha"] == hybrid_alpha) & (paired["k"] == k) & (paired["metric"] == metric)]
            row["p (hybrid vs CF, paired t)"] = f"{match['t_p'].iloc[0]:.3g}" if len(match) else "n/a"
        row["definition"] = definition
        rows.append(row)
    return pd.DataFrame(rows)


def _lists_by_user(frame: pd.DataFrame) -> dict[int, list[int]]:
    """user id -> item ids in rank order, from a top-N frame."""
    ordered = frame.sort_values(["user_id", "rank"], kind="stable")
    return {int(u): items.tolist() for u, items in ordered.groupby("user_id", sort=False)["item_id"]}


# ---- new-item cold start -------------------------------------------------------------------------------
COLD_START_METRICS = {
    "new_item_share": "share of the N slots filled with held-out new items (all users)",
    "users_shown_new": "share of users whose list holds at least one new item (all users)",
    "new_hit_rate": "share of users with a liked new item (held-out rating >= 4) who find one in their list",
    "new_precision": "liked new items in the list / N (users with a liked new item)",
}


def cold_start_topn(
    dataset: Dataset,
    features: ItemFeatures,
    n: int = 5,
    k: int = 10,
    hybrid_alpha: float = 0.5,
    item_share: float = 0.2,
    seed: int = 0,
    progress: Progress | None = None,
    centre_features: bool = False,
) -> pd.DataFrame:
    """How often new items (no training ratings at all) are recommended and hit, per model.

    Split: `recsys.eval.splits` "cold_items" (a seeded `item_share` of the items loses every
    rating to the test side). Models fitted on the rest: plain CF (α = 1), the hybrid at
    `hybrid_alpha`, and VT2's content predictor (`recsys.models.content.ContentPredictor`, ranking
    every unrated catalogue item by predicted rating). User-based CF only proposes items its
    neighbours rated, so it cannot list a new item whatever α is; the content model can, if the
    item has features. Returns a tidy frame: model, metric, mean, ci_low, ci_high, n_users.
    """
    from recsys.models.content import ContentPredictor
    from recsys.models.topn import PredictorTopN

    progress = progress or _no_progress
    n = check_count(n, "n (list length)")
    fold = cached_splits(
        dataset.ratings, getattr(dataset, "name", "dataset"), "cold_items", seed=seed, item_share=item_share
    )[0]
    train, test = fold.train, fold.test
    new_items = np.asarray(fold.cold_items, dtype=np.int64)
    catalogue = dataset.items.index.to_numpy(dtype=np.int64)
    users = np.sort(train["user_id"].unique())
    liked_new = test[test["rating"] >= LIKED_THRESHOLD].groupby("user_id")["item_id"].apply(set)
    total = 3
    progress(0, total, "plain CF and hybrid")
    model = HybridUserKNN(features=features, k=k, n=n, score="weighted_sum", centre_features=centre_features).fit(train)
    lists = {}
    for label, alpha in (("user CF (α=1)", 1.0), (f"hybrid CF (α={hybrid_alpha:g})", hybrid_alpha)):
        lists[label] = _lists_by_user(model.recommend(n=n, alpha=alpha, k=k))
    progress(1, total, "content predictor")
    content = PredictorTopN(ContentPredictor(features)).fit(train)
    lists["content (VT2)"] = _lists_by_user(content.recommend(users, n, candidates=catalogue))
    progress(2, total, "metrics")
    new_set = set(new_items.tolist())
    rows = []
    for label, per_user in lists.items():
        shown = np.array([sum(i in new_set for i in per_user.get(u, [])) for u in users], dtype=float)
        evaluable = [u for u in users if u in liked_new.index]
        hits = np.array([len(set(per_user.get(u, [])) & liked_new[u]) for u in evaluable], dtype=float)
        values = {
            "new_item_share": shown / n,
            "users_shown_new": (shown > 0).astype(float),
            "new_hit_rate": (hits > 0).astype(float),
            "new_precision": hits / n,
        }
        for metric, per_user_values in values.items():
            mean, low, high = rm.mean_ci(per_user_values)
            rows.append(
                {
                    "model": label,
                    "metric": metric,
                    "mean": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "n_users": len(per_user_values),
                }
            )
    progress(3, total, "done")
    result = pd.DataFrame(rows)
    result.attrs["new_items"] = len(new_items)
    result.attrs["new_items_with_features"] = int(np.isin(new_items, features.item_ids).sum())
    return result
