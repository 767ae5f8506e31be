"""Rendle's second-order factorization machine on the libFM input layout (torch + numba).

One-hot user, one-hot item, item side features (genres, reduced poster/trailer features), optional
user side features, and optionally implicit feedback ("SVD++ flipped", Rendle et al. 2019): the items
the user rated and the users who rated the item, each row normalised by 1/sqrt(count). Items unseen
in training keep their side features, so the FM still scores them from ``w0 + user terms + feature
weights + factor interactions``: the point of cold start. Fitted by Gibbs sampling with libFM's
hierarchical priors (the default) or by ALS in ``recsys.models._fm_sampler._FMState``.

We implement it rather than wrap libFM or myFM: libFM is a C++ binary we could not ship, myFM has no
GPU path and no cold-start rules; the id blocks run in torch (on the GPU when there is one) and
the coordinate-wise side-feature draws in numba. ``bench/fm_vs_myfm.py`` compares it with myFM,
``bench/mf_vs_surprise.py`` with Surprise's SVD/SVD++.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.errors import InvalidParameter
from recsys.features.baselines import genre_features  # noqa: F401 - the one genre_features, re-exported
from recsys.features.item_features import ItemFeatures
from recsys.models._fm_predict import UNSEEN_RULES, _fm_formula, _squared, stand_in_parameters, stand_in_rows
from recsys.models._fm_sampler import _FMState
from recsys.models._solvers import _start_fit, _torch_threads, default_burn_in
from recsys.models.base import (
    RatingPredictor,
    check_choice,
    check_count,
    check_is_fitted,
    check_positive,
)
from recsys.progress import Progress
from recsys.progress import no_progress as _no_progress

IMPLICIT_CHOICES = ("none", "user", "item", "both")
SOLVERS = ("mcmc", "als")


def _scaled_block(
    features: ItemFeatures | pd.DataFrame, name: str, max_dims: int | None = None, train_item_ids=None
) -> ItemFeatures:
    """Side features as float rows, PCA-reduced if wider than `max_dims`; sets (0/1 rows) divided by
    their row count, other blocks by the mean row norm.

    The reduction is fitted on the training items only (recsys.features.reduce.PCAReducer): every
    side dimension costs one coordinate per factor and sweep, so raw 1280-dim CNN vectors would make
    each sweep much slower for little gain. Each block is its own prior group (its precision is
    learnt), so the global scale hardly matters; the division keeps the first sweeps well scaled.
    """
    if isinstance(features, pd.DataFrame):
        features = ItemFeatures.from_frame(features.astype(np.float32), name=name)
    if not isinstance(features, ItemFeatures):
        raise InvalidParameter(
            f"side feature block {name!r} must be ItemFeatures or a DataFrame, got {type(features).__name__}"
        )
    if max_dims is not None and features.dim > max_dims:
        from recsys.features.reduce import PCAReducer

        fitted_on = features.subset(train_item_ids) if train_item_ids is not None else features
        n_components = min(int(max_dims), len(fitted_on), features.dim)
        features = PCAReducer(n_components=n_components).fit(features, train_item_ids).transform(features)
    matrix = np.nan_to_num(np.asarray(features.matrix, dtype=np.float64))
    if np.isin(matrix, (0.0, 1.0)).all():
        # a set (multi-hot genres): each row sums to 1, as Rendle's FM paper normalises set-valued
        # inputs (and myFM's examples do): RMSE 0.8896 vs 0.8909 on the seed-1 ML-100K split
        counts = matrix.sum(axis=1, keepdims=True)
        return ItemFeatures(
            features.item_ids, matrix / np.maximum(counts, 1.0), name=f"{name}", meta=dict(features.meta)
        )
    norms = np.linalg.norm(matrix, axis=1)
    scale = norms[norms > 0].mean() if (norms > 0).any() else 1.0
    return ItemFeatures(features.item_ids, matrix / scale, name=f"{name}", meta=dict(features.meta))


def _side_blocks(side, max_dims: int | None = None, train_item_ids=None) -> list[ItemFeatures]:
    if side is None:
        return []
    if isinstance(side, (ItemFeatures, pd.DataFrame)):
        side = {getattr(side, "name", "features"): side}
    if not isinstance(side, dict):
        raise InvalidParameter(
            "side_features must be ItemFeatures, a DataFrame indexed by item_id, a dict of them, or None"
        )
    return [_scaled_block(block, str(name), max_dims, train_item_ids) for name, block in side.items()]


def user_side_matrix(users: pd.DataFrame) -> ItemFeatures:
    """One-hot categorical and standardised numeric user columns, rows keyed by user_id.

    Returned as ItemFeatures (the class is a plain id -> vector table) so users and items share code.
    """
    if users is None or users.empty:
        raise InvalidParameter("user_side: empty user table")
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
        raise InvalidParameter("user_side: no usable columns")
    frame = pd.concat(parts, axis=1).astype(np.float32)
    return ItemFeatures(
        users.index.to_numpy(), frame.to_numpy(), name="user side", meta={"columns": list(frame.columns)}
    )


def implicit_rows(matrix, side: str) -> sp.csr_matrix:
    """Implicit feedback rows from the training rating matrix (users x items): for side "user" the
    items each user rated, for "item" the users who rated each item, each row scaled by
    1/sqrt(its count) (SVD++'s normalisation, Koren 2008; Rendle et al. 2019)."""
    pattern = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    pattern.data[:] = 1.0
    rows = pattern if side == "user" else pattern.T.tocsr()
    counts = np.diff(rows.indptr).astype(np.float64)
    return sp.diags(1.0 / np.sqrt(np.maximum(counts, 1.0))) @ rows


class FactorizationMachine(RatingPredictor):
    """Second-order factorization machine (Rendle 2010) on libFM's layout for ratings.

    Input row for (u, i): one-hot user, one-hot item, the item's side features (sets such as genres
    row-normalised to sum 1, other blocks scaled to mean row norm 1), optionally the user's side
    features, and the implicit-feedback blocks. Model:

        ŷ(x) = w0 + Σ_j w_j x_j + ½ Σ_f [(Σ_j v_jf x_j)² − Σ_j v_jf² x_j²]

    ``solver="mcmc"`` (default): Gibbs sampling of libFM's Bayesian FM (Rendle 2012): Gaussian
    priors whose means and precisions are drawn per parameter group (user ids, item ids, each side
    block; libFM's ``-meta`` grouping) from Normal-Gamma hyper-priors, the noise precision from a
    Gamma; ``predict`` averages the predictions of the samples drawn after ``burn_in`` sweeps
    (None: 10, at most half of ``n_epochs``), the item id block at its conditional mean
    (Rao-Blackwellised). ``solver="als"``: the same sweeps taking each conditional's
    mode with prior precision ``reg`` around 0. See ``_FMState`` for the blocked updates.

    side_features: ItemFeatures, a DataFrame indexed by item_id (e.g. ``dataset.genres``) or a dict of
    them; blocks wider than ``max_side_dims`` are PCA-reduced to it, fitted on the training items
    (``None`` keeps them as they are). user_side: a DataFrame indexed by user_id (e.g.
    ``dataset.users``): categorical columns one-hot, numeric standardised. implicit: ``"user"`` adds
    the items the user rated (SVD++), ``"item"`` the users who rated the item, ``"both"`` both
    ("SVD++ flipped"), computed from the training ratings; each distinct row is handled once per
    user/item, not once per rating (the relation-block trick), so they cost seconds.

    Unseen users/items: their one-hot column never occurred in training. ``unseen="zero"`` is the
    textbook FM: that column's weight and factors are 0, which under-predicts new items by ~0.3
    stars on ML-100K, because ratings fall on popular (better-liked) items more often.
    ``unseen="prior"`` gives the column its group's prior mean (the posterior of a parameter no
    rating touched): right for the typical, rarely rated item, e.g. the few unseen test items of a
    random 80/20 split (RMSE 0.8927 vs 0.8930), wrong where new items' ratings are weighted by
    popularity (ML-100K cold-item split: 1.085 vs 1.022). ``unseen="average"`` gives the
    rating-weighted mean id weight and factors ("an average rated item"); ``unseen="user_average"``
    (default) the mean over the items this user rated in training (for an unseen user: over the
    users who rated this item), which also carries the user's own taste in items, as the
    user-mean baseline does; with implicit blocks it averages each item's id and implicit parts
    (its effect as the model sees it; the cold item itself has no raters yet). Either way every
    other present feature is used: an item unseen in training but present in ``side_features`` is scored from
    its features (cold start) and is not a fallback; ``predict(..., return_fallback=True)`` flags
    only pairs whose unseen user or item has no side features at all.

    Defaults (k=20, 100 sweeps, implicit="both") are the measured best on ML-100K's 80/20 splits
    (seeds 0-1, ids + genres): RMSE 0.8769, vs 0.8767 at 200 sweeps, 0.8771 at k=32, 0.8796 at k=10
    and 0.8887 without the implicit blocks (bench/fm_vs_myfm.py compares with myFM).

    Fitted attributes: ``samples_`` (parameters per kept sample: ~0.9 MB each on ML-100K at k=20
    with implicit blocks), ``hyper_`` (the last α and group
    priors), ``train_rmse_``, ``noise_precision_``, ``fit_seconds_``, ``device_``.
    """

    def __init__(
        self,
        n_factors: int = 20,
        side_features: dict[str, ItemFeatures] | ItemFeatures | None = None,
        user_side: pd.DataFrame | None = None,
        implicit: str = "both",
        n_epochs: int = 100,
        burn_in: int | None = None,
        reg: float = 1.0,
        solver: str = "mcmc",
        unseen: str = "user_average",
        max_side_dims: int | None = 64,
        init_std: float = 0.1,
        seed: int = 0,
        device=None,
        n_threads: int | None = None,
    ):
        self.n_factors = n_factors
        self.side_features = side_features
        self.user_side = user_side
        self.implicit = implicit
        self.n_epochs = n_epochs
        self.burn_in = burn_in
        self.reg = reg
        self.solver = solver
        self.unseen = unseen
        self.max_side_dims = max_side_dims
        self.init_std = init_std
        self.seed = seed
        self.device = device
        self.n_threads = n_threads
        self._validate_params()

    def _validate_params(self) -> None:
        check_count(self.n_factors, "n_factors")
        check_count(self.n_epochs, "n_epochs")
        check_count(self.burn_in, "burn_in", minimum=0, allow_none=True)
        check_positive(self.reg, "reg", allow_zero=True)
        check_choice(self.solver, "solver", SOLVERS)
        check_choice(self.unseen, "unseen", UNSEEN_RULES)
        check_choice(self.implicit, "implicit", IMPLICIT_CHOICES)
        check_count(self.max_side_dims, "max_side_dims", allow_none=True)
        check_positive(self.init_std, "init_std", allow_zero=True)
        check_count(self.seed, "seed", minimum=0)
        if self.solver == "mcmc" and self.burn_in is not None and self.burn_in >= self.n_epochs:
            raise InvalidParameter(f"burn_in ({self.burn_in}) must be smaller than n_epochs ({self.n_epochs})")

    def _implicit_sides(self) -> tuple[str, ...]:
        return {"none": (), "user": ("user",), "item": ("item",), "both": ("user", "item")}[self.implicit]

    # ---- fitting -------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, progress: Progress | None = None) -> FactorizationMachine:
        started = time.perf_counter()
        device, dtype = _start_fit(self, train)
        progress = progress or _no_progress
        blocks = _side_blocks(self.side_features, self.max_side_dims, train["item_id"].unique())
        self.item_side_ = _concat_blocks(blocks)
        self.item_side_names_ = [block.name for block in blocks]
        self.user_side_ = user_side_matrix(self.user_side) if self.user_side is not None else None
        self.implicit_ = {side: implicit_rows(self.ratings_.matrix, side) for side in self._implicit_sides()}

        item_ids, user_ids = self.ratings_.item_ids, self.ratings_.user_ids
        item_blocks = [(block.name, block.aligned(item_ids)[0], "dense") for block in blocks]
        user_blocks = []
        if self.user_side_ is not None:
            user_blocks.append(("side", self.user_side_.aligned(user_ids)[0], "dense"))
        if "item" in self.implicit_:
            item_blocks.append(("raters (implicit)", self.implicit_["item"], "relation"))
        if "user" in self.implicit_:
            user_blocks.append(("rated items (implicit)", self.implicit_["user"], "relation"))

        state = _FMState(
            self.ratings_.user_codes(train["user_id"].to_numpy()),
            self.ratings_.item_codes(train["item_id"].to_numpy()),
            train["rating"].to_numpy(dtype=np.float64),
            self.ratings_.shape,
            item_blocks,
            user_blocks,
            int(self.n_factors),
            float(self.init_std),
            int(self.seed),
            device,
            dtype,
        )
        sampling = self.solver == "mcmc"
        samples = []
        residual_sum = None
        n_epochs = int(self.n_epochs)
        burn_in = default_burn_in(self.burn_in, n_epochs)
        with _torch_threads(device, len(train), self.n_threads):
            for sweep in range(n_epochs):
                state.sweep(sampling=sampling, reg=float(self.reg))
                if sampling and sweep >= burn_in:
                    samples.append(state.parameters(rao_blackwell=True))
                    residual = state.last_residual
                    residual_sum = residual.clone() if residual_sum is None else residual_sum + residual
                progress(sweep + 1, n_epochs, f"FM {self.solver} sweep {sweep + 1}/{n_epochs}")
        self.samples_ = samples if sampling else [state.parameters()]
        self.group_names_ = list(state.group_names)
        self.hyper_ = state.hyper_parameters()
        self.noise_precision_ = state.alpha
        # RMSE of the sample-averaged (unclipped) prediction on the training ratings
        final_residual = residual_sum / len(samples) if sampling else state.last_residual
        self.train_rmse_ = float(final_residual.pow(2).mean().sqrt())
        del state  # its side designs copy the implicit rows: free them before the squares (peak memory at 25 M)
        self.implicit_squares_ = {side: rows.multiply(rows).tocsr() for side, rows in self.implicit_.items()}
        self.fit_seconds_ = time.perf_counter() - started
        return self

    # ---- prediction --------------------------------------------------------------------------
    def _side_rows(self, side: str, ids: np.ndarray, codes: np.ndarray):
        """(side-feature rows of distinct `ids` as CSR, mask of ids with dense side features)."""
        table = self.item_side_ if side == "item" else self.user_side_
        parts = []
        if table is not None:
            rows, present = table.aligned(ids)
            parts.append(sp.csr_matrix(np.asarray(rows, dtype=np.float64)))
        else:
            present = np.zeros(len(ids), dtype=bool)
        if side in self.implicit_:
            known = codes >= 0
            rows = self.implicit_[side][np.where(known, codes, 0)]
            parts.append(sp.diags(known.astype(np.float64)) @ rows)
        if not parts:
            return sp.csr_matrix((len(ids), 0)), present
        return sp.hstack(parts, format="csr"), present

    def _inputs(self, user_ids, item_ids):
        user_ids = np.asarray(user_ids, dtype=np.int64).ravel()
        item_ids = np.asarray(item_ids, dtype=np.int64).ravel()
        users, first_u, user_rows = np.unique(user_ids, return_index=True, return_inverse=True)
        items, first_i, item_rows = np.unique(item_ids, return_index=True, return_inverse=True)
        user_codes = self.ratings_.user_codes(users)
        item_codes = self.ratings_.item_codes(items)
        user_x, user_has = self._side_rows("user", users, user_codes)
        item_x, item_has = self._side_rows("item", items, item_codes)
        return user_codes, item_codes, user_x, item_x, user_has, item_has, user_rows.ravel(), item_rows.ravel()

    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        user_codes, item_codes, user_x, item_x, user_has, item_has, user_rows, item_rows = self._inputs(
            user_ids, item_ids
        )
        stand_ins = ((user_codes < 0).any() or (item_codes < 0).any()) and self.unseen in ("user_average", "average")
        rows_by_side = stand_in_rows(self.ratings_.matrix) if stand_ins else None
        squares = {"item_x_squared": _squared(item_x), "user_x_squared": _squared(user_x)}
        total = np.zeros(len(user_rows))
        for params in self.samples_:
            if stand_ins:
                params = stand_in_parameters(params, None, self._id_parts(params), rows_by_side)
            total += _fm_formula(
                params, user_codes, item_codes, item_x, user_x, self.unseen, user_rows, item_rows, **squares
            )
        # a pair is a fallback only where an unseen user or item has no side features to be scored from
        no_user = (user_codes < 0) & ~user_has
        no_item = (item_codes < 0) & ~item_has
        return total / len(self.samples_), no_user[user_rows] | no_item[item_rows]

    def _id_parts(self, p: dict) -> dict:
        """Per training user / item: (bias, factor sum) of its id and its implicit-feedback row
        together (what an unseen entity lacks, and what its average-entity stand-in averages)."""
        parts = {}
        for side in ("user", "item"):
            w, v = p[f"w_{side}"], p[f"v_{side}"]
            if side in self.implicit_:
                rows = self.implicit_[side]
                dense = self.item_side_ if side == "item" else self.user_side_
                start = dense.dim if dense is not None else 0  # the implicit columns come last
                ws, vs = p[f"w_{side}_side"][start:], p[f"v_{side}_side"][start:]
                g = np.asarray(rows @ vs)
                squares = np.asarray(self.implicit_squares_[side] @ (vs**2).sum(1)).ravel()
                w = w + np.asarray(rows @ ws).ravel() + (v * g).sum(1) + 0.5 * ((g**2).sum(1) - squares)
                v = v + g
            parts[side] = (w, v)
        return parts

    def predict_raw(self, user_ids, item_ids) -> np.ndarray:
        """Unclipped FM output averaged over the kept samples (see the class docstring for unseen ids)."""
        check_is_fitted(self, "samples_")
        return self._predict(*self._checked_pairs(user_ids, item_ids))[0]

    @staticmethod
    def _checked_pairs(user_ids, item_ids):
        from recsys.errors import InvalidInput

        user_ids = np.asarray(user_ids, dtype=np.int64).ravel()
        item_ids = np.asarray(item_ids, dtype=np.int64).ravel()
        if user_ids.shape != item_ids.shape:
            raise InvalidInput(f"user_ids and item_ids differ in length ({len(user_ids)} vs {len(item_ids)})")
        return user_ids, item_ids

    def explicit_design(self, user_ids, item_ids, sample: int = -1):
        """The literal FM input rows x and parameters (w0, w, V) of one sample, columns ordered
        [users | items | item side | user side | unseen user with item i | unseen item with user u |
        unseen user | unseen item] (the last four encode the ``unseen`` rule; item and user side
        include the implicit blocks): for checking the fast formula against the textbook sum."""
        check_is_fitted(self, "samples_")
        user_ids, item_ids = self._checked_pairs(user_ids, item_ids)
        user_codes, item_codes, user_x, item_x, _, _, user_rows, item_rows = self._inputs(user_ids, item_ids)
        user_codes, item_codes = user_codes[user_rows], item_codes[item_rows]
        item_x, user_x = item_x[item_rows].toarray(), user_x[user_rows].toarray()
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
        if self.unseen in ("average", "prior"):
            x[:, -2], x[:, -1] = unseen_u, unseen_i
        elif self.unseen == "user_average":
            with_item, with_user = unseen_u & ~unseen_i, unseen_i & ~unseen_u
            x[rows[with_item], start + item_codes[with_item]] = 1.0
            x[rows[with_user], start + n_items + user_codes[with_user]] = 1.0
            x[:, -2], x[:, -1] = unseen_u & unseen_i, unseen_u & unseen_i
        p = stand_in_parameters(self.samples_[sample], self.ratings_.matrix, self._id_parts(self.samples_[sample]))
        stand_in = "prior" if self.unseen == "prior" else "unseen"
        w = np.concatenate(
            [
                p["w_user"],
                p["w_item"],
                p["w_item_side"],
                p["w_user_side"],
                p["w_user_by_other"],
                p["w_item_by_other"],
                [p[f"w_user_{stand_in}"], p[f"w_item_{stand_in}"]],
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
                [p[f"v_user_{stand_in}"], p[f"v_item_{stand_in}"]],
            ]
        )
        return x, float(p["w0"]), w, v


def _concat_blocks(blocks: list[ItemFeatures]) -> ItemFeatures | None:
    if not blocks:
        return None
    ids = np.unique(np.concatenate([block.item_ids for block in blocks]))
    matrix = np.concatenate([block.aligned(ids)[0] for block in blocks], axis=1)
    return ItemFeatures(ids, matrix, name=" + ".join(block.name for block in blocks))
