"""The factorization machine's blocked ALS / Gibbs sampler (libFM's MCMC); private, see ``fm.py``.

- ``draw_group_hyper``: libFM's Normal-Gamma hyper-parameter step (seeded numpy Generator);
- ``_SideDesign``: one side's side-feature columns;
- ``_FMState``: parameters, hyper-parameters and one sweep (numba kernels in ``_fm_kernels``).
"""

from __future__ import annotations

import numpy as np

from recsys.models._fm_kernels import _kernel
from recsys.models._solvers import _csr, _row_sums

# libFM's hyper-priors (Rendle 2012, "Factorization Machines with libFM", section 4.3; myFM's
# defaults): α, λ ~ Gamma(α0/2, β0/2), μ | λ ~ N(μ0, 1/(γ0 λ)), w0 ~ N(0, 1/W0_PRECISION).
ALPHA_0 = 1.0
BETA_0 = 1.0
GAMMA_0 = 1.0
MU_0 = 0.0
W0_PRECISION = 1.0


def draw_group_hyper(rng: np.random.Generator, values: np.ndarray, mu: np.ndarray):
    """One group's hyper-parameters, libFM's step: λ | μ, θ, then μ | λ, θ, one pair per column.

    `values` (n_g x m) are the group's parameters (e.g. the item-id weights and the k factor
    columns), `mu` (m) the current means. Returns (λ, μ):
        λ ~ Gamma(shape (α0 + n_g)/2, rate (β0 + Σ (θ − μ)²)/2)
        μ ~ N((γ0 μ0 + Σ θ)/(γ0 + n_g), 1/(λ (γ0 + n_g)))
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    rate = (BETA_0 + ((values - mu) ** 2).sum(0)) / 2.0
    lam = rng.gamma((ALPHA_0 + n) / 2.0, 1.0 / rate)
    mean = (GAMMA_0 * MU_0 + values.sum(0)) / (GAMMA_0 + n)
    return lam, mean + rng.standard_normal(len(mean)) / np.sqrt(lam * (GAMMA_0 + n))


# ---- side-feature design --------------------------------------------------------------------------
class _SideDesign:
    """The side-feature columns of one side (items or users): one CSR matrix over entities.

    blocks: (name, matrix n_entities x d, kind) with kind "dense" (genres, reduced CNN features,
    demographics: their linear weights are drawn jointly, see _FMState.side_step) or "relation"
    (implicit feedback, thousands of sparse columns: drawn coordinate-wise). Each block is one
    parameter group with its own prior means and precisions (libFM's ``-meta`` grouping).
    """

    def __init__(self, blocks, n_entities: int, first_group: int):
        import scipy.sparse as sp

        matrices, groups, kinds, self.names = [], [], [], []
        for name, matrix, kind in blocks:
            matrix = sp.csr_matrix(matrix, dtype=np.float64)
            if matrix.shape[0] != n_entities:
                raise ValueError(f"side block {name!r} has {matrix.shape[0]} rows for {n_entities} entities")
            if matrix.shape[1] == 0:
                continue
            matrices.append(matrix)
            groups.append(np.full(matrix.shape[1], first_group + len(self.names), dtype=np.int64))
            kinds.append(np.full(matrix.shape[1], kind == "dense"))
            self.names.append(name)
        self.x = sp.hstack(matrices, format="csr") if matrices else sp.csr_matrix((n_entities, 0))
        self.x.sort_indices()
        self.x2 = self.x.multiply(self.x).tocsr()
        csc = self.x.tocsc()
        csc.sort_indices()
        self.indptr, self.indices, self.data = csc.indptr.astype(np.int64), csc.indices.astype(np.int64), csc.data
        self.groups = np.concatenate(groups) if groups else np.zeros(0, dtype=np.int64)
        dense = np.concatenate(kinds) if kinds else np.zeros(0, dtype=bool)
        self.dense_columns = np.flatnonzero(dense)
        self.relation_columns = np.flatnonzero(~dense).astype(np.int64)
        self.dense_table = self.x[:, self.dense_columns].toarray()

    @property
    def dim(self) -> int:
        return self.x.shape[1]


def _as_blocks(blocks):
    """A plain matrix is one dense block; a list of (name, matrix, kind) is kept."""
    if blocks is None:
        return []
    if isinstance(blocks, list):
        return blocks
    return [("side", blocks, "dense")] if blocks.shape[1] else []


class _FMState:
    """Parameters of the FM, their hyper-parameters, and one blocked Gibbs / ALS sweep.

    Every term of ŷ for a rating (u, i) is user-level or item-level:
        ŷ = w0 + L_u + L_i + intra_u + intra_i + <a_u, c_i>
    with a_u = v_u + x_u V_U, c_i = v_i + x_i V_I (each side's factor sum over its one-hot id and its
    side-feature row), L = id weight plus side-feature weights, intra = the pairwise terms inside one
    side's row. A sweep:
      * α (noise precision), then each group's (λ, μ) for the weights and each factor column, as
        libFM (Normal-Gamma hyper-priors, α0 = β0 = γ0 = 1, μ0 = 0); groups: user ids, item ids,
        and each side block (genres, posters, implicit feedback, ...);
      * w0;
      * (w_u, v_u) of all users at once, one (k+1)-dim Gaussian per user (batched Cholesky on the
        device), then the items - blocked draws of what libFM samples one coordinate at a time;
      * per side: dense blocks' weights jointly with the id weights integrated out, relation
        blocks' weights and all side factors coordinate-wise on per-entity sums (numba kernels).
    ALS (``sampling=False``) takes every conditional's mode with the fixed precision ``reg``.
    """

    def __init__(self, users, items, ratings, shape, item_blocks, user_blocks, k, init_std, seed, device, dtype):
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
        self.pattern = {
            "user": _csr(users, items, self.n_users, self.n_items, device, dtype),
            "item": _csr(items, users, self.n_items, self.n_users, device, dtype),
        }
        # the CPU path runs the per-rating passes in numba kernels, CUDA in torch (CSR products)
        self.use_kernels = device.type == "cpu" and dtype == torch.float64
        self.y_np = np.ascontiguousarray(ratings, dtype=np.float64)
        self.users_np = np.ascontiguousarray(users, dtype=np.int64)
        self.items_np = np.ascontiguousarray(items, dtype=np.int64)
        self.pattern_np = {
            side: tuple(np.ascontiguousarray(t.cpu().numpy(), dtype=np.int64) for t in self.pattern[side][:3])
            for side in self.pattern
        }
        self.codes = {"user": self.users, "item": self.items}
        self.counts_np = {
            "user": np.bincount(users, minlength=self.n_users).astype(np.float64),
            "item": np.bincount(items, minlength=self.n_items).astype(np.float64),
        }
        self.counts = {side: as_t(count) for side, count in self.counts_np.items()}
        self.group_names = ["user ids", "item ids"]
        self.id_group = {"user": 0, "item": 1}
        self.design = {}
        for side, blocks, rows in (("item", item_blocks, self.n_items), ("user", user_blocks, self.n_users)):
            self.design[side] = _SideDesign(_as_blocks(blocks), rows, len(self.group_names))
            self.group_names += [f"{side} {name}" for name in self.design[side].names]

        def normal(rows):
            draw = torch.randn(rows, k, generator=self.generator, dtype=torch.float64) * init_std
            return draw.to(device=device, dtype=dtype)

        self.w0 = float(np.mean(ratings))
        self.w = {"user": as_t(np.zeros(self.n_users)), "item": as_t(np.zeros(self.n_items))}
        self.v = {"user": normal(self.n_users), "item": normal(self.n_items)}
        # side-feature parameters live on the host: the coordinate kernels run there
        self.ws = {side: np.zeros(self.design[side].dim) for side in ("user", "item")}
        self.vs = {side: normal(self.design[side].dim).cpu().numpy().astype(np.float64) for side in ("user", "item")}
        groups = len(self.group_names)
        self.alpha = 1.0
        self.mu_w, self.lam_w = np.zeros(groups), np.ones(groups)
        self.mu_v, self.lam_v = np.zeros((groups, k)), np.ones((groups, k))
        self.last_residual = None
        self.conditional_mean = {}
        self._version, self._terms_cache = {"user": 0, "item": 0}, {}
        self._residual_cache = (None, None)

    @staticmethod
    def other(side: str) -> str:
        return "item" if side == "user" else "user"

    def _to_device(self, array):
        import torch

        return torch.as_tensor(np.ascontiguousarray(array), dtype=self.dtype, device=self.device)

    @staticmethod
    def _to_host(tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy().astype(np.float64)

    # ---- side-level terms ----------------------------------------------------------------------
    def side_terms(self, side: str):
        """(L, intra, a) for every user or item: linear part, within-row pairs, factor sum."""
        design, v = self.design[side], self.v[side]
        if design.dim == 0:
            return self.w[side], torch_zeros_like(self.w[side]), v
        vs, ws = self.vs[side], self.ws[side]
        feature_sum = self._to_device(design.x @ vs)
        squares = self._to_device(design.x2 @ (vs**2).sum(1))
        linear = self.w[side] + self._to_device(design.x @ ws)
        intra = (v * feature_sum).sum(1) + 0.5 * ((feature_sum**2).sum(1) - squares)
        return linear, intra, v + feature_sum

    def terms(self) -> dict:
        """Per side: (L + intra, factor sum) of every user / item (kept until that side changes)."""
        out = {}
        for side in ("user", "item"):
            version, cached = self._terms_cache.get(side, (None, None))
            if version != self._version[side]:
                linear, intra, factor_sum = self.side_terms(side)
                cached = ((linear + intra).contiguous(), factor_sum.contiguous())
                self._terms_cache[side] = (self._version[side], cached)
            out[side] = cached
        return out

    def _changed(self, side: str) -> None:
        self._version[side] += 1

    def residual(self, terms: dict | None = None):
        """e_r = y_r − ŷ_r for every training rating (kept until a parameter changes)."""
        import torch

        key = (self._version["user"], self._version["item"], self.w0, self.use_kernels)
        if self._residual_cache[0] == key:
            return self._residual_cache[1]
        (bias_u, a), (bias_i, c) = self.terms()["user"], self.terms()["item"]
        if self.use_kernels:
            out = np.empty(self.n)
            _kernel("residual")(
                self.y_np, self.users_np, self.items_np, float(self.w0),
                _host_view(bias_u), _host_view(bias_i), _host_view(a), _host_view(c), out,
            )  # fmt: skip
            e = torch.from_numpy(out)
        else:
            u, i = self.users, self.items
            pairwise = (a.index_select(0, u) * c.index_select(0, i)).sum(1)
            e = self.y - (self.w0 + bias_u.index_select(0, u) + bias_i.index_select(0, i) + pairwise)
        self._residual_cache = (key, e)
        return e

    def aggregates(self, side: str, e, other_sum, outer: bool = True):
        """Per entity of `side`: S = Σ c_r, P = Σ c_r c_rᵀ (None without `outer`), E = Σ e_r,
        D = Σ e_r c_r, over its ratings r, c_r being the other side's factor sum (torch tensors)."""
        import torch

        rows, k = (self.n_users if side == "user" else self.n_items), self.k
        if self.use_kernels:
            S, P = np.zeros((rows, k)), np.zeros((rows, k, k) if outer else (1, k, k))
            E, D = np.zeros(rows), np.zeros((rows, k))
            crow, col, order = self.pattern_np[side]
            _kernel("sums")(crow, col, order, _host_view(e), _host_view(other_sum), outer, S, P, E, D)
            as_t = torch.from_numpy
            return (as_t(S), as_t(P)) if outer else (None, None), as_t(E), as_t(D)
        pattern = self.pattern[side]
        ones_other = torch.ones(len(other_sum), 1, dtype=self.dtype, device=self.device)
        E, D = _row_sums(pattern, e, ones_other)[:, 0], _row_sums(pattern, e, other_sum)
        if not outer:
            return (None, None), E, D
        products = (other_sum[:, :, None] * other_sum[:, None, :]).reshape(-1, k * k)
        S, P = _row_sums(pattern, None, other_sum), _row_sums(pattern, None, products).reshape(-1, k, k)
        return (S, P), E, D

    # ---- Gaussian draws ------------------------------------------------------------------------
    def _noise(self, shape):
        import torch

        return torch.randn(shape, generator=self.generator, dtype=torch.float64).to(self.device, self.dtype)

    def _host_noise(self, shape) -> np.ndarray:
        import torch

        return torch.randn(shape, generator=self.generator, dtype=torch.float64).numpy()

    def _priors(self, sampling: bool, reg: float):
        """(μ_w, λ_w, μ_v, λ_v) per group: the sampled ones, or ALS's fixed precision `reg` around 0."""
        if sampling:
            return self.mu_w, self.lam_w, self.mu_v, self.lam_v
        return (
            np.zeros_like(self.mu_w),
            np.full_like(self.lam_w, reg),
            np.zeros_like(self.mu_v),
            np.full_like(self.lam_v, reg),
        )

    # ---- blocks ----------------------------------------------------------------------------------
    def id_block(self, side: str, sampling: bool, reg: float, terms=None, sums=None) -> None:
        """(w, v) of every user (or item) at once: a Gaussian regression of the residual on z = [c + g, 1].

        For entity e with ratings r: ŷ_r = const + [v_e, w_e]·z_r with z_r = [c_r + g_e, 1] (c_r the
        other side's factor sum, g_e the entity's own side-feature factor sum). Precision
        α Σ z zᵀ + Λ, mean (α Σ (e_r + z_rᵀθ) z_r + Λ μ) / precision, built from the per-entity
        sums S, P, E, D of ``aggregates`` (no per-rating work here).
        """
        import torch

        terms = terms or self.terms()
        if sums is None:
            sums = self.aggregates(side, self.residual(terms), terms[self.other(side)][1])
        (S, P), E, D = sums
        k, dim = self.k, self.k + 1
        g = terms[side][1] - self.v[side]  # the own side's feature factor sum (v excluded)
        n = self.counts[side]
        top = S + n[:, None] * g
        gram = torch.empty(len(n), dim, dim, dtype=self.dtype, device=self.device)
        gram[:, :k, :k] = (
            P
            + S[:, :, None] * g[:, None, :]
            + g[:, :, None] * S[:, None, :]
            + n[:, None, None] * g[:, :, None] * g[:, None, :]
        )
        gram[:, :k, k], gram[:, k, :k], gram[:, k, k] = top, top, n
        theta = torch.cat([self.v[side], self.w[side][:, None]], dim=1)
        rhs = torch.cat([D + E[:, None] * g, E[:, None]], dim=1) + (gram @ theta.unsqueeze(-1)).squeeze(-1)
        mu_w, lam_w, mu_v, lam_v = self._priors(sampling, reg)
        group = self.id_group[side]
        # unknown order [v (k), w]: the design is [c, 1] so the last coordinate is the id weight
        prior = self._to_device(np.append(lam_v[group], lam_w[group]))
        prior_mean = self._to_device(np.append(mu_v[group], mu_w[group]))
        system = self.alpha * gram + torch.diag_embed(prior.expand(len(gram), dim))
        chol = torch.linalg.cholesky(system)
        solution = torch.cholesky_solve((self.alpha * rhs + prior * prior_mean).unsqueeze(-1), chol).squeeze(-1)
        # the conditional mean, for the Rao-Blackwellised prediction of the block drawn last
        self.conditional_mean[side] = (solution[:, k].contiguous(), solution[:, :k].contiguous())
        if sampling:
            solution = solution + torch.linalg.solve_triangular(
                chol.mT, self._noise(solution.shape).unsqueeze(-1), upper=True
            ).squeeze(-1)
        self.v[side] = solution[:, :k].contiguous()
        self.w[side] = solution[:, k].contiguous()
        self._changed(side)

    def side_step(self, side: str, sampling: bool, reg: float, factors: bool = True, terms=None, sums=None) -> None:
        """Side-feature weights and factors of one side, on per-entity sums (see the kernels above).

        The dense blocks' weights are drawn jointly with the id weights integrated out (collapsed):
        id and feature weights explain the same entity offsets, and one-at-a-time draws of such
        coupled parameters crawl, which would leave cold items with almost no feature signal. Per
        entity the offset data say ō_e ~ N(μ_id + x_e·w, 1/(α n_e) + 1/λ_id): a weighted ridge.
        Relation blocks' weights and all side factors are drawn coordinate-wise (numba kernels).
        """
        design = self.design[side]
        if design.dim == 0:
            return
        k = self.k
        terms = terms or self.terms()
        if sums is None:
            sums = self.aggregates(side, self.residual(terms), terms[self.other(side)][1])
        (S, P), E, D = sums
        S, P = _host_copy(S), _host_copy(P)
        E, D, C = _host_copy(E), _host_copy(D), _host_copy(terms[side][1])
        n = self.counts_np[side]
        mu_w, lam_w, mu_v, lam_v = self._priors(sampling, reg)
        ws, vs = self.ws[side].copy(), self.vs[side].copy()
        linear_noise = self._host_noise(design.dim) if sampling else np.zeros(design.dim)

        if len(design.dense_columns):
            self._collapsed_linear(side, ws, mu_w, lam_w, n, E, D, S, sampling, linear_noise)
        if len(design.relation_columns):
            _kernel("linear")(
                design.indptr, design.indices, design.data, design.relation_columns, design.groups,
                ws, mu_w, lam_w, float(self.alpha), n, E, D, S, linear_noise, sampling,
            )  # fmt: skip
        self.ws[side] = ws
        self._changed(side)
        if not factors:  # the linear step alone (lets the tests check it in isolation)
            return
        factor_noise = self._host_noise((design.dim, k)) if sampling else np.zeros((design.dim, k))
        factor_major = lambda a: np.ascontiguousarray(a.T)  # noqa: E731
        _kernel("factors")(
            design.indptr, design.indices, design.data, design.groups, vs, mu_v, lam_v, float(self.alpha), n, E,
            factor_major(D), factor_major(S), P, factor_major(C), factor_noise, sampling,
        )  # fmt: skip
        self.vs[side] = vs
        self._changed(side)

    def _collapsed_linear(self, side, ws, mu_w, lam_w, n, E, D, S, sampling, noise) -> None:
        design = self.design[side]
        columns, table = design.dense_columns, design.dense_table
        group = self.id_group[side]
        id_precision, id_mean = float(lam_w[group]), float(mu_w[group])
        alpha = float(self.alpha)
        w_id = self._to_host(self.w[side])
        prior, prior_mean = lam_w[design.groups[columns]], mu_w[design.groups[columns]]
        old_offset = w_id + table @ ws[columns]
        targets = E + n * old_offset  # Σ_r of the residual with both offsets added back
        weight = 1.0 / (1.0 / (alpha * n) + 1.0 / id_precision)
        system = table.T @ (weight[:, None] * table) + np.diag(prior)
        rhs = table.T @ (weight * (targets / n - id_mean)) + prior * prior_mean
        chol = np.linalg.cholesky(system)
        new = np.linalg.solve(system, rhs)
        if sampling:
            new = new + np.linalg.solve(chol.T, noise[columns])
        offset = table @ new
        precision = alpha * n + id_precision
        new_id = (alpha * (targets - n * offset) + id_precision * id_mean) / precision
        if sampling:
            new_id = new_id + self._host_noise(len(new_id)) / np.sqrt(precision)
        delta = new_id + offset - old_offset
        E -= delta * n
        D -= delta[:, None] * S
        ws[columns] = new
        self.w[side] = self._to_device(new_id)

    def draw_hyper(self, residual) -> None:
        """α, then every group's (λ, μ) for its weights and each factor column (draw_group_hyper)."""
        rng = self.hyper_rng
        self.draw_noise_precision(residual)
        for side in ("user", "item"):
            group = self.id_group[side]
            values = np.column_stack([self._to_host(self.w[side]), self._to_host(self.v[side])])
            self._set_hyper(group, *draw_group_hyper(rng, values, np.append(self.mu_w[group], self.mu_v[group])))
        for side in ("item", "user"):
            design = self.design[side]
            values = np.column_stack([self.ws[side], self.vs[side]])
            for group in np.unique(design.groups):
                members = values[design.groups == group]
                mu = np.append(self.mu_w[group], self.mu_v[group])
                self._set_hyper(group, *draw_group_hyper(rng, members, mu))

    def draw_noise_precision(self, residual) -> None:
        """α ~ Gamma((α0 + N)/2, rate (β0 + Σ e²)/2)."""
        squared_error = float((residual**2).sum())
        self.alpha = float(self.hyper_rng.gamma((ALPHA_0 + self.n) / 2.0, 2.0 / (BETA_0 + squared_error)))

    def _set_hyper(self, group: int, lam: np.ndarray, mu: np.ndarray) -> None:
        self.lam_w[group], self.lam_v[group] = lam[0], lam[1:]
        self.mu_w[group], self.mu_v[group] = mu[0], mu[1:]

    def sweep(self, sampling: bool, reg: float) -> None:
        """α and the group priors; w0; the users' side features and id block; the items' side
        features and id block. The item id block comes last, so ``parameters(rao_blackwell=True)``
        can report its conditional mean (ŷ is linear in it given everything else)."""
        e = self.last_residual if self.last_residual is not None else self.residual()
        if sampling:
            self.draw_hyper(e)
        precision = self.alpha * self.n + (W0_PRECISION if sampling else reg)
        mean = self.alpha * (float(e.sum()) + self.n * self.w0) / precision
        self.w0 = float(mean + (float(self._noise(())) / np.sqrt(precision) if sampling else 0.0))
        for side in ("user", "item"):
            other = self.other(side)
            terms = self.terms()
            sums, fresh = self.aggregates(side, self.residual(terms), terms[other][1]), True
            for step in ("id", "side") if side == "user" else ("side", "id"):
                if step == "side" and not self.design[side].dim:
                    continue
                if not fresh:  # S and P depend on the other side only, which has not moved
                    terms = self.terms()
                    sums = (sums[0], *self.aggregates(side, self.residual(terms), terms[other][1], outer=False)[1:])
                if step == "id":
                    self.id_block(side, sampling, reg, terms, sums)
                else:
                    self.side_step(side, sampling, reg, terms=terms, sums=sums)
                fresh = False
        # kept for the hyper-parameter draw, the training fit and the next sweep's w0 update
        self.last_residual = self.residual()

    def parameters(self, rao_blackwell: bool = False) -> dict:
        """The current parameters; with `rao_blackwell`, the item id block's conditional mean
        instead of its draw (a lower-variance estimate of the same posterior mean of ŷ)."""
        out = {"w0": float(self.w0)}
        for side in ("user", "item"):
            w, v = self.w[side], self.v[side]
            if rao_blackwell and side == "item" and side in self.conditional_mean:
                w, v = self.conditional_mean[side]
            out[f"w_{side}"], out[f"v_{side}"] = self._to_host(w), self._to_host(v)
            # the id group's prior mean: what the posterior says about an id never seen in training
            group = self.id_group[side]
            out[f"w_{side}_prior"], out[f"v_{side}_prior"] = float(self.mu_w[group]), self.mu_v[group].copy()
            out[f"w_{side}_side"], out[f"v_{side}_side"] = self.ws[side].copy(), self.vs[side].copy()
        return out

    def hyper_parameters(self) -> dict:
        """The current α and per-group (μ, λ), keyed by group name (for inspection and tests)."""
        return {
            "alpha": self.alpha,
            "groups": {
                name: {"mu_w": self.mu_w[g], "lam_w": self.lam_w[g], "mu_v": self.mu_v[g], "lam_v": self.lam_v[g]}
                for g, name in enumerate(self.group_names)
            },
        }


def torch_zeros_like(tensor):
    import torch

    return torch.zeros_like(tensor)


def _host_view(tensor) -> np.ndarray:
    """A float64 numpy view of a CPU tensor (the numba kernels run on the CPU path only)."""
    return np.ascontiguousarray(tensor.detach().numpy())


def _host_copy(tensor) -> np.ndarray:
    return np.array(tensor.detach().cpu().numpy(), dtype=np.float64, order="C")
