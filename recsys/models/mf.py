"""Latent-factor rating predictors in torch: biased matrix factorisation and a factorization machine.

* :class:`BiasedMF` - ``r̂_ui = μ + b_u + b_i + p_u·q_i`` fitted by alternating least squares
  (default, closed form, a few seconds on ML-100K), by Bayesian Gibbs sampling (``solver="mcmc"``,
  BPMF/libFM-style, averages the predictions of the samples) or by full-batch Adam.
* :class:`FactorizationMachine` - Rendle's second-order FM on the libFM input layout: one-hot user,
  one-hot item, item side features (genres, reduced poster/trailer features) and optional user side
  features. Items unseen in training keep their side features, so the FM still scores them from
  ``w0 + user terms + feature weights + factor interactions``: the point of cold start.
* :func:`cold_start_report` - the FM with side features on held-out items next to the user-mean
  baseline.

Both models run on ``recsys.config.torch_device()`` unless told otherwise and report it in
``device_``. Everything random draws from a seeded ``torch.Generator`` on the CPU (Gamma draws of
the hyper-parameters from a seeded numpy Generator), and the sparse sums are CSR products (no float
atomics), so the same seed gives identical predictions (asserted on CPU in the tests).

We implement these in torch rather than wrap Surprise/libFM: Surprise's SVD has no side features and
no GPU, and libFM is a C++ binary we could not ship; ``bench/mf_vs_surprise.py`` compares against
Surprise on one split.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from recsys.features.item_features import ItemFeatures
from recsys.models.base import RatingMatrix, RatingPredictor, check_training_ratings
from recsys.progress import Progress, no_progress as _no_progress


SOLVERS = ("als", "mcmc", "adam")


def _resolve_device(device):
    import torch

    from recsys.config import torch_device

    device = torch.device(device) if device is not None else torch_device()
    # The sweeps rest on sparse CSR products, which MPS lacks; the CPU path is the fallback there.
    return torch.device("cpu") if device.type == "mps" else device


SMALL_PROBLEM_RATINGS = 1_000_000


class _torch_threads:
    """Run a CPU fit on one torch thread when the problem is small, then restore the setting.

    The sweeps are many small tensor ops; waking a second thread costs more than it saves (a tiny
    fit took 19 s instead of 0.8 s with 2 threads on a busy 2-core machine).
    """

    def __init__(self, device, n_ratings: int, n_threads: int | None):
        import torch

        self.torch = torch
        if n_threads is None:
            n_threads = 1 if (device.type == "cpu" and n_ratings < SMALL_PROBLEM_RATINGS) else None
        self.wanted = n_threads

    def __enter__(self):
        self.previous = self.torch.get_num_threads()
        if self.wanted:
            self.torch.set_num_threads(int(self.wanted))
        return self

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.previous)
        return False


def _float_dtype(device):
    import torch

    # float64 keeps the batched Cholesky solves exact on CPU; MPS has no float64 and float32 is the
    # fast path on CUDA (the systems are well conditioned thanks to the ridge term).
    return torch.float64 if device.type == "cpu" else torch.float32


def _csr(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, device, dtype):
    """Binary CSR pattern (rows sorted) + the permutation that orders ratings by row."""
    import torch

    order = np.lexsort((cols, rows))
    crow = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=crow[1:])
    return (
        torch.as_tensor(crow, device=device),
        torch.as_tensor(cols[order], dtype=torch.int64, device=device),
        torch.as_tensor(order, dtype=torch.int64, device=device),
        (n_rows, n_cols),
    )


def _row_sums(pattern, values, dense):
    """Σ_{c in row} values[r, c] · dense[c] for every row, as one CSR x dense product."""
    import torch

    crow, col, order, shape = pattern
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        matrix = torch.sparse_csr_tensor(crow, col, values[order], size=shape, check_invariants=False)
    return matrix @ dense


def _ridge_rows(pattern, targets, other, ridge, *, alpha=1.0, generator=None):
    """Solve (or sample) one ridge regression per row: the ALS / Gibbs block update.

    For row r with ratings on columns c: A_r = α Σ_c x_c x_cᵀ + diag(ridge_r), b_r = α Σ_c y_rc x_c.
    Returns A_r⁻¹ b_r, or with a generator one draw from N(A_r⁻¹ b_r, A_r⁻¹).
    """
    import torch

    n_other, dim = other.shape
    outer = (other[:, :, None] * other[:, None, :]).reshape(n_other, dim * dim)
    ones = torch.ones_like(targets)
    gram = _row_sums(pattern, ones, outer).reshape(-1, dim, dim) * alpha
    rhs = _row_sums(pattern, targets, other) * alpha
    system = gram + torch.diag_embed(ridge)
    chol = torch.linalg.cholesky(system)
    mean = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    if generator is None:
        return mean
    noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
    # x = mean + L^-T z has covariance (L Lᵀ)^-1 = A^-1.
    return mean + torch.linalg.solve_triangular(chol.mT, noise.unsqueeze(-1), upper=True).squeeze(-1)


def _gamma(rng: np.random.Generator, shape: float, rate, device, dtype):
    """Gamma(shape, rate) draws (a seeded numpy Generator: torch's gamma sampler takes no generator)."""
    import torch

    rate = np.asarray(rate.detach().cpu().numpy() if hasattr(rate, "detach") else rate, dtype=np.float64)
    return torch.as_tensor(rng.gamma(shape, 1.0 / rate), dtype=dtype, device=device)


def _start_fit(model: RatingPredictor, train: pd.DataFrame):
    """What every MF/FM fit does first: validate, learn the rating scale, index ids, pick the device."""
    check_training_ratings(train)
    model.learn_rating_scale(train)
    model._check_params()
    device = _resolve_device(model.device)
    model.device_ = str(device)
    model.ratings_ = RatingMatrix(train)
    return device, _float_dtype(device)


class BiasedMF(RatingPredictor):
    """Biased matrix factorisation ``r̂_ui = μ + b_u + b_i + p_u·q_i`` (Koren's SVD without implicit terms).

    solver:
      ``"als"``  (default) minimises Σ (r − r̂)² + reg · Σ_ratings (|p_u|² + |q_i|² + b_u² + b_i²), i.e.
                 the regularisation of Funk's SGD, weighted by how often a parameter is used (ALS-WR,
                 Zhou et al. 2008). Each of ``n_epochs`` sweeps solves all users, then all items, exactly.
      ``"mcmc"`` Bayesian biased MF by blocked Gibbs sampling (BPMF-style, one (k+1)-dim Gaussian per
                 user/item) with Gamma hyper-priors on the noise and on each factor's prior precision,
                 as libFM's MCMC; ``reg`` only seeds the first sweep. ``predict`` averages the
                 predictions of the samples drawn after ``burn_in`` sweeps (kept in ``samples_``);
                 the ``*_factors_``/``*_bias_`` attributes hold the posterior means.
      ``"adam"`` full-batch Adam with learning rate ``lr`` on the same objective as ``"als"``.

    Unseen users or items (not in ``train``): their bias and factors are unknown, so the prediction is
    ``μ + b_u`` (known user), ``μ + b_i`` (known item) or ``μ`` (neither), without the dot product;
    such pairs are flagged in ``last_fallback_``.
    """

    def __init__(
        self,
        n_factors: int = 20,
        n_epochs: int = 15,
        lr: float = 0.01,
        reg: float = 0.15,
        solver: str = "als",
        burn_in: int = 10,
        init_std: float = 0.1,
        seed: int = 0,
        device=None,
        n_threads: int | None = None,
    ):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.lr = lr
        self.reg = reg
        self.solver = solver
        self.burn_in = burn_in
        self.init_std = init_std
        self.seed = seed
        self.device = device
        self.n_threads = n_threads

    # ------------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.solver not in SOLVERS:
            raise ValueError(f"BiasedMF: unknown solver {self.solver!r}; choose one of {SOLVERS}")
        if int(self.n_factors) < 1 or int(self.n_epochs) < 1:
            raise ValueError("BiasedMF: n_factors and n_epochs must be >= 1")
        if self.reg < 0 or self.lr <= 0:
            raise ValueError("BiasedMF: reg must be >= 0 and lr > 0")
        if self.solver == "mcmc" and self.burn_in >= self.n_epochs:
            raise ValueError(f"BiasedMF: burn_in ({self.burn_in}) must be smaller than n_epochs ({self.n_epochs})")

    def fit(self, train: pd.DataFrame, progress: Progress | None = None) -> "BiasedMF":
        import torch

        device, dtype = _start_fit(self, train)
        progress = progress or _no_progress
        users = self.ratings_.user_codes(train["user_id"].to_numpy())
        items = self.ratings_.item_codes(train["item_id"].to_numpy())
        values = torch.as_tensor(np.array(train["rating"], dtype=np.float64), dtype=dtype, device=device)
        n_users, n_items = self.ratings_.shape
        k = int(self.n_factors)

        generator = torch.Generator().manual_seed(int(self.seed))
        self.global_mean_ = float(values.mean())
        factors_u = (torch.randn(n_users, k, generator=generator, dtype=torch.float64) * self.init_std).to(device, dtype)
        factors_i = (torch.randn(n_items, k, generator=generator, dtype=torch.float64) * self.init_std).to(device, dtype)
        bias_u = torch.zeros(n_users, dtype=dtype, device=device)
        bias_i = torch.zeros(n_items, dtype=dtype, device=device)
        user_t = torch.as_tensor(users, device=device)
        item_t = torch.as_tensor(items, device=device)

        with _torch_threads(device, len(train), self.n_threads):
            if self.solver == "adam":
                state = self._fit_adam(values, user_t, item_t, factors_u, factors_i, bias_u, bias_i, progress)
            else:
                state = self._fit_blocks(values, users, items, user_t, item_t, factors_u, factors_i, bias_u,
                                         bias_i, generator, progress)
        factors_u, factors_i, bias_u, bias_i = state
        self.user_factors_ = factors_u.detach().cpu().numpy()
        self.item_factors_ = factors_i.detach().cpu().numpy()
        self.user_bias_ = bias_u.detach().cpu().numpy()
        self.item_bias_ = bias_i.detach().cpu().numpy()
        if self.solver == "mcmc":  # residual of the sample-averaged prediction, accumulated while sampling
            self.train_rmse_ = float(self._train_residual.pow(2).mean().sqrt())
            del self._train_residual
        else:
            self.train_rmse_ = float(np.sqrt(np.mean((self._raw(users, items) - train["rating"].to_numpy()) ** 2)))
        return self

    def _fit_blocks(self, values, users, items, user_t, item_t, factors_u, factors_i, bias_u, bias_i, generator, progress):
        """ALS sweeps, or Gibbs sweeps with hyper-parameter draws and sample averaging."""
        import torch

        n_users, n_items = len(bias_u), len(bias_i)
        device, dtype = values.device, values.dtype
        k = factors_u.shape[1]
        by_user = _csr(users, items, n_users, n_items, device, dtype)
        by_item = _csr(items, users, n_items, n_users, device, dtype)
        ones_i = torch.ones(n_items, 1, dtype=dtype, device=device)
        ones_u = torch.ones(n_users, 1, dtype=dtype, device=device)
        mu = self.global_mean_
        sampling = self.solver == "mcmc"
        if sampling:
            alpha = 1.0
            hyper_rng = np.random.default_rng(int(self.seed))
            precision_u = torch.full((k + 1,), float(self.reg), dtype=dtype, device=device)
            precision_i = precision_u.clone()
            sums = [torch.zeros_like(t) for t in (factors_u, factors_i, bias_u, bias_i)]
            self.samples_ = []  # (P, Q, b_u, b_i) kept on the CPU, to average predictions exactly
            residual_sum = torch.zeros_like(values)
        else:
            count_u = torch.as_tensor(np.bincount(users, minlength=n_users), dtype=dtype, device=device)
            count_i = torch.as_tensor(np.bincount(items, minlength=n_items), dtype=dtype, device=device)
            ridge_u = (count_u * self.reg)[:, None].expand(n_users, k + 1)
            ridge_i = (count_i * self.reg)[:, None].expand(n_items, k + 1)
        for sweep in range(int(self.n_epochs)):
            # users given items: regress r - μ - b_i on [q_i, 1] -> [p_u, b_u]
            design = torch.cat([factors_i, ones_i], dim=1)
            targets = values - mu - bias_i[item_t]
            if sampling:
                solved = _ridge_rows(by_user, targets, design, precision_u.expand(n_users, k + 1),
                                     alpha=alpha, generator=generator)
            else:
                solved = _ridge_rows(by_user, targets, design, ridge_u)
            factors_u, bias_u = solved[:, :k].contiguous(), solved[:, k].contiguous()
            design = torch.cat([factors_u, ones_u], dim=1)
            targets = values - mu - bias_u[user_t]
            if sampling:
                solved = _ridge_rows(by_item, targets, design, precision_i.expand(n_items, k + 1),
                                     alpha=alpha, generator=generator)
            else:
                solved = _ridge_rows(by_item, targets, design, ridge_i)
            factors_i, bias_i = solved[:, :k].contiguous(), solved[:, k].contiguous()
            if sampling:
                residual = values - (mu + bias_u[user_t] + bias_i[item_t] + (factors_u[user_t] * factors_i[item_t]).sum(1))
                alpha = float(_gamma(hyper_rng, 1.0 + len(values) / 2, 1.0 + float((residual**2).sum()) / 2, device, dtype))
                params_u = torch.cat([factors_u, bias_u[:, None]], dim=1)
                params_i = torch.cat([factors_i, bias_i[:, None]], dim=1)
                precision_u = _gamma(hyper_rng, 1.0 + n_users / 2, 1.0 + (params_u**2).sum(0) / 2, device, dtype)
                precision_i = _gamma(hyper_rng, 1.0 + n_items / 2, 1.0 + (params_i**2).sum(0) / 2, device, dtype)
                if sweep >= self.burn_in:
                    residual_sum = residual_sum + residual
                    self.samples_.append(tuple(t.cpu().numpy() for t in (factors_u, factors_i, bias_u, bias_i)))
                    for total, current in zip(sums, (factors_u, factors_i, bias_u, bias_i)):
                        total += current
            progress(sweep + 1, int(self.n_epochs), f"{self.solver} sweep {sweep + 1}/{self.n_epochs}")
        if sampling:
            self.noise_precision_ = alpha
            kept = len(self.samples_)
            self._train_residual = residual_sum / kept
            # The stored factors are the posterior means (for inspection and top-N); predict() averages
            # the per-sample predictions, which is what the Bayesian estimate is.
            return tuple(total / kept for total in sums)
        return factors_u, factors_i, bias_u, bias_i

    def _fit_adam(self, values, user_t, item_t, factors_u, factors_i, bias_u, bias_i, progress):
        import torch

        params = [t.clone().requires_grad_(True) for t in (factors_u, factors_i, bias_u, bias_i)]
        optimiser = torch.optim.Adam(params, lr=float(self.lr))
        mu = self.global_mean_
        for epoch in range(int(self.n_epochs)):
            optimiser.zero_grad()
            p, q, bu, bi = params
            pu, qi, bu_r, bi_r = p[user_t], q[item_t], bu[user_t], bi[item_t]
            error = values - (mu + bu_r + bi_r + (pu * qi).sum(1))
            penalty = (pu**2).sum(1) + (qi**2).sum(1) + bu_r**2 + bi_r**2
            loss = (error**2 + self.reg * penalty).mean()
            loss.backward()
            optimiser.step()
            progress(epoch + 1, int(self.n_epochs), f"adam epoch {epoch + 1}/{self.n_epochs}")
        return tuple(t.detach() for t in params)

    # ------------------------------------------------------------------------------------------
    def _raw(self, user_codes: np.ndarray, item_codes: np.ndarray) -> np.ndarray:
        known_u, known_i = user_codes >= 0, item_codes >= 0
        both = known_u & known_i
        uc, ic = np.where(known_u, user_codes, 0), np.where(known_i, item_codes, 0)
        samples = getattr(self, "samples_", None) if self.solver == "mcmc" else None
        if not samples:
            samples = [(self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_)]
        total = np.zeros(len(uc), dtype=np.float64)
        for p, q, bu, bi in samples:
            dot = np.einsum("nk,nk->n", p[uc], q[ic])
            total += np.where(known_u, bu[uc], 0.0) + np.where(known_i, bi[ic], 0.0) + np.where(both, dot, 0.0)
        return self.global_mean_ + total / len(samples)

    def predict_raw(self, user_ids, item_ids) -> np.ndarray:
        """Unclipped model output (the formula itself), with the unseen-id fallback of the class docstring."""
        if not hasattr(self, "ratings_"):
            raise RuntimeError("BiasedMF: call fit() before predict()")
        user_ids, item_ids = np.asarray(user_ids), np.asarray(item_ids)
        if user_ids.shape != item_ids.shape:
            raise ValueError(f"user_ids {user_ids.shape} and item_ids {item_ids.shape} differ in shape")
        user_codes = self.ratings_.user_codes(user_ids)
        item_codes = self.ratings_.item_codes(item_ids)
        self.last_fallback_ = (user_codes < 0) | (item_codes < 0)
        return self._raw(user_codes, item_codes)

    def predict(self, user_ids, item_ids) -> np.ndarray:
        return self.clip(self.predict_raw(user_ids, item_ids))


# ==============================================================================================
# Factorization machine
# ==============================================================================================
def _scaled_block(features: ItemFeatures | pd.DataFrame, name: str, max_dims: int | None = None,
                  train_item_ids=None) -> ItemFeatures:
    """Side features as float rows, PCA-reduced if wider than `max_dims`, divided by the mean row norm.

    The reduction is fitted on the training items only (recsys.features.reduce.PCAReducer): the
    side-feature sweep costs one coordinate per dimension and factor, so raw 1280-dim CNN vectors
    would make every sweep ~25x slower for little gain. The scaling lets blocks of very different
    scale (multi-hot genres vs. PCA coordinates) share one prior without one dominating the sums.
    """
    if isinstance(features, pd.DataFrame):
        features = ItemFeatures.from_frame(features.astype(np.float32), name=name)
    if not isinstance(features, ItemFeatures):
        raise TypeError(f"side feature block {name!r} must be ItemFeatures or a DataFrame, got {type(features).__name__}")
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
    return ItemFeatures(users.index.to_numpy(), frame.to_numpy(), name="user side", meta={"columns": list(frame.columns)})


def genre_features(dataset) -> ItemFeatures:
    """The dataset's multi-hot genre matrix as ItemFeatures."""
    return ItemFeatures.from_frame(dataset.genres.astype(np.float32), name="genres")


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

    def fit(self, train: pd.DataFrame, progress: Progress | None = None) -> "FactorizationMachine":
        import torch

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
            users, items, train["rating"].to_numpy(dtype=np.float64), self.ratings_.shape,
            item_x, user_x, int(self.n_factors), float(self.init_std), int(self.seed), device, dtype,
        )
        sampling = self.solver == "mcmc"
        samples = []
        mean_residual = None
        with _torch_threads(device, len(train), self.n_threads):
            for sweep in range(int(self.n_epochs)):
                state.sweep(sampling=sampling, reg=float(self.reg))
                if sampling and sweep >= self.burn_in:
                    samples.append(state.parameters())
                    residual_sum = state.last_residual.clone() if mean_residual is None else residual_sum + state.last_residual
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
        users, first_u, user_rows = np.unique(np.asarray(user_ids, dtype=np.int64), return_index=True, return_inverse=True)
        items, first_i, item_rows = np.unique(np.asarray(item_ids, dtype=np.int64), return_index=True, return_inverse=True)
        item_x, _ = self._feature_rows(self.item_side_, items)
        user_x, _ = self._feature_rows(self.user_side_, users)
        total = np.zeros(len(user_codes))
        for params in self.samples_:
            total += _fm_formula(params, user_codes[first_u], item_codes[first_i], item_x, user_x, self.unseen,
                                 user_rows.ravel(), item_rows.ravel())
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
        x[:, n_users + n_items: n_users + n_items + item_x.shape[1]] = item_x
        x[:, n_users + n_items + item_x.shape[1]: start] = user_x
        unseen_u, unseen_i = user_codes < 0, item_codes < 0
        if self.unseen == "average":
            x[:, -2], x[:, -1] = unseen_u, unseen_i
        elif self.unseen == "user_average":
            with_item, with_user = unseen_u & ~unseen_i, unseen_i & ~unseen_u
            x[rows[with_item], start + item_codes[with_item]] = 1.0
            x[rows[with_user], start + n_items + user_codes[with_user]] = 1.0
            x[:, -2], x[:, -1] = unseen_u & unseen_i, unseen_u & unseen_i
        p = self.samples_[sample]
        w = np.concatenate([p["w_user"], p["w_item"], p["w_item_side"], p["w_user_side"],
                            p["w_user_by_other"], p["w_item_by_other"], [p["w_user_unseen"], p["w_item_unseen"]]])
        v = np.concatenate([p["v_user"], p["v_item"], p["v_item_side"], p["v_user_side"],
                            p["v_user_by_other"], p["v_item_by_other"], [p["v_user_unseen"], p["v_item_unseen"]]])
        return x, float(p["w0"]), w, v


