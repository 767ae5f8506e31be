"""The ranking problem of one split: which items are ranked, which are masked out, which are right.

What lives here is the evaluation's input, separate from the metrics of :mod:`recsys.eval.ranking`
(which re-exports every name): :func:`ratio_split` (Cornac 3's ``RatioSplit`` reproduced exactly),
:class:`RankingTask` (candidates, evaluated users, the relevant and excluded (users x items)
matrices, training popularity) and the two ways to make one, :func:`build_task` from any
(train, test) pair and :func:`make_task` for the protocols ``per_user``, ``ratio`` and
``cold_items`` (described in :mod:`recsys.eval.ranking`'s docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import InvalidInput, InvalidParameter
from recsys.models.base import check_choice, check_ratings_frame

POSITIVE_THRESHOLD = 4.0
PROTOCOLS = ("per_user", "ratio", "cold_items")
PROTOCOL_LABELS = {
    "per_user": "per-user random holdout (80/20)",
    "ratio": "global ratio split (Cornac RatioSplit, seed 123)",
    "cold_items": "held-out new items (cold start)",
}


# ---- splits --------------------------------------------------------------------------------------
def ratio_split(
    ratings: pd.DataFrame, test_size: float = 0.2, seed: int = 123, exclude_unknowns: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) exactly as Cornac 3's ``RatioSplit`` draws them from rows in this order.

    Cornac: ``RandomState(seed).permutation(n)``; train = the first ``n - ceil(test_size * n)``
    positions, test = the last ``ceil(test_size * n)``; ``Dataset.build`` keeps the first of
    repeated (user, item) pairs on each side; with ``exclude_unknowns`` held-out rows whose user
    or item has no training row are dropped. (A test_size >= 1 is a row count, as in Cornac.)
    """
    check_ratings_frame(ratings)
    n = len(ratings)
    if not 0 < test_size < n:
        raise InvalidParameter(f"test_size must be a share in (0, 1) or a row count below {n}, got {test_size}")
    n_test = math.ceil(test_size * n) if test_size < 1 else int(test_size)
    if not 0 < n_test < n:
        raise InvalidParameter(f"test_size {test_size} leaves an empty train or test set for {n} ratings")
    order = np.random.RandomState(seed).permutation(n)
    train = ratings.iloc[order[: n - n_test]]
    test = ratings.iloc[order[-n_test:]]
    train = train[~train.duplicated(["user_id", "item_id"])]
    test = test[~test.duplicated(["user_id", "item_id"])]
    if exclude_unknowns:
        known = test["user_id"].isin(train["user_id"].unique()) & test["item_id"].isin(train["item_id"].unique())
        test = test[known]
    return train.reset_index(drop=True), test.reset_index(drop=True)


# ---- the task ------------------------------------------------------------------------------------
@dataclass
class RankingTask:
    """One split, seen from the metrics: who is evaluated, what is ranked, what is right.

    item_ids: candidate universe, the columns of every score matrix (sorted).
    user_ids: evaluated users (at least one positive), the rows (sorted).
    relevant / excluded: (users x items) boolean CSR: held-out positives / items masked out.
    popularity: (items,) share of training users who rated each candidate.
    """

    protocol: str
    train: pd.DataFrame
    test: pd.DataFrame
    item_ids: np.ndarray
    user_ids: np.ndarray
    relevant: sp.csr_matrix
    excluded: sp.csr_matrix
    popularity: np.ndarray
    threshold: float = POSITIVE_THRESHOLD
    cold_items: np.ndarray | None = None
    params: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def describe(self) -> str:
        return (
            f"{PROTOCOL_LABELS.get(self.protocol, self.protocol)}: {len(self.train):,} training ratings, "
            f"{len(self.test):,} held out ({int(self.relevant.sum()):,} positives, rating >= {self.threshold:g}); "
            f"{self.n_users:,} users evaluated over {self.n_items:,} candidate items"
        )


