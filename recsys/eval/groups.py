"""Evaluation of the group recommender (Balfaqih): precision/recall/F1@N by age band and gender.

Split: the project's per-user holdout (`recsys.eval.splits.per_user_split`), the same split, for
the same seed, as the Recommend page and the top-N study. Every method lists the same movies to
every member of an (age band, gender) group, minus the movies that member rated in training,
through the one top-N interface (`GroupRecommender.recommend`).
"""

from __future__ import annotations

import logging

import pandas as pd

from recsys.data.dataset import Dataset
from recsys.eval.ranking_metrics import precision_at_n, recall_at_n
from recsys.eval.splits import per_user_split
from recsys.models.base import check_count, check_fraction, check_positive, clone
from recsys.models.groups import AGE_BAND_LABELS, GenreClusters, GroupRecommender, _single_threaded
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress

logger = logging.getLogger(__name__)

METHOD_GROUP = "group recommender"
METHOD_POPULAR = "popular in group"
METHOD_ALL_CLUSTERS = "group SVD, all clusters"
METHODS = (METHOD_GROUP, METHOD_ALL_CLUSTERS, METHOD_POPULAR)
# Which GroupRecommender `ordering` each method is.
METHOD_ORDERINGS = {METHOD_GROUP: "favoured_cluster", METHOD_ALL_CLUSTERS: "all_clusters", METHOD_POPULAR: "popular"}


def evaluate_groups(
    dataset: Dataset,
    n: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
    like_threshold: float = 4.0,
    recommender: GroupRecommender | None = None,
    progress: Progress | None = None,
    clusters: GenreClusters | None = None,
) -> pd.DataFrame:
    """Precision/recall/F1@n of the group recommender vs. the group's most popular movies.

    Methods: METHOD_GROUP (the paper's: favoured cluster, ranked by group SVD), METHOD_POPULAR (the
    benchmark: the group's most rated movies) and METHOD_ALL_CLUSTERS (ablation: the same SVD
    scores over all clusters, which isolates what the cluster step contributes).
    Split: `per_user_split` (seeded, shared with the top-N study). Relevant = a user's held-out
    movies rated >= like_threshold; users without any are skipped. Precision and recall are
    averaged over users; F1 = harmonic mean of those averages (the paper's formula).
    `recommender`: the estimator to evaluate (cloned, so it is left as it is; the clone's `ordering`
    is set per method). `clusters`: already fitted genre clusters to reuse (they depend on genres only).
    Returns a tidy frame: facet ("age band" | "gender" | "all"), group, method, precision, recall,
    f1, n_users.
    """
    # the parameters are checked by evaluate_groups_per_user, before any work
    return summarise(
        evaluate_groups_per_user(dataset, n, test_fraction, seed, like_threshold, recommender, progress, clusters)
    )


def evaluate_groups_per_user(
    dataset: Dataset,
    n: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
    like_threshold: float = 4.0,
    recommender: GroupRecommender | None = None,
    progress: Progress | None = None,
    clusters: GenreClusters | None = None,
) -> pd.DataFrame:
    """The per-user rows behind :func:`evaluate_groups` (same arguments): user_id, precision, recall,
    age_band, gender, method; ``summarise`` of it is the table, and it gives the intervals."""
    check_count(n, "n (list length)")
    check_fraction(test_fraction, "test_fraction", inclusive=(False, False))
    check_positive(like_threshold, "like_threshold")
    with _single_threaded():
        return _evaluate_groups(dataset, n, test_fraction, seed, like_threshold, recommender, progress, clusters)


def _evaluate_groups(dataset, n, test_fraction, seed, like_threshold, recommender, progress, clusters):
    progress = progress or _no_progress
    train, test = per_user_split(dataset.ratings, test_size=test_fraction, seed=seed, dataset_name=dataset.name)
    template = recommender or GroupRecommender(like_threshold=like_threshold, random_state=seed)
    liked = test[test["rating"] >= like_threshold]
    relevant = liked.groupby("user_id")["item_id"].agg(set).to_dict()
    model = clone(template).fit(train, dataset.users, dataset.genres, clusters=clusters)
    groups = model.groups_.loc[model.groups_.index.isin(list(relevant))]
    frames = []
    for done, method in enumerate(METHODS):
        progress(done, len(METHODS), f"lists: {method}")
        # `ordering` is read at recommend time: one fit (and one SVD per group) serves every method.
        model.set_params(ordering=METHOD_ORDERINGS[method])
        lists = model.recommend(groups.index.to_numpy(), n)
        by_user = lists.groupby("user_id")["item_id"].agg(list)
        rows = []
        for user in groups.index:
            items = by_user.get(user, [])
            rows.append(
                {
                    "user_id": user,
                    "precision": precision_at_n(items, relevant[user], n),
                    "recall": recall_at_n(items, relevant[user], n),
                }
            )
        metrics = pd.DataFrame(rows)
        metrics["age_band"] = groups["age_band"].to_numpy()
        metrics["gender"] = groups["gender"].to_numpy()
        metrics["method"] = method
        frames.append(metrics)
    progress(len(METHODS), len(METHODS), "done")
    per_user = pd.concat(frames, ignore_index=True)
    logger.info("group evaluation: %d users with liked held-out movies, %d methods", len(groups), len(METHODS))
    return per_user


def summarise(per_user: pd.DataFrame) -> pd.DataFrame:
    rows = []
    band_order = {label: i for i, label in enumerate(AGE_BAND_LABELS)}
    for facet, column in (("age band", "age_band"), ("gender", "gender"), ("all", None)):
        keys = per_user.groupby([column, "method"]) if column else per_user.groupby(["method"])
        for key, part in keys:
            group = key[0] if column else "all"
            method = key[1] if column else key[0]
            p, r = part["precision"].mean(), part["recall"].mean()
            rows.append(
                {
                    "facet": facet,
                    "group": group,
                    "method": method,
                    "precision": p,
                    "recall": r,
                    "f1": 0.0 if p + r == 0 else 2 * p * r / (p + r),
                    "n_users": len(part),
                }
            )
    table = pd.DataFrame(rows)
    table["_order"] = [band_order.get(g, 100) for g in table["group"]]
    table["_method"] = [METHODS.index(m) if m in METHODS else len(METHODS) for m in table["method"]]
    table = table.sort_values(["facet", "_order", "group", "_method"], kind="stable")
    return table.drop(columns=["_order", "_method"]).reset_index(drop=True)
