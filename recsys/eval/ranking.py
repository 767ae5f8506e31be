"""Full-ranking evaluation of top-N recommenders on implicit feedback (the multimodal field's protocol).

Metrics know nothing of the model: they take score matrices (users x items, or a callable that
returns one block of users at a time) or top-N frames (``user_id, rank, item_id``), plus a
:class:`RankingTask` that says which items are ranked, which are masked out and which are right
(built in :mod:`recsys.eval.ranking_task`, whose names are re-exported here).

Protocols (:func:`make_task`):

- ``per_user``: every user keeps 80 % of their ratings for training and 20 % are held out
  (``recsys.eval.splits`` "per_user", seeded); a user's training items are excluded from the
  ranking; every item known from training is a candidate.
- ``ratio``: Cornac's ``RatioSplit(test_size=0.2, rating_threshold=4.0, exclude_unknowns=True,
  seed=123)`` reproduced exactly: ``numpy.random.RandomState(seed).permutation(n)``, the first
  ``n - ceil(test_size * n)`` rows train, the last ``ceil(test_size * n)`` test, repeated
  (user, item) pairs dropped within each side, held-out rows of users or items unknown to
  training dropped. Cornac's ranking rule is kept too: only the user's training *positives*
  (rating >= threshold) are masked out, so items the user rated low in training stay among the
  candidates (``exclude="all"`` masks every training item instead).
- ``cold_items``: a seeded share of the items loses every rating to the test side (new items);
  only those new items are ranked (a model must score them from their features).

Positives are held-out ratings >= ``threshold`` (default 4) on candidate items; users without any
are not evaluated (their number is in ``meta``). Every list is the best K candidates by score,
ties broken by the lower item id.

Per user and K (N = K slots, hits = positives among the first K, P = the user's positives):

- recall@K     hits / P
- precision@K  hits / K
- NDCG@K       Σ_r rel_r / log2(r + 1) over the first K ranks, divided by the ideal DCG of
               min(P, K) hits at the top (scikit-learn's ``ndcg_score(k=K)`` for binary gains)
- hit rate@K   1 if hits > 0
- MAP@K        Σ_r precision@r · rel_r / min(P, K)
- popularity@K mean popularity of the listed items (share of training users who rated the item):
               the popularity bias of the list (higher = more mainstream)
- coverage@K   share of the candidate items listed to at least one user (a property of the set
               of lists: bootstrap interval over users)
- AUC          (K = 0: the whole ranking) share of (positive, non-positive candidate) pairs in the
               right order, ties counting one half (Mann-Whitney U / (P · N))

Summaries give the mean over users with a 95 % Student-t interval (or a seeded percentile
bootstrap over users); models are compared on the same users with paired t and Wilcoxon tests,
Holm-adjusted over all model pairs of one metric and K.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput, InvalidParameter
from recsys.eval import ranking_metrics as rm
from recsys.eval.ranking_task import (
    POSITIVE_THRESHOLD,
    PROTOCOL_LABELS,
    PROTOCOLS,
    RankingTask,
    build_task,
    make_task,
    ratio_split,
)
from recsys.models.base import check_choice, check_count
from recsys.models.implicit import top_k

__all__ = [  # the task's names are re-exported: callers import everything from here
    "DEFAULT_KS",
    "METRICS",
    "METRIC_LABELS",
    "POSITIVE_THRESHOLD",
    "PROTOCOL",
    "PROTOCOLS",
    "PROTOCOL_LABELS",
    "SUMMARY_COLUMNS",
    "ModelRanking",
    "RankingTask",
    "bootstrap_ci",
    "build_task",
    "evaluate_many",
    "evaluate_scores",
    "evaluate_topn",
    "format_estimate",
    "head_tail_breakdown",
    "interval",
    "lists_frame",
    "make_task",
    "metric_label",
    "metrics_table",
    "paired_comparisons",
    "ratio_split",
    "summarise",
    "topn_codes",
]

PROTOCOL = (
    __doc__.split("\n\n", 2)[2]
    .split("\n\nPositives")[0]
    .strip()
    .replace("Protocols (:func:`make_task`):", "Protocols:")
)
DEFAULT_KS = (10, 20, 50)
LIST_METRICS = ("recall", "ndcg", "precision", "hit_rate", "map", "popularity")
SET_METRICS = ("coverage",)
FULL_METRICS = ("auc",)
METRICS = LIST_METRICS + SET_METRICS + FULL_METRICS
METRIC_LABELS = {
    "recall": "Recall",
    "ndcg": "NDCG",
    "precision": "Precision",
    "hit_rate": "Hit rate",
    "map": "MAP",
    "popularity": "Popularity",
    "coverage": "Coverage",
    "auc": "AUC",
}
SUMMARY_COLUMNS = ["model", "metric", "k", "mean", "ci_low", "ci_high", "n_users"]
_BLOCK_USERS = 1024


def metric_label(metric: str, k: int) -> str:
    """'Recall@20'; 'AUC' for the full-ranking metrics (k = 0)."""
    name = METRIC_LABELS.get(metric, metric)
    return name if k == 0 else f"{name}@{k}"


# ---- ranking --------------------------------------------------------------------------------------
def _auc_rows(scores: np.ndarray, excluded: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Per-row AUC over the non-excluded columns (ties count one half).

    Each row is sorted once; every positive's count of lower and tied candidates comes from a
    binary search, minus the other positives and the excluded columns (set to -inf, below all).
    """
    s = np.where(np.isneginf(scores), np.finfo(np.float64).min, scores)  # unscorable, yet a candidate
    s[excluded] = -np.inf
    ordered = np.sort(s, axis=1)
    n_excluded = excluded.sum(axis=1)
    n_pos = relevant.sum(axis=1)
    n_neg = (~excluded).sum(axis=1) - n_pos
    out = np.full(len(s), np.nan)
    for row in np.flatnonzero((n_pos > 0) & (n_neg > 0)):
        positive = s[row, relevant[row]]
        below = np.searchsorted(ordered[row], positive, "left") - n_excluded[row]
        tied = np.searchsorted(ordered[row], positive, "right") - n_excluded[row] - below
        other_below = (positive[None, :] < positive[:, None]).sum(axis=1)
        other_tied = (positive[None, :] == positive[:, None]).sum(axis=1)  # itself included
        wins = (below - other_below) + 0.5 * (tied - other_tied)
        out[row] = wins.sum() / (n_pos[row] * n_neg[row])
    return out


