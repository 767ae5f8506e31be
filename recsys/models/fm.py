"""Rendle's second-order factorization machine on the libFM input layout (torch).

One-hot user, one-hot item, item side features (genres, reduced poster/trailer features) and optional
user side features. Items unseen in training keep their side features, so the FM still scores them from
``w0 + user terms + feature weights + factor interactions``: the point of cold start. Fitted by
coordinate-wise ALS or Gibbs sampling (libFM's MCMC) in ``recsys.models._solvers._FMState``.

We implement it in torch rather than wrap libFM: libFM is a C++ binary we could not ship, and the
torch version runs on the GPU; ``bench/mf_vs_surprise.py`` compares it with Surprise's SVD/SVD++.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.features.baselines import genre_features  # noqa: F401 - the one genre_features, re-exported
from recsys.features.item_features import ItemFeatures
from recsys.models._solvers import (
    UNSEEN_RULES,
    _fm_formula,
    _FMState,
    _start_fit,
    _torch_threads,
)
from recsys.models.base import RatingPredictor
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress


def _scaled_block(
    features: ItemFeatures | pd.DataFrame, name: str, max_dims: int | None = None, train_item_ids=None
) -> ItemFeatures:
    """Side features as float rows, PCA-reduced if wider than `max_dims`, divided by the mean row norm.

    The reduction is fitted on the training items only (recsys.features.reduce.PCAReducer): the
    side-feature sweep costs one coordinate per dimension and factor, so raw 1280-dim CNN vectors
    would make every sweep ~25x slower for little gain. The scaling lets blocks of very different
    scale (multi-hot genres vs. PCA coordinates) share one prior without one dominating the sums.
    """
    if isinstance(features, pd.DataFrame):
        features = ItemFeatures.from_frame(features.astype(np.float32), name=name)
    if not isinstance(features, ItemFeatures):
        raise TypeError(
            f"side feature block {name!r} must be ItemFeatures or a DataFrame, got {type(features).__name__}"
        )
    if max_dims is not None and features.dim > max_dims:
        from recsys.features.reduce import PCAReducer

        fitted_on = features.subset(train_item_ids) if train_item_ids is not None else features
        n_components = min(int(max_dims), len(fitted_on), features.dim)
        features = PCAReducer(n_components=n_components).fit(features, train_item_ids).transform(features)
    matrix = np.nan_to_num(np.asarray(features.matrix, dtype=np.float64))
    norms = np.linalg.norm(matrix, axis=1)
    scale = norms[norms > 0].mean() if (norms > 0).any() else 1.0
    return ItemFeatures(features.item_ids, matrix / scale, name=f"{name}", meta=dict(features.meta))


def _side_blocks(side, max_dims: int | None = None, train_item_ids=None) -> list[ItemFeatures]:
    if side is None:
        return []
    if isinstance(side, (ItemFeatures, pd.DataFrame)):
        side = {getattr(side, "name", "features"): side}
    if not isinstance(side, dict):
        raise TypeError("side_features must be ItemFeatures, a DataFrame indexed by item_id, a dict of them, or None")
    return [_scaled_block(block, str(name), max_dims, train_item_ids) for name, block in side.items()]


def user_side_matrix(users: pd.DataFrame) -> ItemFeatures:
    """One-hot categorical and standardised numeric user columns, rows keyed by user_id.

    Returned as ItemFeatures (the class is a plain id -> vector table) so users and items share code.
    """
    if users is None or users.empty:
        raise ValueError("user_side: empty user table")
    parts = []
    for column in users.columns:
        values = users[column]
        if pd.api.types.is_numeric_dtype(values) and values.nunique(dropna=True) > 10:
            numeric = pd.to_numeric(values, errors="coerce").astype(float)
            filled = numeric.fillna(numeric.mean())
            spread = filled.std() or 1.0
            parts.append(((filled - filled.mean()) / spread).rename(column).to_frame())
        elif values.nunique(dropna=True) <= 64:
            parts.append(pd.get_dummies(values.astype("string"), prefix=column, dtype=np.float32))
        # free-text columns with many values (zip codes) carry no reusable signal: skipped.
    if not parts:
        raise ValueError("user_side: no usable columns")
    frame = pd.concat(parts, axis=1).astype(np.float32)
    return ItemFeatures(
        users.index.to_numpy(), frame.to_numpy(), name="user side", meta={"columns": list(frame.columns)}
    )


class FactorizationMachine(RatingPredictor):
    """Second-order factorization machine (Rendle 2010) on libFM's layout for ratings.

    Input row for (u, i): one-hot user, one-hot item, the item's side features (each block scaled to
    mean row norm 1) and optionally the user's side features. Model:

        ŷ(x) = w0 + Σ_j w_j x_j + ½ Σ_f [(Σ_j v_jf x_j)² − Σ_j v_jf² x_j²]

    Fitted like libFM's MCMC, with blocked updates where they are exact (see ``_FMState``):
      ``solver="mcmc"`` (default) Gibbs sampling with Gamma hyper-priors on the noise precision and on
      each group's weight/factor precisions; predictions average all samples after ``burn_in``.
      ``solver="als"`` the same sweeps taking the conditional mode, L2 strength ``reg`` per parameter.
    One sweep: w0; (w_u, v_u) of all users as one batched Gaussian block each, then items; the side
    features' linear weights jointly with the id weights integrated out (collapsed, so genre/poster
    weights are learnt although item ids could explain the same offsets); the side features' factors
    coordinate by coordinate on per-item sums. ~0.2-0.7 s per sweep on ML-100K with 51 side features.

    side_features: ItemFeatures, a DataFrame indexed by item_id (e.g. ``dataset.genres``) or a dict of
    them; blocks wider than ``max_side_dims`` are PCA-reduced to it, fitted on the training items
    (``None`` keeps them as they are). user_side: a DataFrame
    indexed by user_id (e.g. ``dataset.users``): categorical columns one-hot, numeric standardised.
    reg: the L2 strength of ``solver="als"``; MCMC learns the precisions from the data.

    Unseen users/items: their one-hot column never occurred in training. ``unseen="zero"`` is the
    textbook FM: that column's weight and factors are the prior mean 0, which under-predicts new
    items by ~0.3 stars on ML-100K, because ratings fall on popular (better-liked) items more often.
    ``unseen="average"`` gives the column the rating-weighted mean id weight and factors ("an average
    rated item"); ``unseen="user_average"`` (default) the mean over the items this user rated in
    training (for an unseen user: over the users who rated this item), which also carries the
    user's own taste in items, as the user-mean baseline does. Either way every other present
    feature is used: an item unseen in training but present in ``side_features`` is scored from
    ``w0 + user terms + its feature weights + user x feature interactions`` (cold start). Pairs
    missing any id are flagged in ``last_fallback_``.
    """

    def __init__(
        self,
        n_factors: int = 10,
        side_features: dict[str, ItemFeatures] | ItemFeatures | None = None,
        user_side: pd.DataFrame | None = None,
        n_epochs: int = 60,
        burn_in: int = 10,
        reg: float = 1.0,
        solver: str = "mcmc",
        unseen: str = "user_average",
        max_side_dims: int | None = 64,
        init_std: float = 0.1,
        seed: int = 0,
        device=None,
        n_threads: int | None = None,
    ):
        self.unseen = unseen
        self.max_side_dims = max_side_dims
        self.n_factors = n_factors
        self.side_features = side_features
        self.user_side = user_side
        self.n_epochs = n_epochs
        self.burn_in = burn_in
        self.reg = reg
        self.solver = solver
        self.init_std = init_std
        self.seed = seed
        self.device = device
        self.n_threads = n_threads

    def _check_params(self) -> None:
        if self.solver not in ("mcmc", "als"):
            raise ValueError(f"FactorizationMachine: unknown solver {self.solver!r}; choose 'mcmc' or 'als'")
        if self.unseen not in UNSEEN_RULES:
            raise ValueError(f"FactorizationMachine: unseen must be one of {UNSEEN_RULES}, got {self.unseen!r}")
        if int(self.n_factors) < 1 or int(self.n_epochs) < 1 or self.reg < 0:
            raise ValueError("FactorizationMachine: n_factors, n_epochs must be >= 1 and reg >= 0")
        if self.solver == "mcmc" and self.burn_in >= self.n_epochs:
            raise ValueError(f"FactorizationMachine: burn_in ({self.burn_in}) must be < n_epochs ({self.n_epochs})")

    # ---- parameter layout ------------------------------------------------------------------
    def _feature_rows(self, table: ItemFeatures | None, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the feature table for `ids`, zeros where absent; mask of ids that have features)."""
        if table is None:
            return np.zeros((len(ids), 0)), np.zeros(len(ids), dtype=bool)
        rows, present = table.aligned(ids)
        return rows.astype(np.float64), present

    def fit(self, train: pd.DataFrame, progress: Progress | None = None) -> FactorizationMachine:

        device, dtype = _start_fit(self, train)
        progress = progress or _no_progress
        blocks = _side_blocks(self.side_features, self.max_side_dims, train["item_id"].unique())
        self.item_side_ = _concat_blocks(blocks)
        self.item_side_names_ = [block.name for block in blocks]
        self.user_side_ = user_side_matrix(self.user_side) if self.user_side is not None else None

        users = self.ratings_.user_codes(train["user_id"].to_numpy())
        items = self.ratings_.item_codes(train["item_id"].to_numpy())
        item_x, _ = self._feature_rows(self.item_side_, self.ratings_.item_ids)
        user_x, _ = self._feature_rows(self.user_side_, self.ratings_.user_ids)
        state = _FMState(
            users,
            items,
            train["rating"].to_numpy(dtype=np.float64),
            self.ratings_.shape,
            item_x,
            user_x,
            int(self.n_factors),
            float(self.init_std),
            int(self.seed),
            device,
            dtype,
        )
        sampling = self.solver == "mcmc"
        samples = []
        mean_residual = residual_sum = None
        with _torch_threads(device, len(train), self.n_threads):
            for sweep in range(int(self.n_epochs)):
                state.sweep(sampling=sampling, reg=float(self.reg))
                if sampling and sweep >= self.burn_in:
                    samples.append(state.parameters())
                    residual_sum = (
                        state.last_residual.clone() if mean_residual is None else residual_sum + state.last_residual
                    )
                    mean_residual = residual_sum / len(samples)
                progress(sweep + 1, int(self.n_epochs), f"FM {self.solver} sweep {sweep + 1}/{self.n_epochs}")
        self.samples_ = samples if sampling else [state.parameters()]
        self.noise_precision_ = state.alpha
        # RMSE of the sample-averaged (unclipped) prediction on the training ratings
        final_residual = mean_residual if sampling else state.last_residual
        self.train_rmse_ = float(final_residual.pow(2).mean().sqrt())
        return self

    # ---- prediction --------------------------------------------------------------------------
    def _inputs(self, user_ids, item_ids):
        if not hasattr(self, "ratings_"):
            raise RuntimeError("FactorizationMachine: call fit() before predict()")
        user_ids, item_ids = np.asarray(user_ids, dtype=np.int64), np.asarray(item_ids, dtype=np.int64)
        if user_ids.shape != item_ids.shape:
            raise ValueError(f"user_ids {user_ids.shape} and item_ids {item_ids.shape} differ in shape")
        user_codes = self.ratings_.user_codes(user_ids)
        item_codes = self.ratings_.item_codes(item_ids)
        item_x, item_has = self._feature_rows(self.item_side_, item_ids)
        user_x, user_has = self._feature_rows(self.user_side_, user_ids)
        return user_codes, item_codes, item_x, user_x, item_has, user_has

    def predict_raw(self, user_ids, item_ids) -> np.ndarray:
        """Unclipped FM output averaged over the kept samples (see the class docstring for unseen ids)."""
        user_codes, item_codes, _, _, item_has, _ = self._inputs(user_ids, item_ids)
        self.last_fallback_ = (user_codes < 0) | (item_codes < 0)
        # Cold items are scored from their side features when they have some.
        self.cold_scored_ = (item_codes < 0) & item_has
        # each distinct user and item once, then gather per pair
        users, first_u, user_rows = np.unique(
            np.asarray(user_ids, dtype=np.int64), return_index=True, return_inverse=True
        )
        items, first_i, item_rows = np.unique(
            np.asarray(item_ids, dtype=np.int64), return_index=True, return_inverse=True
        )
        item_x, _ = self._feature_rows(self.item_side_, items)
        user_x, _ = self._feature_rows(self.user_side_, users)
        total = np.zeros(len(user_codes))
        for params in self.samples_:
            total += _fm_formula(
                params,
                user_codes[first_u],
                item_codes[first_i],
                item_x,
                user_x,
                self.unseen,
                user_rows.ravel(),
                item_rows.ravel(),
            )
        return total / len(self.samples_)

    def predict(self, user_ids, item_ids) -> np.ndarray:
        return self.clip(self.predict_raw(user_ids, item_ids))

    def explicit_design(self, user_ids, item_ids, sample: int = -1):
        """The literal FM input rows x and parameters (w0, w, V) of one sample, columns ordered
        [users | items | item side | user side | unseen user with item i | unseen item with user u |
        unseen user | unseen item] (the last four encode the ``unseen`` rule): for checking the fast
        formula against the textbook sum."""
        user_codes, item_codes, item_x, user_x, _, _ = self._inputs(user_ids, item_ids)
        n_users, n_items = self.ratings_.shape
        n = len(user_codes)
        n_side = item_x.shape[1] + user_x.shape[1]
        # extra columns: "unseen user seen with item i" (n_items), "unseen item seen with user u"
        # (n_users), then "unseen user" and "unseen item" without a known partner
        start = n_users + n_items + n_side
        x = np.zeros((n, start + n_items + n_users + 2))
        rows = np.arange(n)
        x[rows[user_codes >= 0], user_codes[user_codes >= 0]] = 1.0
        x[rows[item_codes >= 0], n_users + item_codes[item_codes >= 0]] = 1.0
        x[:, n_users + n_items : n_users + n_items + item_x.shape[1]] = item_x
        x[:, n_users + n_items + item_x.shape[1] : start] = user_x
        unseen_u, unseen_i = user_codes < 0, item_codes < 0
        if self.unseen == "average":
            x[:, -2], x[:, -1] = unseen_u, unseen_i
        elif self.unseen == "user_average":
            with_item, with_user = unseen_u & ~unseen_i, unseen_i & ~unseen_u
            x[rows[with_item], start + item_codes[with_item]] = 1.0
            x[rows[with_user], start + n_items + user_codes[with_user]] = 1.0
            x[:, -2], x[:, -1] = unseen_u & unseen_i, unseen_u & unseen_i
        p = self.samples_[sample]
        w = np.concatenate(
            [
                p["w_user"],
                p["w_item"],
                p["w_item_side"],
                p["w_user_side"],
                p["w_user_by_other"],
                p["w_item_by_other"],
                [p["w_user_unseen"], p["w_item_unseen"]],
            ]
        )
        v = np.concatenate(
            [
                p["v_user"],
                p["v_item"],
                p["v_item_side"],
                p["v_user_side"],
                p["v_user_by_other"],
                p["v_item_by_other"],
                [p["v_user_unseen"], p["v_item_unseen"]],
            ]
        )
        return x, float(p["w0"]), w, v


def _concat_blocks(blocks: list[ItemFeatures]) -> ItemFeatures | None:
    if not blocks:
        return None
    ids = np.unique(np.concatenate([block.item_ids for block in blocks]))
    matrix = np.concatenate([block.aligned(ids)[0] for block in blocks], axis=1)
    return ItemFeatures(ids, matrix, name=" + ".join(block.name for block in blocks))