def _concat_blocks(blocks: list[ItemFeatures]) -> ItemFeatures | None:
    if not blocks:
        return None
    ids = np.unique(np.concatenate([block.item_ids for block in blocks]))
    matrix = np.concatenate([block.aligned(ids)[0] for block in blocks], axis=1)
    return ItemFeatures(ids, matrix, name=" + ".join(block.name for block in blocks))


UNSEEN_RULES = ("user_average", "average", "zero")


def _fm_side(p: dict, side: str, codes: np.ndarray, x: np.ndarray):
    """Per distinct user (or item), an unseen id counted as zeros: linear part, within-side pairwise
    part and factor sum (a_u or c_i, see _FMState)."""
    known = codes >= 0
    safe = np.where(known, codes, 0)
    v = p[f"v_{side}"][safe] * known[:, None]
    factor_sum = v + x @ p[f"v_{side}_side"]
    squares = (v**2).sum(1) + (x**2) @ (p[f"v_{side}_side"] ** 2).sum(1)
    linear = p[f"w_{side}"][safe] * known + x @ p[f"w_{side}_side"]
    return linear, 0.5 * ((factor_sum**2).sum(1) - squares), factor_sum


def _imputed_ids(p: dict, side: str, own_codes: np.ndarray, other_codes: np.ndarray, unseen: str):
    """Stand-in (w, v) per pair for an unseen user/item id; zeros where the id is known.

    "average": the rating-weighted mean id; "user_average": the mean over the ids the other side of
    the pair rated in training (the items this user rated, the users who rated this item), else
    the rating-weighted mean; "zero": nothing.
    """
    k = p["v_user"].shape[1]
    unknown = own_codes < 0
    w, v = np.zeros(len(own_codes)), np.zeros((len(own_codes), k))
    if unseen == "zero" or not unknown.any():
        return w, v
    w[unknown], v[unknown] = p[f"w_{side}_unseen"], p[f"v_{side}_unseen"]
    if unseen == "user_average":
        by_other = unknown & (other_codes >= 0)
        w[by_other] = p[f"w_{side}_by_other"][other_codes[by_other]]
        v[by_other] = p[f"v_{side}_by_other"][other_codes[by_other]]
    return w, v


