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


class ContentPredictor(RatingPredictor):
    """VT2's content predictor (module docstring). features: item embeddings; top_m: only the m
    most similar rated items vote (None: all of them)."""

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
        self.global_mean_ = float(train["rating"].to_numpy(dtype=np.float64).mean())
        self.user_means_ = train.groupby("user_id")["rating"].mean().astype(np.float64)
        self._feature_index = pd.Index(self.features.item_ids)
        # Unit rows once per fit, so scoring many pairs is one matrix product per user.
        self.unit_features_ = unit_rows(self.features.matrix)
        rows = self._feature_index.get_indexer(train["item_id"].to_numpy())
        # Per user: feature rows and ratings of the rated items that have features, by item id.
        voting = train.assign(_row=rows)[rows >= 0].sort_values(["user_id", "item_id"], kind="stable")
        self.user_votes_ = {
            user: (group["_row"].to_numpy(), group["rating"].to_numpy(dtype=np.float64))
            for user, group in voting.groupby("user_id", sort=False)
        }
        self.items_without_features_ = np.setdiff1d(train["item_id"].unique(), self.features.item_ids)
        return self

    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        user_mean = self.user_means_.reindex(user_ids).to_numpy()
        unknown = np.isnan(user_mean)
        predictions = np.where(unknown, self.global_mean_, user_mean)
        fallback = np.ones(len(user_ids), dtype=bool)
        item_rows = self._feature_index.get_indexer(item_ids)
        scorable = np.flatnonzero(~unknown & (item_rows >= 0))
        frame = pd.DataFrame({"user": user_ids[scorable], "position": scorable})
        for user, group in frame.groupby("user", sort=False):
            votes = self.user_votes_.get(user)
            if votes is None:
                continue  # the user rated only items without features
            rated_rows, rated_values = votes
            positions = group["position"].to_numpy()
            estimate, has_weight = self._estimate(item_rows[positions], rated_rows, rated_values)
            predictions[positions] = np.where(has_weight, estimate, predictions[positions])
            fallback[positions] = ~has_weight
        return predictions, fallback

    def _estimate(self, target_rows, rated_rows, rated_values):
        unit = self.unit_features_
        weights = unit[target_rows] @ unit[rated_rows].T
        np.maximum(weights, 0.0, out=weights)
        np.minimum(weights, 1.0, out=weights)  # rounding can overshoot 1 for identical directions
        if self.top_m is not None and self.top_m < weights.shape[1]:
            # Stable sort keeps the item-id order among equal similarities.
            order = np.argsort(-weights, axis=1, kind="stable")[:, : self.top_m]
            weights = np.take_along_axis(weights, order, axis=1)
            weighted_sum = (weights * rated_values[order]).sum(axis=1)
        else:
            weighted_sum = weights @ rated_values
        total = weights.sum(axis=1)
        has_weight = total > 0
        estimate = weighted_sum / np.where(has_weight, total, 1.0)
        return estimate, has_weight
