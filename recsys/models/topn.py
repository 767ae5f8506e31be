"""Top-N lists from any rating predictor: :class:`PredictorTopN`, the generic `TopNRecommender`.

Scores are the model's predicted ratings; ties are broken by lower item id so lists are
deterministic. Candidates default to every item of the training data (pass `candidates` to include
cold-start items that a content model can score). Items the user rated in training are left out
unless ``exclude_seen=False``. Users unknown to the training data still get a list, from the
model's fallback scores (for most models a constant, so the order is just item id): the
``fallback`` column flags every slot the model scored without evidence, so callers can show such
lists as what they are instead of as recommendations.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from recsys.errors import InvalidParameter
from recsys.models.base import (
    BaseEstimator,
    RatingMatrix,
    RatingPredictor,
    TopNRecommender,
    check_is_fitted,
    check_ratings_frame,
    clone,
    empty_topn,
    predict_with_fallback,
    reports_fallback,
    topn_frame,
)

logger = logging.getLogger(__name__)

# Pairs scored per predict call: bounds memory for big catalogues x many users.
_PAIRS_PER_CALL = 500_000


class PredictorTopN(BaseEstimator, TopNRecommender):
    """Top-N recommender from a rating predictor (``model``): its predictions, best first.

    ``fit(train)`` fits an unfitted copy of ``model`` (``model_``) and remembers what each user
    rated; :meth:`from_fitted` wraps a model that is already fitted on ``train`` instead.
    """

    def __init__(self, model: RatingPredictor):
        self.model = model
        self._validate_params()

    def _validate_params(self) -> None:
        if not (hasattr(self.model, "fit") and hasattr(self.model, "predict")):
            raise InvalidParameter(f"model must be a rating predictor (fit/predict), got {self.model!r}")

    def fit(self, train: pd.DataFrame) -> PredictorTopN:
        self._validate_params()
        check_ratings_frame(train)
        self.model_ = clone(self.model).fit(train)
        self._remember(train)
        return self

    @classmethod
    def from_fitted(cls, model: RatingPredictor, train: pd.DataFrame) -> PredictorTopN:
        """Wrap `model`, already fitted on `train` (which says what each user rated)."""
        check_is_fitted(model)
        check_ratings_frame(train)
        recommender = cls(model)
        recommender.model_ = model
        recommender._remember(train)
        return recommender

    def _remember(self, train: pd.DataFrame) -> None:
        # Only the pattern matters: every training pair becomes a 1 in a sparse user x item matrix.
        self.seen_ = RatingMatrix(train[["user_id", "item_id"]].assign(rating=1.0))
        self.user_ids_ = self.seen_.user_ids
        self.item_ids_ = self.seen_.item_ids

    def recommend(
        self,
        user_ids=None,
        n: int | None = None,
        *,
        exclude_seen: bool = True,
        candidates=None,
        progress=None,
    ) -> pd.DataFrame:
        """Top-`n` per user as the :data:`~recsys.models.base.TOPN_COLUMNS` frame (see the module docstring)."""
        check_is_fitted(self)
        n = self._list_length(n)
        users = self.user_ids_ if user_ids is None else np.atleast_1d(np.asarray(user_ids, dtype=np.int64))
        items = self.item_ids_ if candidates is None else np.unique(np.asarray(list(candidates), dtype=np.int64))
        if len(users) == 0 or len(items) == 0:
            return empty_topn()
        # Per training item code: its position among the candidates (-1 when not a candidate).
        candidate_of_code = pd.Index(items).get_indexer(self.item_ids_)
        user_codes = self.seen_.user_codes(users)
        users_per_call = max(1, _PAIRS_PER_CALL // len(items))
        indptr, indices = self.seen_.matrix.indptr, self.seen_.matrix.indices
        frames = []
        for start in range(0, len(users), users_per_call):
            batch = users[start : start + users_per_call]
            codes = user_codes[start : start + users_per_call]
            scores, fallback = predict_with_fallback(
                self.model_, np.repeat(batch, len(items)), np.tile(items, len(batch))
            )
            scores = np.asarray(scores, dtype=np.float64).reshape(len(batch), len(items)).copy()
            fallback = np.asarray(fallback, dtype=bool).reshape(scores.shape)
            eligible = np.ones(scores.shape, dtype=bool)
            if exclude_seen:
                for row, code in enumerate(codes):
                    if code >= 0:
                        positions = candidate_of_code[indices[indptr[code] : indptr[code + 1]]]
                        eligible[row, positions[positions >= 0]] = False
            # Candidates are sorted by id, so a stable sort on -score breaks ties by lower item id.
            ranked = np.argsort(np.where(eligible, -scores, np.inf), axis=1, kind="stable")[:, :n]
            kept = np.take_along_axis(eligible, ranked, axis=1)
            rows, ranks = np.nonzero(kept)
            columns = ranked[rows, ranks]
            frames.append(
                topn_frame(batch[rows], ranks + 1, items[columns], scores[rows, columns], fallback[rows, columns])
            )
            if progress is not None:
                progress(min(start + users_per_call, len(users)), len(users), "scoring candidate items")
        frame = pd.concat(frames, ignore_index=True) if frames else empty_topn()
        if len(frame) and reports_fallback(self.model_):
            share = float(frame["fallback"].mean())
            if share > 0.5:
                logger.warning(
                    "%s: %.0f%% of the top-%d slots for %d users are fallback scores (no evidence)",
                    type(self.model_).__name__,
                    100 * share,
                    n,
                    len(users),
                )
        return frame