def _fm_formula(p: dict, user_codes, item_codes, item_x, user_x, unseen: str = "zero",
                user_rows=None, item_rows=None) -> np.ndarray:
    """ŷ = w0 + Σ w_j x_j + ½ Σ_f [(Σ_j v_jf x_j)² − Σ_j v_jf² x_j²] with x = [user | item | side features].

    The pairwise sum splits into user-side pairs + item-side pairs + <a_u, c_i>, so the arguments may
    describe each distinct user/item once, with `user_rows`/`item_rows` mapping pairs to them. An
    unseen id's stand-in parameters (w*, v*, see _imputed_ids) add w* + <v*, own side's factor sum>
    + their share of the cross term.
    """
    lin_u, intra_u, a = _fm_side(p, "user", user_codes, user_x)
    lin_i, intra_i, c = _fm_side(p, "item", item_codes, item_x)
    user_rows = np.arange(len(user_codes)) if user_rows is None else user_rows
    item_rows = np.arange(len(item_codes)) if item_rows is None else item_rows
    a, c = a[user_rows], c[item_rows]
    pair_users, pair_items = user_codes[user_rows], item_codes[item_rows]
    w_u, v_u = _imputed_ids(p, "user", pair_users, pair_items, unseen)
    w_i, v_i = _imputed_ids(p, "item", pair_items, pair_users, unseen)
    imputed = (w_u + w_i + np.einsum("nk,nk->n", v_u, a) + np.einsum("nk,nk->n", v_i, c))
    return (p["w0"] + lin_u[user_rows] + lin_i[item_rows] + intra_u[user_rows] + intra_i[item_rows]
            + imputed + np.einsum("nk,nk->n", a + v_u, c + v_i))


