"""Linear fusion of a collaborative and a content prediction: r = w·r_CF + (1 − w)·r_content.

`w` is the fusion weight (w = 1: CF alone, w = 0: content alone). `fuse_predictions` combines two
prediction vectors for a whole grid of w at once, so an experiment computes both base predictions
once per fold and reads every w off them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput, InvalidParameter
from recsys.models.base import (
    RatingPredictor,
    check_fraction,
    check_is_fitted,
    clone,
    predict_with_fallback,
)


def check_weights(weights) -> np.ndarray:
    """A non-empty grid of fusion weights w, each in [0, 1]."""
    values = np.atleast_1d(np.asarray(weights))
    if values.size == 0:
        raise InvalidParameter("the grid of fusion weights w is empty")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.bool_):
        raise InvalidParameter(f"fusion weights w must be numbers in [0, 1], got {values.tolist()}")
    values = values.astype(np.float64)
    if not np.isfinite(values).all() or (values < 0).any() or (values > 1).any():
        raise InvalidParameter(f"fusion weights w must be finite values in [0, 1], got {values.tolist()}")
    return values


def fuse_predictions(cf_predictions, content_predictions, weights) -> np.ndarray:
    """(len(weights), n_pairs): w·cf + (1 − w)·content for every w in `weights`."""
    cf = np.asarray(cf_predictions, dtype=np.float64)
    content = np.asarray(content_predictions, dtype=np.float64)
    if cf.shape != content.shape:
        raise InvalidInput(f"CF predictions {cf.shape} and content predictions {content.shape} differ in shape")
    weights = check_weights(weights)[:, None]
    return weights * cf[None, :] + (1.0 - weights) * content[None, :]


def fuse_fallbacks(cf_fallback, content_fallback, w: float) -> np.ndarray:
    """Which fused predictions carry no evidence: those whose weighted parts all fell back.

    At w = 1 only the CF part counts, at w = 0 only the content part; in between a pair is a
    fallback only when both parts fell back (one part with evidence moves the blend off the default).
    """
    cf_fallback = np.asarray(cf_fallback, dtype=bool)
    content_fallback = np.asarray(content_fallback, dtype=bool)
    if w >= 1.0:
        return cf_fallback.copy()
    if w <= 0.0:
        return content_fallback.copy()
    return cf_fallback & content_fallback


class LinearFusion(RatingPredictor):
    """`w`·cf_model + (1 − `w`)·content_model; unfitted copies of both are fitted on the same train.

    The parameters stay unfitted (``cf_model_`` and ``content_model_`` are the fitted copies), so one
    LinearFusion can be cloned and refitted per fold like any other estimator.
    """

    def __init__(self, cf_model: RatingPredictor, content_model: RatingPredictor, w: float = 0.5):
        self.cf_model = cf_model
        self.content_model = content_model
        self.w = w
        self._validate_params()

    def _validate_params(self) -> None:
        check_fraction(self.w, "w (fusion weight)")
        for name in ("cf_model", "content_model"):
            part = getattr(self, name)
            if not (hasattr(part, "fit") and hasattr(part, "predict") and hasattr(part, "get_params")):
                raise InvalidParameter(f"{name} must be a rating predictor (fit/predict), got {part!r}")

    def fit(self, train: pd.DataFrame) -> LinearFusion:
        self._validate_params()
        self.cf_model_ = clone(self.cf_model).fit(train)
        self.content_model_ = clone(self.content_model).fit(train)
        self.learn_rating_scale(train)
        return self

    def _parts(self, user_ids, item_ids):
        return (
            predict_with_fallback(self.cf_model_, user_ids, item_ids),
            predict_with_fallback(self.content_model_, user_ids, item_ids),
        )

    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cf, content = self._parts(user_ids, item_ids)
        fused = fuse_predictions(cf.values, content.values, [self.w])[0]
        return fused, fuse_fallbacks(cf.fallback, content.fallback, float(self.w))

    def predict_weights(self, user_ids, item_ids, weights) -> np.ndarray:
        """(len(weights), n_pairs) predictions for a grid of w from one prediction of each part."""
        check_is_fitted(self)
        cf, content = self._parts(user_ids, item_ids)
        return self.clip(fuse_predictions(cf.values, content.values, weights))
