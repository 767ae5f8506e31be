"""Mean baselines: the yardsticks every other predictor is reported next to."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.models.base import RatingPredictor, check_training_ratings


class UserMeanPredictor(RatingPredictor):
    """Each user's mean training rating; unseen users get the global mean (flagged)."""

    def fit(self, train: pd.DataFrame) -> UserMeanPredictor:
        check_training_ratings(train)  # a NaN rating would make every mean NaN
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
    """The global training mean for every pair; `last_unknown_` flags users or items unseen in training."""

    def fit(self, train: pd.DataFrame) -> GlobalMeanPredictor:
        check_training_ratings(train)
        self.learn_rating_scale(train)
        self.global_mean_ = float(train["rating"].to_numpy(dtype=np.float64).mean())
        self.user_ids_ = np.unique(train["user_id"].to_numpy())
        self.item_ids_ = np.unique(train["item_id"].to_numpy())
        return self

    def predict(self, user_ids, item_ids) -> np.ndarray:
        if not hasattr(self, "global_mean_"):
            raise RuntimeError("GlobalMeanPredictor is not fitted: call fit(train) first")
        user_ids, item_ids = np.asarray(user_ids), np.asarray(item_ids)
        if user_ids.shape != item_ids.shape:
            raise ValueError("user_ids and item_ids must have equal length")
        n = len(user_ids)
        self.last_fallback_ = np.zeros(n, dtype=bool)
        self.last_unknown_ = ~(np.isin(user_ids, self.user_ids_) & np.isin(item_ids, self.item_ids_))
        return self.clip(np.full(n, self.global_mean_))
