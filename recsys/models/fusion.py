"""Linear fusion of a collaborative and a content prediction: r = k·r_CF + (1 − k)·r_content.

`fuse_predictions` combines two prediction vectors for a whole grid of k at once, so an
experiment computes both base predictions once per fold and reads every k off them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.models.base import RatingPredictor


def check_weights(weights) -> np.ndarray:
    weights = np.atleast_1d(np.asarray(weights, dtype=np.float64))
    if weights.size == 0 or not np.isfinite(weights).all() or (weights < 0).any() or (weights > 1).any():
        raise ValueError(f"fusion weights must be finite values in [0, 1], got {weights.tolist()}")
    return weights


def fuse_predictions(cf_predictions, content_predictions, weights) -> np.ndarray:
    """(len(weights), n_pairs): weights[w]·cf + (1 − weights[w])·content."""
    cf = np.asarray(cf_predictions, dtype=np.float64)
    content = np.asarray(content_predictions, dtype=np.float64)
    if cf.shape != content.shape:
        raise ValueError(f"CF predictions {cf.shape} and content predictions {content.shape} differ in shape")
    weights = check_weights(weights)[:, None]
    return weights * cf[None, :] + (1.0 - weights) * content[None, :]


class LinearFusion(RatingPredictor):
    """`weight`·cf_model + (1 − `weight`)·content_model; both are fitted on the same train."""

    def __init__(self, cf_model: RatingPredictor, content_model: RatingPredictor, weight: float = 0.5):
        check_weights([weight])
        self.cf_model = cf_model
        self.content_model = content_model
        self.weight = weight

    def fit(self, train: pd.DataFrame) -> LinearFusion:
        self.cf_model.fit(train)
        self.content_model.fit(train)
        self.learn_rating_scale(train)
        self.fitted_ = True
        return self

    def predict(self, user_ids, item_ids) -> np.ndarray:
        if not getattr(self, "fitted_", False):
            raise RuntimeError("LinearFusion is not fitted: call fit(train) first")
        return self.predict_weights(user_ids, item_ids, [self.weight])[0]

    def predict_weights(self, user_ids, item_ids, weights) -> np.ndarray:
        """Predictions for a grid of weights from one prediction of each base model."""
        cf = self.cf_model.predict(user_ids, item_ids)
        content = self.content_model.predict(user_ids, item_ids)
        # The fused value carries evidence unless both parts fell back (then it is their fallbacks' mix).
        cf_fallback = getattr(self.cf_model, "last_fallback_", None)
        content_fallback = getattr(self.content_model, "last_fallback_", None)
        if cf_fallback is not None and content_fallback is not None:
            self.last_fallback_ = np.asarray(cf_fallback, bool) & np.asarray(content_fallback, bool)
        return self.clip(fuse_predictions(cf, content, weights))