class _FMState:
    """Parameters of the FM and its blocked Gibbs / ALS sweep.

    Every term of ŷ for a rating (u, i) is either user-level or item-level:
        ŷ = w0 + L_u + L_i + intra_u + intra_i + <a_u, c_i>
    with a_u = v_u + G_u V_G, c_i = v_i + F_i V_F (the factor sums of each side), L = id weight plus
    side-feature weights, and intra = the pairwise terms inside one side. So the sweep works on
    user- and item-level aggregates instead of per-rating caches:
      * (w_u, v_u) of all users jointly, one (k+1)-dim Gaussian per user (batched Cholesky), then the
        same for items - blocked updates mix faster than libFM's coordinate-wise ones;
      * side-feature weights and factors coordinate by coordinate (they are shared by many rows and
        interact with each other), using per-item sums Σ a_u, Σ a_u a_uᵀ, Σ e, Σ e·a_u, so one
        coordinate costs O(#items) instead of O(#ratings).
    """

    def __init__(self, users, items, ratings, shape, item_x, user_x, k, init_std, seed, device, dtype):
        import torch

        self.device, self.dtype, self.k = device, dtype, k
        self.generator = torch.Generator().manual_seed(seed)
        self.hyper_rng = np.random.default_rng(seed)
        self.n_users, self.n_items = shape
        # np.array copies: pandas hands out read-only views, which torch refuses to wrap
        as_t = lambda a, dt=dtype: torch.as_tensor(np.array(a), dtype=dt, device=device)  # noqa: E731
        self.users, self.items = as_t(users, torch.int64), as_t(items, torch.int64)
        self.y = as_t(ratings)
        self.n = len(ratings)
        self.x = {"user": as_t(user_x), "item": as_t(item_x)}
        self.pattern = {"user": _csr(users, items, self.n_users, self.n_items, device, dtype),
                        "item": _csr(items, users, self.n_items, self.n_users, device, dtype)}
        self.codes = {"user": self.users, "item": self.items}
        self.counts = {"user": as_t(np.bincount(users, minlength=self.n_users)),
                       "item": as_t(np.bincount(items, minlength=self.n_items))}

        def normal(rows):
            draw = torch.randn(rows, k, generator=self.generator, dtype=torch.float64) * init_std
            return draw.to(device=device, dtype=dtype)

        self.w0 = float(np.mean(ratings))
        # id parameters per side, and side-feature parameters per side
        self.w = {"user": as_t(np.zeros(self.n_users)), "item": as_t(np.zeros(self.n_items))}
        self.v = {"user": normal(self.n_users), "item": normal(self.n_items)}
        self.ws = {"user": as_t(np.zeros(user_x.shape[1])), "item": as_t(np.zeros(item_x.shape[1]))}
        self.vs = {"user": normal(user_x.shape[1]), "item": normal(item_x.shape[1])}
        self.alpha = 1.0
        self.prior_id = {side: torch.ones(k + 1, dtype=dtype, device=device) for side in self.w}
        self.prior_side = {side: torch.ones(k + 1, dtype=dtype, device=device) for side in self.w}
        self.last_residual = None

    @staticmethod
    def other(side: str) -> str:
        return "item" if side == "user" else "user"

    # ---- side-level terms ----------------------------------------------------------------------
    def side_terms(self, side: str):
        """(L, intra, a) for every user or item: linear part, within-side pairs, factor sum."""
        x, ws, vs = self.x[side], self.ws[side], self.vs[side]
        feature_sum = x @ vs
        intra_features = 0.5 * ((feature_sum**2).sum(1) - (x**2) @ (vs**2).sum(1))
        linear = self.w[side] + x @ ws
        intra = (self.v[side] * feature_sum).sum(1) + intra_features
        return linear, intra, self.v[side] + feature_sum

    def residual(self):
        lin_u, intra_u, a = self.side_terms("user")
        lin_i, intra_i, c = self.side_terms("item")
        u, i = self.users, self.items
        return self.y - (self.w0 + lin_u[u] + lin_i[i] + intra_u[u] + intra_i[i] + (a[u] * c[i]).sum(1))

    # ---- Gaussian draws ------------------------------------------------------------------------
    def _noise(self, shape):
        import torch

        return torch.randn(shape, generator=self.generator, dtype=torch.float64).to(self.device, self.dtype)

    def _scalar(self, old, h2, he, prior, sampling):
        """Conditional of one coordinate θ: precision α Σh² + λ, mean α Σh(e + θh) / precision."""
        import torch

        precision = self.alpha * h2 + prior
        mean = self.alpha * (he + old * h2) / precision
        return mean + self._noise(()) / torch.sqrt(precision) if sampling else mean

    # ---- blocks ----------------------------------------------------------------------------------
    def id_block(self, side: str, sampling: bool, reg: float) -> None:
        """(w, v) of every user (or item) at once: ridge regression of the residual on [c_other + g_own, 1]."""
        import torch

        other = self.other(side)
        own_codes, other_codes = self.codes[side], self.codes[other]
        _, _, own_sum = self.side_terms(side)
        _, _, other_sum = self.side_terms(other)
        own_features = own_sum - self.v[side]  # g: the own side's feature factor sum (v excluded)
        e = self.residual()
        # targets with this block's own contribution added back
        targets = e + self.w[side][own_codes] + (self.v[side][own_codes] * (own_features[own_codes] + other_sum[other_codes])).sum(1)
        ones_other = torch.ones(len(other_sum), 1, dtype=self.dtype, device=self.device)
        design_other = torch.cat([other_sum, ones_other], dim=1)  # [c_i, 1]
        design_own = torch.cat([own_features, torch.zeros_like(ones_other[:1]).expand(len(own_features), 1)], dim=1)
        pattern = self.pattern[side]
        dim = self.k + 1
        outer = (design_other[:, :, None] * design_other[:, None, :]).reshape(-1, dim * dim)
        ones = torch.ones_like(targets)
        gram = _row_sums(pattern, ones, outer).reshape(-1, dim, dim)
        total = _row_sums(pattern, ones, design_other)  # Σ_i [c_i, 1]
        count = self.counts[side][:, None, None]
        gram = (gram + count * design_own[:, :, None] * design_own[:, None, :]
                + design_own[:, :, None] * total[:, None, :] + total[:, :, None] * design_own[:, None, :])
        rhs = _row_sums(pattern, targets, design_other) + _row_sums(pattern, targets, torch.ones_like(ones_other))[:, :1] * design_own
        prior = self.prior_id[side] if sampling else torch.full((dim,), reg, dtype=self.dtype, device=self.device)
        # unknown order [v (k), w]: the design is [c, 1] so the last coordinate is the id weight
        system = self.alpha * gram + torch.diag_embed(prior.expand(len(gram), dim))
        chol = torch.linalg.cholesky(system)
        solution = torch.cholesky_solve(self.alpha * rhs.unsqueeze(-1), chol).squeeze(-1)
        if sampling:
            solution = solution + torch.linalg.solve_triangular(
                chol.mT, self._noise(solution.shape).unsqueeze(-1), upper=True).squeeze(-1)
        self.v[side] = solution[:, : self.k].contiguous()
        self.w[side] = solution[:, self.k].contiguous()

    def side_coordinates(self, side: str, sampling: bool, reg: float, factors: bool = True) -> None:
        """Side-feature weights and factors, coordinate-wise on per-entity sums (see class docstring).

        The sums are built on the device; the coordinate loop itself runs in float64 numpy on the
        CPU, because its vectors have one entry per item (or user) and per-op overhead dominates.
        """
        import torch

        x_dev = self.x[side]
        if x_dev.shape[1] == 0:
            return
        other = self.other(side)
        pattern = self.pattern[side]
        _, _, other_sum_dev = self.side_terms(other)  # a_u when side == "item"; fixed during this block
        _, _, own_sum_dev = self.side_terms(side)  # c_i: moves with the coordinates
        e = self.residual()
        ones = torch.ones_like(e)
        k = self.k
        outer = (other_sum_dev[:, :, None] * other_sum_dev[:, None, :]).reshape(-1, k * k)
        to_np = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
        s = to_np(_row_sums(pattern, ones, other_sum_dev))  # Σ a_u per item
        p = to_np(_row_sums(pattern, ones, outer)).reshape(-1, k, k)  # Σ a_u a_uᵀ per item
        err_sum = to_np(_row_sums(pattern, e, torch.ones(len(other_sum_dev), 1, dtype=self.dtype, device=self.device)))[:, 0]
        err_dot = to_np(_row_sums(pattern, e, other_sum_dev))  # Σ e·a_u per item
        own_sum, x_table, n = to_np(own_sum_dev), to_np(x_dev), to_np(self.counts[side])
        ws, vs = to_np(self.ws[side]), to_np(self.vs[side])
        prior = to_np(self.prior_side[side]) if sampling else np.full(k + 1, reg)
        noise = to_np(self._noise((x_table.shape[1], k + 1))) if sampling else np.zeros((x_table.shape[1], k + 1))
        alpha = self.alpha

        def draw(old, h2, he, precision_prior, z):
            precision = alpha * h2 + precision_prior
            return alpha * (he + old * h2) / precision + z / np.sqrt(precision)

        # Linear side weights jointly, with the id weights integrated out (collapsed Gibbs): id and
        # feature weights explain the same item offsets, and one-at-a-time updates of such coupled
        # parameters crawl, which leaves cold items with almost no feature signal. Per entity the
        # offset data say mean_i ~ N(x_i·w, 1/(α n_i) + 1/λ_id), a weighted ridge regression.
        w_id = to_np(self.w[side])
        id_prior = float(self.prior_id[side][k]) if sampling else reg
        targets = err_sum + n * (w_id + x_table @ ws)  # Σ_r of the residual with both offsets added back
        weight = np.where(n > 0, 1.0 / (1.0 / (alpha * np.maximum(n, 1)) + 1.0 / id_prior), 0.0)
        mean_offset = np.divide(targets, n, out=np.zeros_like(targets), where=n > 0)
        system = x_table.T @ (weight[:, None] * x_table) + np.diag(np.full(x_table.shape[1], prior[k]))
        chol = np.linalg.cholesky(system)
        new_ws = np.linalg.solve(system, x_table.T @ (weight * mean_offset))
        if sampling:
            new_ws = new_ws + np.linalg.solve(chol.T, noise[:, k])
        offset = x_table @ new_ws
        id_precision = alpha * n + id_prior
        new_id = alpha * (targets - n * offset) / id_precision
        if sampling:
            new_id = new_id + to_np(self._noise(len(new_id))) / np.sqrt(id_precision)
        delta = (new_id - w_id) + (offset - x_table @ ws)
        err_sum -= delta * n
        err_dot -= delta[:, None] * s
        ws = new_ws
        self.w[side] = torch.as_tensor(new_id, dtype=self.dtype, device=self.device)

        if not factors:  # the linear step alone (lets the tests check it in isolation)
            self.ws[side] = torch.as_tensor(ws, dtype=self.dtype, device=self.device)
            return
        # Factor f of every feature, then the next f: within one f only column f of Σ e·a_u is read,
        # so the other columns are brought up to date once per f (a systematic scan in any order is
        # a valid Gibbs sweep).
        active = [j for j in range(x_table.shape[1]) if x_table[:, j].any()]
        columns = np.ascontiguousarray(x_table.T)  # contiguous per-feature vectors
        squares = columns**2
        own_columns = np.ascontiguousarray(own_sum.T)
        for f in range(k):
            p_f = p[:, :, f]
            p_ff, s_f = p_f[:, f].copy(), s[:, f].copy()
            err_dot_f = err_dot[:, f].copy()
            own_f = own_columns[f]
            total_step = np.zeros_like(err_sum)
            total_step_g = np.zeros_like(err_sum)
            for j in active:
                x = columns[j]
                old = vs[j, f]
                g = own_f - x * old
                h2 = squares[j] @ (p_ff + g * (2 * s_f + n * g))
                he = x @ (err_dot_f + g * err_sum)
                new = draw(old, h2, he, prior[f], noise[j, f])
                step = (new - old) * x
                err_sum -= step * (s_f + n * g)
                err_dot_f -= step * (p_ff + g * s_f)
                total_step += step
                total_step_g += step * g
                own_f += step
                vs[j, f] = new
            err_dot -= total_step[:, None] * p_f + total_step_g[:, None] * s
            err_dot[:, f] = err_dot_f
        self.ws[side] = torch.as_tensor(ws, dtype=self.dtype, device=self.device)
        self.vs[side] = torch.as_tensor(vs, dtype=self.dtype, device=self.device)

    def sweep(self, sampling: bool, reg: float) -> None:
        import torch

        e = self.last_residual if self.last_residual is not None else self.residual()
        old = torch.as_tensor(self.w0, dtype=self.dtype, device=self.device)
        prior_w0 = 1e-3 if sampling else reg  # a vague prior: w0 is pinned by every rating anyway
        self.w0 = float(self._scalar(old, torch.as_tensor(float(self.n), dtype=self.dtype), e.sum(), prior_w0, sampling))
        for side in ("user", "item"):
            self.id_block(side, sampling, reg)
        for side in ("item", "user"):
            self.side_coordinates(side, sampling, reg)
        # kept for the hyper-parameter draw, the training fit and the next sweep's w0 update
        self.last_residual = self.residual()
        if sampling:
            self._draw_hyper()

    def _draw_hyper(self) -> None:
        """Noise and prior precisions from their Gamma posteriors (α0 = β0 = 1, prior means fixed at 0)."""
        import torch

        rng = self.hyper_rng
        squared_error = float((self.last_residual**2).sum())
        self.alpha = float(rng.gamma(1.0 + self.n / 2, 1.0 / (1.0 + squared_error / 2)))
        for side in ("user", "item"):
            for store, w, v in ((self.prior_id, self.w[side], self.v[side]), (self.prior_side, self.ws[side], self.vs[side])):
                count = len(w)
                if count == 0:
                    continue
                squares = torch.cat([(v**2).sum(0), (w**2).sum()[None]]).cpu().numpy().astype(np.float64)
                draws = rng.gamma(1.0 + count / 2, 1.0 / (1.0 + squares / 2))
                store[side] = torch.as_tensor(draws, dtype=self.dtype, device=self.device)

    def parameters(self) -> dict:
        import torch

        as_np = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
        out = {"w0": float(self.w0)}
        for side in ("user", "item"):
            w, v, counts = as_np(self.w[side]), as_np(self.v[side]), as_np(self.counts[side])
            out[f"w_{side}"], out[f"v_{side}"] = w, v
            out[f"w_{side}_side"], out[f"v_{side}_side"] = as_np(self.ws[side]), as_np(self.vs[side])
            # the id parameters of an "average rated" user/item, used for ids unseen in training
            out[f"w_{side}_unseen"] = float(counts @ w / counts.sum())
            out[f"v_{side}_unseen"] = counts @ v / counts.sum()
            # ... and the average over the ids each user (item) of the other side met in training
            other = self.other(side)
            stacked = torch.cat([self.w[side][:, None], self.v[side]], dim=1)
            means = as_np(_row_sums(self.pattern[other], torch.ones_like(self.y), stacked)) / as_np(self.counts[other])[:, None]
            out[f"w_{side}_by_other"], out[f"v_{side}_by_other"] = means[:, 0], means[:, 1:]
        return out


