"""VT2's content-based rating predictor: a user's own ratings, weighted by embedding similarity.

prediction(u, i) = Σ_j w_ij · r_uj / Σ_j w_ij over the items j that u rated in training, with
w_ij = max(0, cos(e_i, e_j)) (cosine between item embeddings clipped to [0, 1]). With `top_m`,
only the m rated items most similar to i vote (ties: lower item id first).

Because only the embedding of i is needed, items never seen in training (cold start) are scored
as long as they have features. Fallbacks, flagged in the mask of `predict(..., return_fallback=True)`:
- i has no features, or every weight is 0 -> the user's training mean;
- u unseen in training -> the global training mean.
Rated items without features simply do not vote.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.features.item_features import ItemFeatures
from recsys.models.base import (
    RatingPredictor,
    check_count,
    check_features,
    check_item_features,
    check_training_ratings,
)
from recsys.models.similarity import unit_rows

try:
    import numba

    prange = numba.prange
except ImportError:  # pragma: no cover - numba comes with umap-learn
    numba = None
    prange = range

# Item-item similarities are computed for a block of target items at a time (rows of
# unit @ unit.T): at most about this many bytes, whatever the catalogue size.
_BLOCK_BYTES = 1 << 28


def _content_pairs(similarity, pair_rows, pair_users, pair_out, user_ptr, user_rows, user_values, top_m, out, weighted):
    """Per pair (target row of `similarity`, user): Σ w r / Σ w over the user's rated items with
    w = clip(cos, 0, 1); with top_m > 0 only the top_m largest w (ties: lower item id) vote."""
    n_pairs = len(pair_rows)
    n_chunks = min(max(n_pairs, 1), 256)
    for chunk in prange(n_chunks):
        heap_w = np.empty(max(top_m, 1))
        heap_r = np.empty(max(top_m, 1))
        heap_pos = np.empty(max(top_m, 1), np.int64)
        for p in range(chunk * n_pairs // n_chunks, (chunk + 1) * n_pairs // n_chunks):
            row = similarity[pair_rows[p]]
            start, stop = user_ptr[pair_users[p]], user_ptr[pair_users[p] + 1]
            n = stop - start
            weighted_sum = 0.0
            total = 0.0
            if top_m <= 0 or top_m >= n:
                for q in range(start, stop):
                    w = min(max(row[user_rows[q]], 0.0), 1.0)
                    weighted_sum += w * user_values[q]
                    total += w
            else:
                size = 0
                for q in range(start, stop):
                    w = min(max(row[user_rows[q]], 0.0), 1.0)
                    position = q - start
                    if size < top_m:
                        # sift up (min-heap on (w, -position))
                        child = size
                        size += 1
                        heap_w[child], heap_r[child], heap_pos[child] = w, user_values[q], position
                        while child > 0:
                            parent = (child - 1) // 2
                            if heap_w[child] < heap_w[parent] or (
                                heap_w[child] == heap_w[parent] and heap_pos[child] > heap_pos[parent]
                            ):
                                heap_w[child], heap_w[parent] = heap_w[parent], heap_w[child]
                                heap_r[child], heap_r[parent] = heap_r[parent], heap_r[child]
                                heap_pos[child], heap_pos[parent] = heap_pos[parent], heap_pos[child]
                                child = parent
                            else:
                                break
                    elif w > heap_w[0]:  # equal weight: the earlier (lower item id) one stays
                        heap_w[0], heap_r[0], heap_pos[0] = w, user_values[q], position
                        root = 0
                        while True:
                            child = 2 * root + 1
                            if child >= size:
                                break
                            if child + 1 < size and (
                                heap_w[child + 1] < heap_w[child]
                                or (heap_w[child + 1] == heap_w[child] and heap_pos[child + 1] > heap_pos[child])
                            ):
                                child += 1
                            if heap_w[child] < heap_w[root] or (
                                heap_w[child] == heap_w[root] and heap_pos[child] > heap_pos[root]
                            ):
                                heap_w[child], heap_w[root] = heap_w[root], heap_w[child]
                                heap_r[child], heap_r[root] = heap_r[root], heap_r[child]
                                heap_pos[child], heap_pos[root] = heap_pos[root], heap_pos[child]
                                root = child
                            else:
                                break
                for j in range(size):
                    weighted_sum += heap_w[j] * heap_r[j]
                    total += heap_w[j]
            weighted[pair_out[p]] = total > 0
            if total > 0:
                out[pair_out[p]] = weighted_sum / total


if numba is not None:
    _content_pairs = numba.njit(cache=True, nogil=True, parallel=True)(_content_pairs)


class ContentPredictor(RatingPredictor):
    """VT2's content predictor (module docstring). features: item embeddings; top_m: only the m
    most similar rated items vote (None: all of them).

    Predictions run per block of target items: their similarity rows to every featured item
    (one BLAS product, about 256 MB at a time), then a compiled pass over the test pairs of those
    items reads each pair's weights off the rows: no user x item or dense item x item matrix is
    kept, so 13.6k trailer items x 138k users (VT2's ML-20M setting) run in bounded memory.
    """

    def __init__(self, features: ItemFeatures, top_m: int | None = None):
        self.features = features
        self.top_m = top_m
        self._validate_params()

    def _validate_params(self) -> None:
        check_features(self.features)
        check_count(self.top_m, "top_m", allow_none=True)

    def fit(self, train: pd.DataFrame) -> ContentPredictor:
        self._validate_params()
        check_training_ratings(train)
        check_item_features(self.features, train, type(self).__name__)
        self.learn_rating_scale(train)
        ratings = train["rating"].to_numpy(dtype=np.float64)
        self.global_mean_ = float(ratings.mean())
        self.user_ids_ = np.sort(train["user_id"].unique()).astype(np.int64)
        users = np.searchsorted(self.user_ids_, train["user_id"].to_numpy())
        self.user_means_ = train.groupby("user_id")["rating"].mean().astype(np.float64)
        self._feature_index = pd.Index(self.features.item_ids)
        # Unit rows once per fit (float64: the same cosines as before, whatever the block size).
        self.unit_features_ = unit_rows(self.features.matrix)
        rows = self._feature_index.get_indexer(train["item_id"].to_numpy())
        # Per user (CSR): feature rows and ratings of the rated items that have features, by item id.
        voting = rows >= 0
        order = np.lexsort((train["item_id"].to_numpy()[voting], users[voting]))
        self.user_votes_ = (
            np.r_[0, np.cumsum(np.bincount(users[voting], minlength=len(self.user_ids_)))].astype(np.int64),
            rows[voting][order].astype(np.int64),
            ratings[voting][order],
        )
        self.items_without_features_ = np.setdiff1d(train["item_id"].unique(), self.features.item_ids)
        return self

    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        user_mean = self.user_means_.reindex(user_ids).to_numpy()
        unknown = np.isnan(user_mean)
        predictions = np.where(unknown, self.global_mean_, user_mean)
        item_rows = self._feature_index.get_indexer(item_ids)
        scorable = np.flatnonzero(~unknown & (item_rows >= 0))
        weighted = np.zeros(len(user_ids), dtype=bool)
        if len(scorable):
            scorable = scorable[np.argsort(item_rows[scorable], kind="stable")]
            users = np.searchsorted(self.user_ids_, user_ids[scorable])
            targets = item_rows[scorable]
            unique_targets, starts = np.unique(targets, return_index=True)
            starts = np.r_[starts, len(scorable)]
            unit = self.unit_features_
            block = int(np.clip(_BLOCK_BYTES // (8 * max(len(unit), 1)), 1, len(unique_targets)))
            top_m = 0 if self.top_m is None else int(self.top_m)
            user_ptr, user_rows, user_values = self.user_votes_
            for first in range(0, len(unique_targets), block):
                chunk_targets = unique_targets[first : first + block]
                similarity = unit[chunk_targets] @ unit.T
                span = slice(starts[first], starts[min(first + block, len(unique_targets))])
                _content_pairs(
                    similarity,
                    np.searchsorted(chunk_targets, targets[span]),
                    users[span],
                    scorable[span],
                    user_ptr,
                    user_rows,
                    user_values,
                    top_m,
                    predictions,
                    weighted,
                )
        return predictions, ~weighted
