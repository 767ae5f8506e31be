"""Private numerical kernels of the factor models (torch): shared by BiasedMF and FactorizationMachine.

- device/dtype/thread helpers and CSR products (sparse sums without float atomics, so a seed
  gives identical results on CPU);
- ``_ridge_rows``: per-row closed-form ridge solves (ALS) and their Gaussian posterior draws (Gibbs);
- ``_gamma``: hyper-parameter draws from a seeded numpy Generator;
- ``_fm_formula`` and friends: the FM's prediction formula with the unseen-id rules;
- ``_FMState``: the FM's coordinate-wise ALS / Gibbs sampler (libFM's MCMC).

Nothing here is public API: the models in ``mf.py`` and ``fm.py`` are.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from recsys.models.base import RatingMatrix, RatingPredictor, check_training_ratings

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


def _fm_formula(
    p: dict, user_codes, item_codes, item_x, user_x, unseen: str = "zero", user_rows=None, item_rows=None
) -> np.ndarray:
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
    imputed = w_u + w_i + np.einsum("nk,nk->n", v_u, a) + np.einsum("nk,nk->n", v_i, c)
    return (
        p["w0"]
        + lin_u[user_rows]
        + lin_i[item_rows]
        + intra_u[user_rows]
        + intra_i[item_rows]
        + imputed
        + np.einsum("nk,nk->n", a + v_u, c + v_i)
    )


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
        self.pattern = {
            "user": _csr(users, items, self.n_users, self.n_items, device, dtype),
            "item": _csr(items, users, self.n_items, self.n_users, device, dtype),
        }
        self.codes = {"user": self.users, "item": self.items}
        self.counts = {
            "user": as_t(np.bincount(users, minlength=self.n_users)),
            "item": as_t(np.bincount(items, minlength=self.n_items)),
        }

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
        targets = (
            e
            + self.w[side][own_codes]
            + (self.v[side][own_codes] * (own_features[own_codes] + other_sum[other_codes])).sum(1)
        )
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
        gram = (
            gram
            + count * design_own[:, :, None] * design_own[:, None, :]
            + design_own[:, :, None] * total[:, None, :]
            + total[:, :, None] * design_own[:, None, :]
        )
        rhs = (
            _row_sums(pattern, targets, design_other)
            + _row_sums(pattern, targets, torch.ones_like(ones_other))[:, :1] * design_own
        )
        prior = self.prior_id[side] if sampling else torch.full((dim,), reg, dtype=self.dtype, device=self.device)
        # unknown order [v (k), w]: the design is [c, 1] so the last coordinate is the id weight
        system = self.alpha * gram + torch.diag_embed(prior.expand(len(gram), dim))
        chol = torch.linalg.cholesky(system)
        solution = torch.cholesky_solve(self.alpha * rhs.unsqueeze(-1), chol).squeeze(-1)
        if sampling:
            solution = solution + torch.linalg.solve_triangular(
                chol.mT, self._noise(solution.shape).unsqueeze(-1), upper=True
            ).squeeze(-1)
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
        err_sum = to_np(_row_sums(pattern, e, torch.ones(len(other_sum_dev), 1, dtype=self.dtype, device=self.device)))[
            :, 0
        ]
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
        self.w0 = float(
            self._scalar(old, torch.as_tensor(float(self.n), dtype=self.dtype), e.sum(), prior_w0, sampling)
        )
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
            for store, w, v in (
                (self.prior_id, self.w[side], self.v[side]),
                (self.prior_side, self.ws[side], self.vs[side]),
            ):
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
            means = (
                as_np(_row_sums(self.pattern[other], torch.ones_like(self.y), stacked))
                / as_np(self.counts[other])[:, None]
            )
            out[f"w_{side}_by_other"], out[f"v_{side}_by_other"] = means[:, 0], means[:, 1:]
        return out
