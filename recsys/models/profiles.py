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
from recsys.models.similarity import unit_rows

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

    Prediction, K sweep, fallbacks and the blockwise engines are those of `UserKNN` (shared
    machinery); only the user-user similarity differs: rows of the cosine matrix are computed per
    block of users (unit profiles times all unit profiles), never the whole matrix.
    """

    def __init__(
        self,
        features: ItemFeatures,
        k: int = 40,
        relevance: str | float = "user_mean",
        mean_centred: bool = True,
        positive_only: bool = True,
        neighbours: str = "exact",
        n_candidates: int = 200,
        exact_raters: int = 0,
        engine: str = "auto",
        device: str | None = None,
        block_users: int | None = None,
    ):
        super().__init__(
            k=k,
            mean_centred=mean_centred,
            positive_only=positive_only,
            neighbours=neighbours,
            n_candidates=n_candidates,
            exact_raters=exact_raters,
            engine=engine,
            device=device,
            block_users=block_users,
        )
        self.features = features
        self.relevance = relevance
        self._validate_params()

    def _validate_params(self) -> None:
        super()._validate_params()
        check_relevance(self.relevance)
        check_features(self.features, "features")

    def _fit_similarity(self, train: pd.DataFrame) -> None:
        user_ids, profiles = user_profiles(train, self.features, self.relevance)
        if not np.array_equal(user_ids, self.ratings_.user_ids):  # pragma: no cover - same sort rule
            raise AssertionError("profile users do not line up with the rating matrix")
        self.profiles_ = profiles
        self.users_without_profile_ = user_ids[~profiles.any(axis=1)]
        self._unit_profiles = unit_rows(profiles)  # float64, zero rows stay zero

    def _similarity_rows(self, rows, out=None):
        return cosine_rows(self._unit_profiles, rows, out)

    def _torch_context(self, device):
        import torch

        return torch.as_tensor(self._unit_profiles, device=device)

    def _similarity_columns_torch(self, context, rows):
        import torch

        block = context[torch.as_tensor(np.asarray(rows, dtype=np.int64), device=context.device)]
        return torch.clamp(context @ block.T, -1.0, 1.0) + 0.0

    def _similarity_block(self, rows, columns):
        return np.clip(self._unit_profiles[rows] @ self._unit_profiles[columns].T, -1.0, 1.0)

    def _pair_similarity(self, left, right):
        products = np.einsum("ij,ij->i", self._unit_profiles[left], self._unit_profiles[right])
        return np.clip(products, -1.0, 1.0)

    def _candidate_vectors(self):
        return self._unit_profiles.astype(np.float32)


def cosine_rows(unit: np.ndarray, rows, out=None) -> np.ndarray:
    """Rows `rows` of the cosine matrix of unit row vectors, clipped to [-1, 1] (as
    `cosine_similarity_matrix`), computed as one BLAS product per block."""
    rows = np.asarray(rows, dtype=np.int64)
    if out is None:
        out = np.empty((len(rows), len(unit)))
    out = out[: len(rows)]
    np.matmul(unit[rows], unit.T, out=out)
    np.clip(out, -1.0, 1.0, out=out)
    return out
