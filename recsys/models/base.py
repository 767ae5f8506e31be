"""The estimator contract every model follows (scikit-learn's, with Surprise's fallback flag).

- Parameters only in ``__init__``, stored under the same names; :meth:`BaseEstimator.get_params`
  reads them from the signature, :func:`clone` builds an unfitted copy with the same parameters.
- ``fit(train)`` returns ``self``; learned state lives in attributes ending with ``_``;
  :func:`check_is_fitted` raises one :class:`~recsys.errors.NotFittedError` wording everywhere.
- Parameters are validated by the shared :func:`check_count`, :func:`check_fraction`,
  :func:`check_positive` and :func:`check_choice` (one rule and one message per kind), in the
  model's ``_validate_params``: called at the end of ``__init__`` (a typo fails where it was
  typed) and again by ``fit`` (``set_params`` may have changed a value). Values are stored as
  given, never converted, so ``get_params``/``clone`` round-trip exactly.
- ``predict(user_ids, item_ids)`` returns finite floats clipped to the training scale;
  ``predict(..., return_fallback=True)`` returns :class:`Predictions` (values + the mask of pairs
  the model could not score and filled with a documented default). Nothing about a call is kept
  on the model, so one fitted model can serve several Streamlit sessions at once.
  :func:`predict_with_fallback` gives the same for any predictor, including one that does not
  report fallbacks yet (its mask is then all False and :func:`reports_fallback` says so).
- Top-N: :class:`TopNRecommender` (``recommend(user_ids, n)`` -> tidy frame
  ``user_id, rank, item_id, score, fallback``) is the one interface of every list-making model;
  ``recsys.models.topn.PredictorTopN`` turns any rating predictor into one.
"""

from __future__ import annotations

import inspect
import numbers
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import InvalidInput, InvalidParameter, NotFittedError


def check_ratings_frame(train: pd.DataFrame) -> pd.DataFrame:
    missing = {"user_id", "item_id", "rating"} - set(train.columns)
    if missing:
        raise InvalidInput(f"ratings frame lacks columns {sorted(missing)}")
    if train.empty:
        raise InvalidInput("ratings frame is empty: nothing to fit")
    return train


# Dense user x user (and user x item) matrices make neighbourhood models exact and fast on ML-100K,
# ML-1M and ml-latest-small, but ML-20M's 138k users would need ~150 GB: refuse up front.
DENSE_LIMIT_BYTES = 4 * 2**30


def check_dense_size(rows: int, columns: int, what: str, model: str) -> None:
    needed = rows * columns * 8
    if needed > DENSE_LIMIT_BYTES:
        raise InvalidInput(
            f"{model} keeps a dense {rows:,} x {columns:,} {what} matrix ({needed / 2**30:.0f} GiB), over the "
            f"{DENSE_LIMIT_BYTES / 2**30:.0f} GiB limit: use a smaller dataset or a sample of users, or MF/FM"
        )


def check_training_ratings(train: pd.DataFrame) -> pd.DataFrame:
    """Reject what would silently corrupt means and similarities: NaN ratings, repeated pairs."""
    check_ratings_frame(train)
    if not np.isfinite(train["rating"].to_numpy(dtype=np.float64)).all():
        raise InvalidInput("training ratings contain NaN or infinite values")
    if train.duplicated(["user_id", "item_id"]).any():
        raise InvalidInput("training ratings contain duplicate (user_id, item_id) pairs")
    return train


