"""The small interface every rating predictor shares (Surprise's habit), so experiments swap them freely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp


def check_ratings_frame(train: pd.DataFrame) -> pd.DataFrame:
    missing = {"user_id", "item_id", "rating"} - set(train.columns)
    if missing:
        raise ValueError(f"ratings frame lacks columns {sorted(missing)}")
    if train.empty:
        raise ValueError("ratings frame is empty: nothing to fit")
    return train


# Dense user x user (and user x item) matrices make neighbourhood models exact and fast on ML-100K,
# ML-1M and ml-latest-small, but ML-20M's 138k users would need ~150 GB: refuse up front.
DENSE_LIMIT_BYTES = 4 * 2**30


def check_dense_size(rows: int, columns: int, what: str, model: str) -> None:
    needed = rows * columns * 8
    if needed > DENSE_LIMIT_BYTES:
        raise ValueError(
            f"{model} keeps a dense {rows:,} x {columns:,} {what} matrix ({needed / 2**30:.0f} GiB), over the "
            f"{DENSE_LIMIT_BYTES / 2**30:.0f} GiB limit: use a smaller dataset or a sample of users, or MF/FM"
        )


def check_training_ratings(train: pd.DataFrame) -> pd.DataFrame:
    """Reject what would silently corrupt means and similarities: NaN ratings, repeated pairs."""
    check_ratings_frame(train)
    if not np.isfinite(train["rating"].to_numpy(dtype=np.float64)).all():
        raise ValueError("training ratings contain NaN or infinite values")
    if train.duplicated(["user_id", "item_id"]).any():
        raise ValueError("training ratings contain duplicate (user_id, item_id) pairs")
    return train


def check_positive_ratings(train: pd.DataFrame, model: str) -> None:
    """Models that keep ratings in a sparse matrix read 0 as "not rated", so a 0 rating would
    silently vanish from similarities and candidate sets; refuse it instead of mis-scoring."""
    ratings = train["rating"].to_numpy(dtype=np.float64)
    if (ratings <= 0).any():
        raise ValueError(
            f"{model} needs ratings > 0 (0 means 'not rated' in its sparse matrix); found "
            f"{int((ratings <= 0).sum())} ratings <= 0 (minimum {ratings.min():g}): shift the scale first"
        )


def check_item_features(features, train: pd.DataFrame, model: str) -> None:
    """Refuse item features that would give silently wrong numbers rather than an error.

    - NaN/inf values propagate through profiles and cosines into NaN similarities, which sort
      arbitrarily and then select neighbours at random;
    - features that cover none of the rated items (e.g. another dataset's) turn every prediction
      into a fallback that still looks like a result.
    """
    features.check_finite(model)
    rated = np.isin(features.item_ids, train["item_id"].to_numpy()).sum()
    if rated == 0:
        raise ValueError(
            f"{model}: item features '{features.name}' cover none of the {train['item_id'].nunique()} rated items "
            f"(features for {len(features.item_ids)} items, e.g. ids {features.item_ids[:3].tolist()}): "
            "were they extracted for another dataset?"
        )


class RatingMatrix:
    """Dense integer codes for users and items plus the sparse user x item rating matrix."""

    def __init__(self, ratings: pd.DataFrame):
        check_ratings_frame(ratings)
        self.user_ids = np.sort(ratings["user_id"].unique()).astype(np.int64)
        self.item_ids = np.sort(ratings["item_id"].unique()).astype(np.int64)
        self._user_index = pd.Index(self.user_ids)
        self._item_index = pd.Index(self.item_ids)
        rows = self._user_index.get_indexer(ratings["user_id"].to_numpy())
        cols = self._item_index.get_indexer(ratings["item_id"].to_numpy())
        values = ratings["rating"].to_numpy(dtype=np.float64)
        self.matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(self.user_ids), len(self.item_ids)))
        self.matrix.sum_duplicates()

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    def user_codes(self, user_ids) -> np.ndarray:
        """Row index per user id; -1 for users unseen in training."""
        return self._user_index.get_indexer(np.asarray(user_ids, dtype=np.int64))

    def item_codes(self, item_ids) -> np.ndarray:
        """Column index per item id; -1 for items unseen in training."""
        return self._item_index.get_indexer(np.asarray(item_ids, dtype=np.int64))

    def user_means(self) -> np.ndarray:
        counts = np.diff(self.matrix.indptr)
        sums = np.asarray(self.matrix.sum(axis=1)).ravel()
        return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)

    def item_means(self) -> np.ndarray:
        csc = self.matrix.tocsc()
        counts = np.diff(csc.indptr)
        sums = np.asarray(csc.sum(axis=0)).ravel()
        return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


class RatingPredictor:
    """Base class: parameters in __init__, `fit(train)` returns self, learned state ends with `_`.

    `predict(user_ids, item_ids)` is vectorised and always returns finite floats clipped to the
    rating scale; pairs the model cannot score fall back to a documented default (user mean,
    else global mean) and are flagged in `last_fallback_` so callers can report them.
    """

    # Default scale; `learn_rating_scale` replaces it by the training data's own (e.g. 0.5-5 stars
    # on ml-latest-small), so predictions are never clipped to a scale the data does not use.
    rating_scale: tuple[float, float] = (1.0, 5.0)

    def learn_rating_scale(self, train: pd.DataFrame) -> None:
        ratings = train["rating"].to_numpy(dtype=np.float64)
        self.rating_scale_ = (float(ratings.min()), float(ratings.max()))

    def fit(self, train: pd.DataFrame) -> "RatingPredictor":  # pragma: no cover - interface
        raise NotImplementedError

    def predict(self, user_ids, item_ids) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def predict_frame(self, pairs: pd.DataFrame) -> np.ndarray:
        return self.predict(pairs["user_id"].to_numpy(), pairs["item_id"].to_numpy())

    def clip(self, values: np.ndarray) -> np.ndarray:
        low, high = getattr(self, "rating_scale_", self.rating_scale)
        return np.clip(values, low, high)

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if not hasattr(v, "shape"))
        return f"{type(self).__name__}({params})"
