"""Mean baselines: the yardsticks every other predictor is reported next to."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.models.base import RatingPredictor, check_training_ratings


class UserMeanPredictor(RatingPredictor):
    """Each user's mean training rating; unseen users get the global mean (flagged as fallback)."""

    def __init__(self):
        pass

    def fit(self, train: pd.DataFrame) -> UserMeanPredictor:
        check_training_ratings(train)  # a NaN rating would make every mean NaN
        self.learn_rating_scale(train)
        self.global_mean_ = float(train["rating"].to_numpy(dtype=np.float64).mean())
        self.user_means_ = train.groupby("user_id")["rating"].mean().astype(np.float64)
        return self

    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means = self.user_means_.reindex(user_ids).to_numpy()
        unknown = np.isnan(means)
        return np.where(unknown, self.global_mean_, means), unknown


class GlobalMeanPredictor(RatingPredictor):
    """The global training mean for every pair; pairs with a user or item unseen in training are
    flagged as fallback (the mean is all there is for them, also for a model that knows more)."""

    def __init__(self):
        pass

    def fit(self, train: pd.DataFrame) -> GlobalMeanPredictor:
        check_training_ratings(train)
        self.learn_rating_scale(train)
        self.global_mean_ = float(train["rating"].to_numpy(dtype=np.float64).mean())
        self.user_ids_ = np.unique(train["user_id"].to_numpy())
        self.item_ids_ = np.unique(train["item_id"].to_numpy())
        return self

    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        unknown = ~(np.isin(user_ids, self.user_ids_) & np.isin(item_ids, self.item_ids_))
        return np.full(len(user_ids), self.global_mean_), unknown