def check_positive_ratings(train: pd.DataFrame, model: str) -> None:
    """Models that keep ratings in a sparse matrix read 0 as "not rated", so a 0 rating would
    silently vanish from similarities and candidate sets; refuse it instead of mis-scoring."""
    ratings = train["rating"].to_numpy(dtype=np.float64)
    if (ratings <= 0).any():
        raise InvalidInput(
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
        raise InvalidInput(
            f"{model}: item features '{features.name}' cover none of the {train['item_id'].nunique()} rated items "
            f"(features for {len(features.item_ids)} items, e.g. ids {features.item_ids[:3].tolist()}): "
            "were they extracted for another dataset?"
        )


def check_features(features, name: str = "features", allow_none: bool = False):
    """An item-feature table (``ItemFeatures``: ``item_ids`` + ``matrix``), duck-typed so that
    objects built before a Streamlit code reload still pass."""
    if features is None and allow_none:
        return None
    if not (hasattr(features, "item_ids") and hasattr(features, "matrix")):
        raise InvalidParameter(f"{name} must be ItemFeatures (item_ids + matrix), got {type(features).__name__}")
    return features


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


# ---- parameters and fitted state ---------------------------------------------------------------
class BaseEstimator:
    """scikit-learn's estimator habits without depending on scikit-learn's private machinery."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        names = []
        for name, parameter in signature.parameters.items():
            if name == "self":
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must list its parameters explicitly (no *args/**kwargs)")
            names.append(name)
        return sorted(names)

    def _validate_params(self) -> None:
        """Check every parameter with the shared validators; subclasses override (no-op here)."""

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor parameters, read from the ``__init__`` signature (sklearn's rule)."""
        params = {}
        for name in self._param_names():
            value = getattr(self, name)
            params[name] = value
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update({f"{name}__{key}": item for key, item in value.get_params(deep=True).items()})
        return params

    def set_params(self, **params) -> BaseEstimator:
        valid = set(self._param_names())
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in valid:
                raise InvalidParameter(f"{type(self).__name__} has no parameter {name!r} (parameters: {sorted(valid)})")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        parts = []
        for key, value in self.get_params().items():
            text = f"<{type(value).__name__}>" if hasattr(value, "shape") or hasattr(value, "item_ids") else repr(value)
            parts.append(f"{key}={text}")
        return f"{type(self).__name__}({', '.join(parts)})"


def clone(estimator, **overrides):
    """An unfitted copy with the same parameters (nested estimators cloned too), optionally changed."""
    if not hasattr(estimator, "get_params"):
        raise InvalidParameter(f"cannot clone {estimator!r}: it is not an estimator (no get_params)")
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        params[name] = clone(value) if isinstance(value, BaseEstimator) else value
    params.update(overrides)
    return type(estimator)(**params)


def is_fitted(estimator) -> bool:
    """True once ``fit`` has set a learned attribute (a public name ending with ``_``)."""
    return any(name.endswith("_") and not name.startswith("_") for name in vars(estimator))


def check_is_fitted(estimator, attributes: str | list[str] | None = None) -> None:
    """Raise NotFittedError (one wording for every model) unless `estimator` has been fitted."""
    if attributes is None:
        fitted = is_fitted(estimator)
    else:
        names = [attributes] if isinstance(attributes, str) else list(attributes)
        fitted = all(hasattr(estimator, name) for name in names)
    if not fitted:
        raise NotFittedError(f"{type(estimator).__name__} is not fitted yet: call fit(train) first")


# ---- shared validators: one rule and one message per kind of parameter --------------------------
def check_count(value, name: str, minimum: int = 1, maximum: int | None = None, allow_none: bool = False):
    """An integer count (K, N, factors, sweeps): an int (not float, not bool) within bounds.

    ``10.0`` is refused like ``2.5``: a float count is almost always a slip (a slider or a division),
    and quietly truncating it (``int(2.5) == 2``) would run a different experiment than asked.
    """
    if value is None and allow_none:
        return None
    if maximum is not None:
        kind = f"an integer in {minimum}..{maximum}"
    elif minimum == 1:
        kind = "a positive integer"
    elif minimum == 0:
        kind = "a non-negative integer"
    else:
        kind = f"an integer >= {minimum}"
    if allow_none:
        kind += " or None"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameter(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        raise InvalidParameter(f"{name} must be {kind}, got {value}")
    return value


def check_positive(value, name: str, allow_zero: bool = False, allow_none: bool = False):
    """A finite real number > 0 (>= 0 with allow_zero): learning rates, regularisation, shrinkage."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InvalidParameter(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidParameter(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return float(value)


def check_fraction(value, name: str, inclusive: tuple[bool, bool] = (True, True)):
    """A real number in [0, 1] (ends open where `inclusive` says so): weights w, alpha, test share."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise InvalidParameter(f"{name} must be a number in [0, 1], got {value!r}")
    low_ok = value >= 0 if inclusive[0] else value > 0
    high_ok = value <= 1 if inclusive[1] else value < 1
    if not (low_ok and high_ok):
        interval = f"{'[' if inclusive[0] else '('}0, 1{']' if inclusive[1] else ')'}"
        raise InvalidParameter(f"{name} must be in {interval}, got {value}")
    return float(value)


def check_choice(value, name: str, choices):
    """One of a fixed set of options (solver names, similarity metrics)."""
    choices = list(choices)
    if value not in choices:
        raise InvalidParameter(f"{name} must be one of {choices}, got {value!r}")
    return value


# ---- predictions --------------------------------------------------------------------------------
class Predictions(NamedTuple):
    """Predicted ratings and, per pair, whether the model fell back to a default (no evidence).

    Surprise's ``was_impossible`` per prediction, vectorised: travels with the values instead of
    living on the model, so concurrent callers never read each other's flags.
    """

    values: np.ndarray
    fallback: np.ndarray


class RatingPredictor(BaseEstimator):
    """Base class of rating predictors.

    Subclasses implement ``fit(train)`` (returning self) and ``_predict(user_ids, item_ids)``
    returning ``(values, fallback)``: unclipped values and the boolean mask of pairs filled with a
    documented default (user mean, else global mean). :meth:`predict` validates, clips to the
    training scale and returns the values, or :class:`Predictions` with ``return_fallback=True``.
    """

    # Default scale; `learn_rating_scale` replaces it by the training data's own (e.g. 0.5-5 stars
    # on ml-latest-small), so predictions are never clipped to a scale the data does not use.
    rating_scale: tuple[float, float] = (1.0, 5.0)

    def learn_rating_scale(self, train: pd.DataFrame) -> None:
        ratings = train["rating"].to_numpy(dtype=np.float64)
        self.rating_scale_ = (float(ratings.min()), float(ratings.max()))

    def fit(self, train: pd.DataFrame) -> RatingPredictor:  # pragma: no cover - interface
        raise NotImplementedError

    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - interface

    def predict(self, user_ids, item_ids, *, return_fallback: bool = False):
        """Predicted ratings for the pairs (user_ids[i], item_ids[i]), clipped to the training scale.

        With ``return_fallback=True`` returns ``Predictions(values, fallback)``.
        """
        check_is_fitted(self)
        user_ids = np.asarray(user_ids, dtype=np.int64).ravel()
        item_ids = np.asarray(item_ids, dtype=np.int64).ravel()
        if user_ids.shape != item_ids.shape:
            raise InvalidInput(f"user_ids and item_ids must have equal length, got {len(user_ids)} and {len(item_ids)}")
        values, fallback = self._predict(user_ids, item_ids)
        values = self.clip(np.asarray(values, dtype=np.float64))
        if return_fallback:
            return Predictions(values, np.asarray(fallback, dtype=bool))
        return values

    def predict_frame(self, pairs: pd.DataFrame, *, return_fallback: bool = False):
        return self.predict(pairs["user_id"].to_numpy(), pairs["item_id"].to_numpy(), return_fallback=return_fallback)

    def clip(self, values: np.ndarray) -> np.ndarray:
        low, high = getattr(self, "rating_scale_", self.rating_scale)
        return np.clip(values, low, high)


def reports_fallback(model) -> bool:
    """Whether ``model.predict`` accepts ``return_fallback`` (every RatingPredictor that implements
    ``_predict``); a model that still overrides ``predict`` without it does not."""
    try:
        return "return_fallback" in inspect.signature(model.predict).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def predict_with_fallback(model, user_ids, item_ids) -> Predictions:
    """``Predictions(values, fallback)`` from any fitted predictor.

    Models that do not report fallbacks (see :func:`reports_fallback`) get an all-False mask:
    callers that show a fallback share should check :func:`reports_fallback` and show "n/a".
    """
    if reports_fallback(model):
        return model.predict(user_ids, item_ids, return_fallback=True)
    values = np.asarray(model.predict(user_ids, item_ids), dtype=np.float64)
    return Predictions(values, np.zeros(values.shape, dtype=bool))


# ---- top-N --------------------------------------------------------------------------------------
TOPN_COLUMNS = ["user_id", "rank", "item_id", "score", "fallback"]


def empty_topn() -> pd.DataFrame:
    """The top-N frame with no rows but the right columns and dtypes."""
    return pd.DataFrame(
        {
            "user_id": pd.Series(dtype=np.int64),
            "rank": pd.Series(dtype=np.int64),
            "item_id": pd.Series(dtype=np.int64),
            "score": pd.Series(dtype=np.float64),
            "fallback": pd.Series(dtype=bool),
        }
    )


def topn_frame(user_ids, ranks, item_ids, scores, fallback) -> pd.DataFrame:
    """The top-N frame (:data:`TOPN_COLUMNS`, fixed dtypes) from equal-length columns."""
    if len(user_ids) == 0:
        return empty_topn()
    return pd.DataFrame(
        {
            "user_id": np.asarray(user_ids, dtype=np.int64),
            "rank": np.asarray(ranks, dtype=np.int64),
            "item_id": np.asarray(item_ids, dtype=np.int64),
            "score": np.asarray(scores, dtype=np.float64),
            "fallback": np.asarray(fallback, dtype=bool),
        }
    )


class TopNRecommender:
    """The one top-N interface (Cornac's ``rank``): every list-making model implements

    ``recommend(user_ids=None, n=None, *, exclude_seen=True, candidates=None) -> DataFrame``

    with columns :data:`TOPN_COLUMNS`: one row per (user, rank), rank 1 = best, ties broken by lower
    item id, items the user rated in training excluded unless ``exclude_seen=False``; ``fallback``
    flags slots filled without evidence for that user (unknown user, popularity filler).
    ``user_ids=None`` means every user the model was fitted on; ``n=None`` the model's own list
    length (its ``n`` parameter when it has one, else 10); ``candidates`` (item ids) restricts the
    items that may be listed. A user with fewer eligible items gets a shorter list.
    """

    default_n: int = 10

    def _list_length(self, n) -> int:
        if n is None:
            n = getattr(self, "n", self.default_n)
        return check_count(n, "n (list length)")

    def recommend(
        self, user_ids=None, n: int | None = None, *, exclude_seen: bool = True, candidates=None
    ) -> pd.DataFrame:
        raise NotImplementedError  # pragma: no cover - interface
