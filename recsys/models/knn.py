"""User-based KNN rating prediction with a one-pass sweep over the neighbourhood size K.

Prediction for (u, i), over N_K(u, i) = the K users most similar to u among those who rated i:

    mean-centred:   r̄_u + Σ sim(u,v)·(r_vi − r̄_v) / Σ |sim(u,v)|
    weighted mean:        Σ sim(u,v)·r_vi        / Σ |sim(u,v)|

Semantics follow Surprise's `KNNWithMeans` / `KNNBasic` (surprise/prediction_algorithms/knns.py)
so the numbers can be checked against it:
- neighbours are chosen by largest similarity (`heapq.nlargest`); ties keep the order in which
  the raters appear in the training frame, as Surprise's trainset does;
- with `positive_only=True` (Surprise's behaviour) only neighbours with sim > 0 among those K
  contribute; `positive_only=False` also lets negative similarities vote (denominator Σ|sim|);
- when the selected neighbours carry no weight (Σ|sim| = 0) the prediction is the user's mean;
- users or items unseen in training get the global training mean (Surprise's "impossible"
  default). Both fallbacks are flagged in the mask `predict(..., return_fallback=True)` returns
  (no neighbour evidence, or an unseen user or item); `predict_k_curve` returns the mask per K
  and the unseen pairs separately (`KCurve`);
- predictions are clipped to the rating scale.

`predict_k_curve` sorts every (user, item) pair's candidate neighbours once and reads the
prediction for every K off cumulative sums, so a 10-point K curve costs one prediction pass.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput, InvalidParameter
from recsys.models.base import (
    RatingMatrix,
    RatingPredictor,
    check_choice,
    check_count,
    check_dense_size,
    check_is_fitted,
    check_positive_ratings,
    check_training_ratings,
)
from recsys.models.similarity import corated_cosine, corated_pearson

# Bound on the (test users x raters) block sorted at once, to keep memory flat on big items.
_BLOCK_CELLS = 4_000_000


class KCurve(NamedTuple):
    """Predictions for a grid of K from one neighbour sort.

    values:   (len(ks), n_pairs) predictions, clipped to the training scale;
    fallback: (len(ks), n_pairs) True where the pair had no neighbour evidence at that K (the
              user's mean) or an unseen user or item (the global mean);
    unknown:  (n_pairs,) True where the user or the item is unseen in training.
    """

    values: np.ndarray
    fallback: np.ndarray
    unknown: np.ndarray


def _check_ks(ks) -> np.ndarray:
    ks = np.atleast_1d(np.asarray(ks))
    if ks.size == 0:
        raise InvalidParameter("ks is empty: give at least one neighbourhood size K")
    for k in ks.tolist():
        check_count(k, "K (neighbours)")
    return ks.astype(np.int64)


def _check_flag(value, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameter(f"{name} must be True or False, got {value!r}")


class NeighbourhoodPredictor(RatingPredictor):
    """User-similarity KNN machinery; subclasses supply the user x user similarity matrix."""

    def __init__(self, k: int = 40, mean_centred: bool = True, positive_only: bool = True):
        self.k = k
        self.mean_centred = mean_centred
        self.positive_only = positive_only

    def _validate_params(self) -> None:
        check_count(self.k, "k (neighbours)")
        _check_flag(self.mean_centred, "mean_centred")
        _check_flag(self.positive_only, "positive_only")

    # -- subclass hook ---------------------------------------------------------------------
    def _user_similarity(self, train: pd.DataFrame) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame) -> NeighbourhoodPredictor:
        self._validate_params()
        check_training_ratings(train)
        self.learn_rating_scale(train)
        self.ratings_ = RatingMatrix(train)
        n_users = len(self.ratings_.user_ids)
        check_dense_size(n_users, n_users, "user-similarity", type(self).__name__)
        self.user_means_ = self.ratings_.user_means()
        self.global_mean_ = float(train["rating"].to_numpy(dtype=np.float64).mean())
        self.similarity_ = np.asarray(self._user_similarity(train), dtype=np.float64)
        n_users = len(self.ratings_.user_ids)
        if self.similarity_.shape != (n_users, n_users):  # pragma: no cover - a bug in a subclass
            raise AssertionError(f"similarity has shape {self.similarity_.shape}, expected {(n_users, n_users)}")
        # Raters of each item in training-frame order (Surprise's tie order), as CSR-like arrays.
        user_codes = self.ratings_.user_codes(train["user_id"].to_numpy())
        item_codes = self.ratings_.item_codes(train["item_id"].to_numpy())
        order = np.argsort(item_codes, kind="stable")
        self.item_raters_ = user_codes[order]
        self.item_rater_ratings_ = train["rating"].to_numpy(dtype=np.float64)[order]
        self.item_rater_ptr_ = np.concatenate(
            [[0], np.cumsum(np.bincount(item_codes, minlength=len(self.ratings_.item_ids)))]
        )
        return self

    # -- prediction ------------------------------------------------------------------------
    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, fallback, _ = self._k_curve(user_ids, item_ids, np.array([self.k], dtype=np.int64))
        return values[0], fallback[0]

    def predict_k_curve(self, user_ids, item_ids, ks, progress=None) -> KCurve:
        """Predictions for every K in `ks` from one neighbour sort, with their fallback masks.

        Returns :class:`KCurve` ``(values, fallback, unknown)``; ``values[j]`` equals
        ``UserKNN(k=ks[j])``'s predictions exactly.
        """
        check_is_fitted(self)
        ks = _check_ks(ks)
        user_ids = np.asarray(user_ids)
        item_ids = np.asarray(item_ids)
        if user_ids.shape != item_ids.shape or user_ids.ndim != 1:
            raise InvalidInput(
                f"user_ids {user_ids.shape} and item_ids {item_ids.shape} must be 1-D and of equal length"
            )
        values, fallback, unknown = self._k_curve(user_ids, item_ids, ks, progress)
        return KCurve(self.clip(values), fallback, unknown)

    def _k_curve(self, user_ids, item_ids, ks, progress=None):
        """Unclipped (values, fallback) of shape (len(ks), n_pairs) and the unseen-pair mask."""
        users = self.ratings_.user_codes(user_ids)
        items = self.ratings_.item_codes(item_ids)
        n_pairs = len(users)
        predictions = np.full((len(ks), n_pairs), self.global_mean_, dtype=np.float64)
        fallback = np.ones((len(ks), n_pairs), dtype=bool)
        unknown = (users < 0) | (items < 0)

        known = np.flatnonzero(~unknown)
        known = known[np.argsort(items[known], kind="stable")]
        item_starts = np.flatnonzero(np.r_[True, np.diff(items[known]) != 0]) if len(known) else np.array([], int)
        boundaries = np.r_[item_starts, len(known)]
        k_max = int(ks.max())
        n_groups = len(item_starts)
        for group in range(n_groups):
            pairs = known[boundaries[group] : boundaries[group + 1]]
            item = items[pairs[0]]
            start, stop = self.item_rater_ptr_[item], self.item_rater_ptr_[item + 1]
            raters = self.item_raters_[start:stop]
            rater_values = self.item_rater_ratings_[start:stop]
            if self.mean_centred:
                rater_values = rater_values - self.user_means_[raters]
            rows_per_block = max(1, _BLOCK_CELLS // max(len(raters), 1))
            for block_start in range(0, len(pairs), rows_per_block):
                block = pairs[block_start : block_start + rows_per_block]
                estimate, no_evidence = self._estimate_block(users[block], raters, rater_values, ks, k_max)
                predictions[:, block] = estimate.T
                fallback[:, block] = no_evidence.T
            if progress is not None and (group % 200 == 0 or group == n_groups - 1):
                progress(group + 1, n_groups, "neighbour sweep over items")
        return predictions, fallback, unknown

    def _estimate_block(self, block_users, raters, rater_values, ks, k_max):
        similarity = self.similarity_[np.ix_(block_users, raters)]
        rank = np.argsort(-similarity, axis=1, kind="stable")[:, :k_max]
        similarity = np.take_along_axis(similarity, rank, axis=1)
        values = rater_values[rank]
        if self.positive_only:
            similarity = np.where(similarity > 0, similarity, 0.0)
        numerator = np.cumsum(similarity * values, axis=1)
        denominator = np.cumsum(np.abs(similarity), axis=1)
        last = np.minimum(ks, len(raters)) - 1
        numerator = numerator[:, last]
        denominator = denominator[:, last]
        user_means = self.user_means_[block_users][:, None]
        no_evidence = denominator == 0
        ratio = numerator / np.where(no_evidence, 1.0, denominator)
        base = user_means if self.mean_centred else 0.0
        estimate = np.where(no_evidence, user_means, base + ratio)
        return estimate, no_evidence


class UserKNN(NeighbourhoodPredictor):
    """User-based KNN on ratings with Surprise's co-rated cosine or Pearson similarity.

    similarity: "cosine" or "pearson" (computed over items both users rated);
    min_support: pairs of users with fewer common items get similarity 0.
    """

    SIMILARITIES = {"cosine": corated_cosine, "pearson": corated_pearson}

    def __init__(
        self,
        k: int = 40,
        similarity: str = "cosine",
        min_support: int = 1,
        mean_centred: bool = True,
        positive_only: bool = True,
    ):
        super().__init__(k=k, mean_centred=mean_centred, positive_only=positive_only)
        self.similarity = similarity
        self.min_support = min_support
        self._validate_params()

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice(self.similarity, "similarity", sorted(self.SIMILARITIES))
        check_count(self.min_support, "min_support", minimum=0)

    def _user_similarity(self, train: pd.DataFrame) -> np.ndarray:
        # The co-rated similarities drop zeros from the sparse matrix as "not rated".
        check_positive_ratings(train, type(self).__name__)
        return self.SIMILARITIES[self.similarity](self.ratings_.matrix, min_support=self.min_support)
