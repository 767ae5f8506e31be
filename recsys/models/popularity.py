"""MostPop: every user gets the items most users interacted with in training (the ranking floor)."""

from __future__ import annotations

import numpy as np

from recsys.models.base import check_positive
from recsys.models.implicit import ImplicitRanker, Interactions


class MostPop(ImplicitRanker):
    """Score of an item = number of training users with a positive interaction (Cornac's MostPop).

    positive_threshold: ratings >= this count as interactions (None: every rating does).
    """

    def __init__(self, positive_threshold: float | None = None):
        self.positive_threshold = positive_threshold
        self._validate_params()

    def _validate_params(self) -> None:
        check_positive(self.positive_threshold, "positive_threshold", allow_zero=True, allow_none=True)

    def _fit(self, interactions: Interactions, progress) -> None:
        self.item_counts_ = np.asarray(interactions.positives.sum(axis=0), dtype=np.float64).ravel()

    def _score_codes(self, user_codes: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_counts_, (len(user_codes), len(self.item_counts_))).copy()

    def _fallback_scores(self) -> np.ndarray:
        return self.item_counts_.copy()
