"""Ben Hassen's multimedia user profiles (MUP) and the profile-based user KNN.

MUP(u) = Σ_{i relevant to u} r_ui · MIP(i), where MIP(i) is any item feature vector (poster or
trailer CNN features, genre one-hot, reduced features).

Relevance rule (documented choice, the paper leaves the threshold open): an item is relevant to a
user when the user rated it at or above *their own* mean training rating (`relevance="user_mean"`),
the mean being taken over all of the user's training ratings. `relevance="all"` uses every rated
item, and a number (e.g. 4.0) uses a fixed rating threshold. Items without features are skipped;
a user with no relevant featured item gets an all-zero profile, which the cosine similarity turns
into "no neighbours" (the model then falls back to the user's mean rating, flagged).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import InvalidParameter
from recsys.features.item_features import ItemFeatures
from recsys.models.base import check_features, check_item_features, check_ratings_frame
from recsys.models.knn import NeighbourhoodPredictor
from recsys.models.similarity import cosine_similarity_matrix

RELEVANCE_RULES = ("user_mean", "all")


def check_relevance(relevance) -> str | float:
    """'user_mean', 'all' or a finite rating threshold; anything else is refused with the choices."""
    if isinstance(relevance, str) and relevance in RELEVANCE_RULES:
        return relevance
    if isinstance(relevance, numbers.Real) and not isinstance(relevance, bool) and np.isfinite(relevance):
        return relevance
    raise InvalidParameter(f"unknown relevance rule {relevance!r}: use 'user_mean', 'all' or a rating threshold")


def relevant_mask(train: pd.DataFrame, relevance: str | float = "user_mean") -> np.ndarray:
    """Boolean per training row: is this rating relevant to its user under the rule above?"""
    relevance = check_relevance(relevance)
    ratings = train["rating"].to_numpy(dtype=np.float64)
    if relevance == "user_mean":
        user_mean = train.groupby("user_id")["rating"].transform("mean").to_numpy(dtype=np.float64)
        return ratings >= user_mean
    if relevance == "all":
        return np.ones(len(train), dtype=bool)
    return ratings >= float(relevance)


def user_profiles(
    train: pd.DataFrame, features: ItemFeatures, relevance: str | float = "user_mean"
) -> tuple[np.ndarray, np.ndarray]:
    """(user_ids sorted ascending, float32 profile matrix of shape (n_users, features.dim)).

    Every user in `train` gets a row, in the order of `user_ids`; see the module docstring for
    which items count as relevant. Items absent from `features` contribute nothing; features with
    NaN values or covering no rated item raise InvalidInput (they would give NaN or all-zero profiles).
    """
    check_ratings_frame(train)
    check_item_features(features, train, "user profiles")
    user_ids = np.sort(train["user_id"].unique()).astype(np.int64)
    keep = relevant_mask(train, relevance)
    feature_rows = pd.Index(features.item_ids).get_indexer(train["item_id"].to_numpy())
    keep &= feature_rows >= 0
    rows = pd.Index(user_ids).get_indexer(train["user_id"].to_numpy()[keep])
    weights = sp.csr_matrix(
        (train["rating"].to_numpy(dtype=np.float64)[keep], (rows, feature_rows[keep])),
        shape=(len(user_ids), len(features.item_ids)),
    )
    profiles = weights @ features.matrix.astype(np.float64)
    return user_ids, np.asarray(profiles, dtype=np.float32)


class ProfileKNN(NeighbourhoodPredictor):
    """User KNN whose neighbours come from the cosine between MUP profiles (Ben Hassen).

    Prediction, K sweep and fallbacks are those of `UserKNN` (shared machinery); only the
    user-user similarity differs.
    """

    def __init__(
        self,
        features: ItemFeatures,
        k: int = 40,
        relevance: str | float = "user_mean",
        mean_centred: bool = True,
        positive_only: bool = True,
    ):
        super().__init__(k=k, mean_centred=mean_centred, positive_only=positive_only)
        self.features = features
        self.relevance = relevance
        self._validate_params()

    def _validate_params(self) -> None:
        super()._validate_params()
        check_relevance(self.relevance)
        check_features(self.features, "features")

    def _user_similarity(self, train: pd.DataFrame) -> np.ndarray:
        user_ids, profiles = user_profiles(train, self.features, self.relevance)
        if not np.array_equal(user_ids, self.ratings_.user_ids):  # pragma: no cover - same sort rule
            raise AssertionError("profile users do not line up with the rating matrix")
        self.profiles_ = profiles
        self.users_without_profile_ = user_ids[~profiles.any(axis=1)]
        return cosine_similarity_matrix(profiles)
