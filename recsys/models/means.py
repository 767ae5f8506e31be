"""Mean baselines: the yardsticks every other predictor is reported next to."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.models.base import RatingPredictor, check_ratings_frame


class UserMeanPredictor(RatingPredictor):
    """Each user's mean training rating; unseen users get the global mean (flagged)."""

    def fit(self, train: pd.DataFrame) -> "UserMeanPredictor":
        check_ratings_frame(train)
        self.learn_rating_scale(train)
        self.global_mean_ = float(train["rating"].to_numpy(dtype=np.float64).mean())
        self.user_means_ = train.groupby("user_id")["rating"].mean().astype(np.float64)
        return self

    def predict(self, user_ids, item_ids) -> np.ndarray:
        if not hasattr(self, "user_means_"):
            raise RuntimeError("UserMeanPredictor is not fitted: call fit(train) first")
        user_ids = np.asarray(user_ids)
        if user_ids.shape != np.asarray(item_ids).shape:
            raise ValueError("user_ids and item_ids must have equal length")
        means = self.user_means_.reindex(user_ids).to_numpy()
        self.last_unknown_ = np.isnan(means)
        self.last_fallback_ = self.last_unknown_
        return self.clip(np.where(self.last_unknown_, self.global_mean_, means))


class GlobalMeanPredictor(RatingPredictor):
    """The global training mean for every pair."""

    def fit(self, train: pd.DataFrame) -> "GlobalMeanPredictor":
        check_ratings_frame(train)
        self.learn_rating_scale(train)
        self.global_mean_ = float(train["rating"].to_numpy(dtype=np.float64).mean())
        return self

    def predict(self, user_ids, item_ids) -> np.ndarray:
        if not hasattr(self, "global_mean_"):
            raise RuntimeError("GlobalMeanPredictor is not fitted: call fit(train) first")
        n = len(np.asarray(user_ids))
        self.last_fallback_ = np.zeros(n, dtype=bool)
        return np.full(n, self.global_mean_)