def _list_metrics(
    gains: np.ndarray, filled: np.ndarray, slot_popularity: np.ndarray, n_relevant: np.ndarray, ks: Sequence[int]
) -> dict[int, dict[str, np.ndarray]]:
    """Per-user list metrics at each K from the (users x Kmax) hit and fill matrices."""
    kmax = gains.shape[1]
    gains = gains & filled
    hits = np.cumsum(gains, axis=1)
    ranks = np.arange(1, kmax + 1)
    discount = 1.0 / np.log2(ranks + 1)
    dcg = np.cumsum(gains * discount, axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    precision_at_rank = hits / ranks
    ap_terms = np.cumsum(precision_at_rank * gains, axis=1)
    pop_sum = np.cumsum(np.where(filled, slot_popularity, 0.0), axis=1)
    n_filled = np.cumsum(filled, axis=1)
    out = {}
    for k in ks:
        h = hits[:, k - 1].astype(np.float64)
        denominator = np.minimum(n_relevant, k).astype(np.int64)
        out[k] = {
            "recall": h / n_relevant,
            "ndcg": dcg[:, k - 1] / ideal[denominator],
            "precision": h / k,
            "hit_rate": (h > 0).astype(np.float64),
            "map": ap_terms[:, k - 1] / denominator,
            "popularity": np.divide(
                pop_sum[:, k - 1], n_filled[:, k - 1], out=np.full(len(h), np.nan), where=n_filled[:, k - 1] > 0
            ),
        }
    return out


def _check_ks(ks) -> list[int]:
    ks = sorted({check_count(int(k) if isinstance(k, np.integer) else k, "K") for k in ks})
    if not ks:
        raise InvalidParameter("give at least one K")
    return ks


@dataclass
class ModelRanking:
    """One model's evaluation on a task: per-user metrics and its top-Kmax lists (item codes)."""

    name: str
    per_user: pd.DataFrame  # user_id, k, recall, ndcg, precision, hit_rate, map, popularity, auc
    codes: np.ndarray  # (users, Kmax) candidate codes, best first, -1 = empty slot
    scores: np.ndarray | None  # (users, Kmax) the listed scores (None for top-N frames)
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)