# ==============================================================================================
# Cold start
# ==============================================================================================
def cold_start_report(
    dataset,
    features: dict[str, ItemFeatures] | ItemFeatures | None = None,
    item_share: float = 0.2,
    seed: int = 0,
    n_factors: int = 10,
    n_epochs: int = 40,
    burn_in: int = 10,
    max_side_dims: int | None = 32,
    device=None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """RMSE/MAE on items held out entirely (none of their ratings in train), one row per model.

    Rows: global mean, user mean (the baseline), biased MF (which can only say μ + b_u for an unseen
    item), the FM on ids only (no item information: the user's "average rated item"), the FM with
    ``features`` (default: the dataset's genres) and the same with the textbook zero prior for unseen
    ids (see FactorizationMachine's ``unseen``). Feature blocks wider than ``max_side_dims`` (raw CNN
    vectors) are PCA-reduced inside each fit, on that split's training items only. Uses the shared cold-item split of
    ``recsys.eval.splits`` so the content predictor's cold-start numbers are on the same items.
    """
    import time

    from recsys.eval.metrics import mae, rmse
    from recsys.eval.splits import make_splits

    progress = progress or _no_progress
    if features is None:
        features = {"genres": genre_features(dataset)}
    blocks = _side_blocks(features)
    feature_name = " + ".join(block.name for block in blocks)
    fold = make_splits(dataset.ratings, kind="cold_items", seed=seed, item_share=item_share)[0]
    train, test = fold.train, fold.test
    truth = test["rating"].to_numpy(dtype=np.float64)
    users, items = test["user_id"].to_numpy(), test["item_id"].to_numpy()
    with_features = np.isin(items, np.concatenate([block.item_ids for block in blocks]))
    rows = []

    def add(model: str, feats: str, predictions: np.ndarray, seconds: float) -> None:
        rows.append({"model": model, "features": feats, "rmse": rmse(truth, predictions), "mae": mae(truth, predictions),
                     "n_test": len(truth), "n_cold_items": len(fold.cold_items), "test_share_with_features": float(with_features.mean()),
                     "fit_s": seconds, "seed": seed, "item_share": item_share})

    matrix = RatingMatrix(train)
    global_mean = float(train["rating"].mean())
    add("global mean", "-", np.full(len(truth), global_mean), 0.0)
    codes = matrix.user_codes(users)
    user_mean = np.where(codes >= 0, matrix.user_means()[np.maximum(codes, 0)], global_mean)
    add("user mean", "-", user_mean, 0.0)  # a mean of ratings is always on the rating scale
    steps = 4
    start = time.perf_counter()
    mf = BiasedMF(seed=seed, device=device).fit(train)
    add("biased MF (ALS)", "ids", mf.predict(users, items), time.perf_counter() - start)
    progress(1, steps, "cold start: biased MF")
    fms = (("FM (MCMC)", None, "user_average"), ("FM (MCMC)", features, "user_average"),
           ("FM (MCMC, zero prior)", features, "zero"))
    for done, (label, side, unseen) in enumerate(fms, start=2):
        start = time.perf_counter()
        fm = FactorizationMachine(n_factors=n_factors, side_features=side, n_epochs=n_epochs, burn_in=burn_in,
                                  unseen=unseen, max_side_dims=max_side_dims, seed=seed, device=device).fit(train)
        add(label, "ids" if side is None else f"ids + {feature_name}", fm.predict(users, items), time.perf_counter() - start)
        progress(done, steps, f"cold start: {label}")
    return pd.DataFrame(rows)