def _pair_matrix(frame: pd.DataFrame, user_index: pd.Index, item_index: pd.Index) -> sp.csr_matrix:
    rows = user_index.get_indexer(frame["user_id"].to_numpy())
    cols = item_index.get_indexer(frame["item_id"].to_numpy())
    keep = (rows >= 0) & (cols >= 0)
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (rows[keep], cols[keep])), shape=(len(user_index), len(item_index))
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def build_task(
    train: pd.DataFrame,
    test: pd.DataFrame,
    protocol: str = "custom",
    *,
    threshold: float = POSITIVE_THRESHOLD,
    exclude: str = "all",
    candidates=None,
    cold_items=None,
    params: dict | None = None,
) -> RankingTask:
    """A task from any (train, test) pair.

    candidates: the items ranked (default: every item with a training rating).
    exclude: "all" masks every item the user rated in training, "positives" only those rated
        >= threshold (Cornac's rule), "none" masks nothing.
    """
    check_ratings_frame(train)
    if test.empty:
        raise InvalidInput("the held-out set is empty: nothing to evaluate")
    check_choice(exclude, "exclude", ("all", "positives", "none"))
    item_ids = np.unique(
        np.asarray(train["item_id"].unique() if candidates is None else list(candidates), dtype=np.int64)
    )
    if len(item_ids) == 0:
        raise InvalidInput("no candidate items to rank")
    item_index = pd.Index(item_ids)
    known_users = pd.Index(np.sort(train["user_id"].unique()).astype(np.int64))
    positives = test[test["rating"] >= threshold]
    relevant_all = _pair_matrix(positives, known_users, item_index)
    has_positive = np.asarray(relevant_all.sum(axis=1)).ravel() > 0
    user_ids = known_users.to_numpy()[has_positive]
    if len(user_ids) == 0:
        raise InvalidInput(
            f"no user has a held-out rating >= {threshold:g} on a candidate item: nothing to evaluate "
            "(lower the threshold or use more data)"
        )
    user_index = pd.Index(user_ids)
    relevant = relevant_all[has_positive]
    masked = {"all": train, "positives": train[train["rating"] >= threshold], "none": train.iloc[:0]}[exclude]
    excluded = _pair_matrix(masked, user_index, item_index).astype(np.int8)
    excluded = excluded - excluded.multiply(relevant.astype(np.int8))  # a held-out positive is never masked
    excluded.eliminate_zeros()
    excluded = excluded.astype(bool)
    counts = train.groupby("item_id")["user_id"].nunique().reindex(item_ids).fillna(0).to_numpy(dtype=np.float64)
    popularity = counts / max(train["user_id"].nunique(), 1)
    meta = {
        "train_ratings": len(train),
        "test_ratings": len(test),
        "positives": int(relevant.sum()),
        "users_evaluated": len(user_ids),
        "users_without_positive": int((~has_positive).sum()),
        "candidate_items": len(item_ids),
        "exclude": exclude,
        "threshold": threshold,
    }
    return RankingTask(
        protocol=protocol,
        train=train,
        test=test,
        item_ids=item_ids,
        user_ids=user_ids,
        relevant=relevant.tocsr(),
        excluded=excluded.tocsr(),
        popularity=popularity,
        threshold=threshold,
        cold_items=None if cold_items is None else np.sort(np.asarray(cold_items, dtype=np.int64)),
        params=dict(params or {}),
        meta=meta,
    )


def make_task(
    ratings: pd.DataFrame,
    protocol: str = "per_user",
    *,
    threshold: float = POSITIVE_THRESHOLD,
    test_size: float = 0.2,
    seed: int | None = None,
    item_share: float = 0.2,
    exclude: str | None = None,
) -> RankingTask:
    """A task for one of :data:`PROTOCOLS` (see :mod:`recsys.eval.ranking`).

    seed defaults to 123 for "ratio" (Cornac's README) and 0 otherwise; exclude defaults to
    "positives" for "ratio" (Cornac's rule) and "all" otherwise.
    """
    from recsys.eval.splits import make_splits

    check_choice(protocol, "protocol", PROTOCOLS)
    check_ratings_frame(ratings)
    seed = (123 if protocol == "ratio" else 0) if seed is None else int(seed)
    params = {"protocol": protocol, "threshold": threshold, "seed": seed}
    if protocol == "ratio":
        exclude = exclude or "positives"
        train, test = ratio_split(ratings, test_size=test_size, seed=seed)
        params.update(test_size=test_size, exclude=exclude)
        return build_task(train, test, "ratio", threshold=threshold, exclude=exclude, params=params)
    if protocol == "per_user":
        exclude = exclude or "all"
        fold = make_splits(ratings, "per_user", seed=seed, test_size=test_size)[0]
        params.update(test_size=test_size, exclude=exclude)
        # Items seen only in the held-out side cannot be scored by a CF model: Cornac's
        # exclude_unknowns rule (they are not candidates and their ratings are not positives).
        return build_task(fold.train, fold.test, "per_user", threshold=threshold, exclude=exclude, params=params)
    exclude = exclude or "all"
    fold = make_splits(ratings, "cold_items", seed=seed, item_share=item_share)[0]
    params.update(item_share=item_share, exclude=exclude)
    test = fold.test[fold.test["user_id"].isin(fold.train["user_id"].unique())]
    return build_task(
        fold.train,
        test,
        "cold_items",
        threshold=threshold,
        exclude=exclude,
        candidates=fold.cold_items,
        cold_items=fold.cold_items,
        params=params,
    )