def _aligned(block: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
    if positions is None:
        return block
    out = np.full((len(block), len(positions)), -np.inf)
    present = positions >= 0
    out[:, present] = block[:, positions[present]]
    return out


def evaluate_scores(
    task: RankingTask,
    scores: np.ndarray | Callable[[np.ndarray], np.ndarray],
    ks: Sequence[int] = DEFAULT_KS,
    *,
    item_ids=None,
    name: str = "model",
    auc: bool = True,
    block_users: int = _BLOCK_USERS,
) -> ModelRanking:
    """Per-user metrics of a score matrix.

    scores: (task.n_users x items) array, rows in `task.user_ids` order, or a callable
        ``f(user_ids) -> (len(user_ids) x items)`` called on blocks of users (memory stays bounded).
    item_ids: the items of the score columns (default `task.item_ids`); candidates a model does not
        score get -inf (never listed) and extra columns are ignored.
    """
    ks = _check_ks(ks)
    kmax = ks[-1]
    started = time.perf_counter()
    positions = None
    if item_ids is not None:
        item_ids = np.asarray(item_ids, dtype=np.int64)
        if not np.array_equal(item_ids, task.item_ids):
            positions = pd.Index(item_ids).get_indexer(task.item_ids)
    if not callable(scores):
        matrix = np.asarray(scores)
        width = len(task.item_ids) if item_ids is None else len(item_ids)
        if matrix.shape != (task.n_users, width):
            raise InvalidInput(f"score matrix has shape {matrix.shape}, expected ({task.n_users}, {width})")
    n_relevant = np.asarray(task.relevant.sum(axis=1)).ravel().astype(np.float64)
    frames, codes_all, scores_all, aucs = [], [], [], []
    for start in range(0, task.n_users, block_users):
        stop = min(start + block_users, task.n_users)
        users = task.user_ids[start:stop]
        block = scores(users) if callable(scores) else matrix[start:stop]
        block = np.asarray(block, dtype=np.float64)
        expected = len(task.item_ids) if positions is None else len(item_ids)
        if block.shape != (len(users), expected):
            raise InvalidInput(f"scorer returned shape {block.shape} for {len(users)} users, expected {expected} items")
        block = _aligned(block, positions)
        excluded = task.excluded[start:stop].toarray()
        relevant = task.relevant[start:stop].toarray()
        codes, top_scores = top_k(block, kmax, excluded)
        filled = codes >= 0
        safe = np.where(filled, codes, 0)
        gains = np.take_along_axis(relevant, safe, axis=1)
        per_k = _list_metrics(gains, filled, task.popularity[safe], n_relevant[start:stop], ks)
        if auc:
            aucs.append(_auc_rows(block, excluded, relevant))
        codes_all.append(codes)
        scores_all.append(top_scores)
        frames.append(per_k)
    codes = np.vstack(codes_all)
    per_user = _per_user_frame(task, frames, ks, np.concatenate(aucs) if auc else None)
    return ModelRanking(name, per_user, codes, np.vstack(scores_all), time.perf_counter() - started)


def _per_user_frame(task, frames, ks, auc_values) -> pd.DataFrame:
    rows = []
    for k in ks:
        columns = {metric: np.concatenate([f[k][metric] for f in frames]) for metric in LIST_METRICS}
        frame = pd.DataFrame({"user_id": task.user_ids, "k": k, **columns})
        if auc_values is not None:
            frame["auc"] = auc_values
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def topn_codes(task: RankingTask, topn: pd.DataFrame, k: int) -> np.ndarray:
    """(task users x k) candidate codes from a top-N frame (user_id, rank, item_id); -1 = empty.

    Items that are not candidates or are masked out for the user are refused: the list would be
    scored against a different ranking problem.
    """
    missing = {"user_id", "rank", "item_id"} - set(topn.columns)
    if missing:
        raise InvalidInput(f"top-N frame lacks columns {sorted(missing)}")
    out = np.full((task.n_users, k), -1, dtype=np.int64)
    frame = topn[topn["rank"] <= k]
    rows = pd.Index(task.user_ids).get_indexer(frame["user_id"].to_numpy())
    cols = pd.Index(task.item_ids).get_indexer(frame["item_id"].to_numpy())
    keep = rows >= 0
    if (cols[keep] < 0).any():
        bad = frame["item_id"].to_numpy()[keep & (cols < 0)][:5]
        raise InvalidInput(f"top-N lists hold items that are not candidates of this task: {bad.tolist()}")
    rows, cols, ranks = rows[keep], cols[keep], frame["rank"].to_numpy()[keep].astype(np.int64)
    if (ranks < 1).any():
        raise InvalidInput("ranks start at 1")
    if task.excluded[rows, cols].any():
        raise InvalidInput("top-N lists hold items the task masks out (training items): use exclude_seen=True")
    out[rows, ranks - 1] = cols
    sorted_rows = np.sort(out, axis=1)
    if ((sorted_rows[:, 1:] == sorted_rows[:, :-1]) & (sorted_rows[:, 1:] >= 0)).any():
        raise InvalidInput("a top-N list repeats an item")
    return out


def evaluate_topn(task: RankingTask, topn: pd.DataFrame, ks: Sequence[int] = DEFAULT_KS, name: str = "model"):
    """Per-user metrics of top-N lists (no AUC: a list has no scores for the rest of the ranking)."""
    ks = _check_ks(ks)
    started = time.perf_counter()
    codes = topn_codes(task, topn, ks[-1])
    filled = codes >= 0
    safe = np.where(filled, codes, 0)
    gains = np.asarray(task.relevant[np.arange(task.n_users)[:, None], safe].todense(), dtype=bool)
    n_relevant = np.asarray(task.relevant.sum(axis=1)).ravel().astype(np.float64)
    per_k = _list_metrics(gains, filled, task.popularity[safe], n_relevant, ks)
    per_user = _per_user_frame(task, [per_k], ks, None)
    return ModelRanking(name, per_user, codes, None, time.perf_counter() - started)


# ---- intervals, summaries, tests -------------------------------------------------------------------
def bootstrap_ci(values, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap of the mean over users (seeded); NaNs ignored."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (np.nan, np.nan, np.nan)
    if len(values) < 2:
        return (float(values.mean()), np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 100):  # 100 resamples at a time bounds memory on big user sets
        stop = min(start + 100, n_boot)
        means[start:stop] = values[rng.integers(0, len(values), size=(stop - start, len(values)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return (float(values.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def interval(values, method: str = "t", n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) 95 % interval of the mean over users: Student-t or percentile bootstrap."""
    check_choice(method, "interval", ("t", "bootstrap"))
    return rm.mean_ci(values) if method == "t" else bootstrap_ci(values, n_boot=n_boot, seed=seed)


def summarise(
    task: RankingTask,
    rankings: Sequence[ModelRanking],
    ks: Sequence[int] | None = None,
    *,
    method: str = "t",
    n_boot: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy rows (model, metric, k, mean, ci_low, ci_high, n_users); AUC has k = 0."""
    rows = []
    for ranking in rankings:
        per_user = ranking.per_user
        model_ks = sorted(per_user["k"].unique()) if ks is None else _check_ks(ks)
        for k in model_ks:
            at_k = per_user[per_user["k"] == k]
            for metric in LIST_METRICS:
                mean, low, high = interval(at_k[metric], method, n_boot, seed)
                rows.append([ranking.name, metric, k, mean, low, high, int(at_k[metric].notna().sum())])
            coverage = rm.coverage_with_ci(ranking.codes[:, :k], task.n_items, n_boot=n_boot, seed=seed)
            rows.append([ranking.name, "coverage", k, *coverage, task.n_users])
        if "auc" in per_user:
            values = per_user.loc[per_user["k"] == model_ks[0], "auc"]
            mean, low, high = interval(values, method, n_boot, seed)
            rows.append([ranking.name, "auc", 0, mean, low, high, int(values.notna().sum())])
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def paired_comparisons(
    rankings: Sequence[ModelRanking], metrics: Sequence[str] = ("recall", "ndcg", "auc"), pairs=None
) -> pd.DataFrame:
    """Every pair of models (or the given (a, b) name pairs) on the same users, per metric and K.

    Columns: model_a, model_b, metric, k, n_users, mean_diff (a - b), diff_ci_low, diff_ci_high,
    t_stat, t_p, wilcoxon_p, p_holm (Holm over the pairs of one metric and K).
    """
    by_name = {r.name: r.per_user for r in rankings}
    if pairs is None:
        pairs = list(combinations(by_name, 2))
    rows = []
    for a, b in pairs:
        merged = by_name[a].merge(by_name[b], on=["user_id", "k"], suffixes=("_a", "_b"))
        for metric in metrics:
            if f"{metric}_a" not in merged or f"{metric}_b" not in merged:
                continue
            groups = [(0, merged[merged["k"] == merged["k"].min()])] if metric == "auc" else merged.groupby("k")
            for k, group in groups:
                result = rm.paired_test(group[f"{metric}_a"].to_numpy(), group[f"{metric}_b"].to_numpy())
                rows.append({"model_a": a, "model_b": b, "metric": metric, "k": int(k), **result})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["p_holm"] = np.nan
    for _, group in frame.groupby(["metric", "k"]):
        frame.loc[group.index, "p_holm"] = rm.holm_adjust(group["t_p"].to_numpy())
    return frame


def head_tail_breakdown(
    task: RankingTask,
    rankings: Sequence[ModelRanking],
    ks: Sequence[int] = (20,),
    head_share: float = 0.2,
    method: str = "t",
) -> pd.DataFrame:
    """Recall@K on head items (the `head_share` most-rated candidates in training) and on the tail.

    Per user, recall within a group = listed positives of that group / positives of that group;
    users without a positive in a group are left out of it. Tidy: model, group, k, mean, ci_low,
    ci_high, n_users.
    """
    ks = _check_ks(ks)
    n_head = max(1, int(round(task.n_items * head_share)))
    head = np.zeros(task.n_items, dtype=bool)
    head[np.argsort(-task.popularity, kind="stable")[:n_head]] = True
    rows = []
    for ranking in rankings:
        codes = ranking.codes
        filled = codes >= 0
        safe = np.where(filled, codes, 0)
        gains = np.asarray(task.relevant[np.arange(task.n_users)[:, None], safe].todense(), dtype=bool) & filled
        for group, mask in (("head", head), ("tail", ~head)):
            in_group = mask[safe] & gains
            n_group = np.asarray(task.relevant[:, mask].sum(axis=1)).ravel().astype(np.float64)
            for k in ks:
                hits = in_group[:, :k].sum(axis=1)
                values = np.divide(hits, n_group, out=np.full(len(hits), np.nan), where=n_group > 0)
                mean, low, high = interval(values, method)
                rows.append([ranking.name, group, k, mean, low, high, int((n_group > 0).sum())])
    frame = pd.DataFrame(rows, columns=["model", "group", "k", "mean", "ci_low", "ci_high", "n_users"])
    frame.attrs["head_items"] = n_head
    return frame


def lists_frame(task: RankingTask, ranking: ModelRanking, user_ids=None, n: int | None = None) -> pd.DataFrame:
    """The top-N frame (user_id, rank, item_id, score, relevant) of one evaluated model."""
    n = ranking.codes.shape[1] if n is None else min(int(n), ranking.codes.shape[1])
    rows = np.arange(task.n_users) if user_ids is None else pd.Index(task.user_ids).get_indexer(np.asarray(user_ids))
    rows = rows[rows >= 0]
    codes = ranking.codes[rows, :n]
    filled = codes >= 0
    r, slot = np.nonzero(filled)
    item_codes = codes[r, slot]
    return pd.DataFrame(
        {
            "user_id": task.user_ids[rows][r],
            "rank": slot + 1,
            "item_id": task.item_ids[item_codes],
            "score": ranking.scores[rows][r, slot] if ranking.scores is not None else np.nan,
            "relevant": np.asarray(task.relevant[rows[r], item_codes]).ravel().astype(bool),
        }
    )


def format_estimate(mean: float, low: float, high: float, digits: int = 4) -> str:
    """:func:`recsys.eval.ranking_metrics.format_estimate` with 4 digits (ranking metrics are small)."""
    return rm.format_estimate(mean, low, high, digits)


def metrics_table(summary: pd.DataFrame, metrics: Sequence[str] | None = None, digits: int = 4) -> pd.DataFrame:
    """Models x 'metric@K' table of 'mean [95 % CI]' strings (columns in metric, then K order)."""
    frame = summary if metrics is None else summary[summary["metric"].isin(metrics)]
    order = {m: i for i, m in enumerate(METRICS)}
    frame = frame.assign(
        _o=frame["metric"].map(order).fillna(99),
        column=[metric_label(m, k) for m, k in zip(frame["metric"], frame["k"])],
    )
    frame = frame.sort_values(["_o", "k"], kind="stable")
    cells = [
        format_estimate(m, lo, hi, digits) for m, lo, hi in frame[["mean", "ci_low", "ci_high"]].itertuples(index=False)
    ]
    table = frame.assign(cell=cells).pivot(index="model", columns="column", values="cell")
    columns = list(dict.fromkeys(frame["column"]))
    models = list(dict.fromkeys(summary["model"]))
    return table.reindex(index=models, columns=columns)


def evaluate_many(
    task: RankingTask,
    models: Mapping[str, np.ndarray | Callable | pd.DataFrame],
    ks: Sequence[int] = DEFAULT_KS,
    *,
    item_ids: Mapping[str, np.ndarray] | None = None,
    method: str = "t",
    n_boot: int = 500,
    seed: int = 0,
) -> tuple[list[ModelRanking], pd.DataFrame, pd.DataFrame]:
    """Evaluate score matrices / scorers / top-N frames by name: (rankings, summary, paired tests)."""
    rankings = []
    for name, value in models.items():
        if isinstance(value, pd.DataFrame):
            rankings.append(evaluate_topn(task, value, ks, name=name))
        else:
            columns = None if item_ids is None else item_ids.get(name)
            rankings.append(evaluate_scores(task, value, ks, item_ids=columns, name=name))
    summary = summarise(task, rankings, method=method, n_boot=n_boot, seed=seed)
    paired = paired_comparisons(rankings) if len(rankings) > 1 else pd.DataFrame()
    return rankings, summary, paired
