"""The FM sampler's new pieces against brute force on tiny problems (the myFM comparison itself is
bench/fm_vs_myfm.py): libFM's hyper-parameter draws, the per-entity sums of the relation-block trick,
the numba (CPU) and torch (CUDA) paths of one sweep, the Rao-Blackwellised item block, and CUDA vs CPU."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from recsys.models._fm_sampler import ALPHA_0, BETA_0, GAMMA_0, MU_0, _FMState, draw_group_hyper
from recsys.models.fm import FactorizationMachine
from recsys.models.mf import BiasedMF


def _ratings(n_users=40, n_items=30, density=0.5, seed=0):
    rng = np.random.default_rng(seed)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    p, q = rng.normal(0, 0.6, (n_users, 2)), rng.normal(0, 0.6, (n_items, 2))
    ratings = 3.5 + rng.normal(0, 0.3, n_users)[users] + (p[users] * q[items]).sum(1) + rng.normal(0, 0.2, len(users))
    return users, items, ratings, (n_users, n_items)


def _state(seed=0, k=3, use_kernels=True, device="cpu"):
    import torch

    users, items, ratings, shape = _ratings(seed=seed)
    rng = np.random.default_rng(seed + 1)
    relation = lambda rows, cols: sp.random(rows, cols, density=0.3, random_state=rng)  # noqa: E731
    item_blocks = [("dense", rng.random((shape[1], 3)), "dense"), ("raters", relation(shape[1], shape[0]), "relation")]
    user_blocks = [("items", relation(shape[0], shape[1]), "relation")]
    dtype = torch.float64 if device == "cpu" else torch.float32
    state = _FMState(users, items, ratings, shape, item_blocks, user_blocks, k, 0.1, seed, torch.device(device), dtype)
    state.use_kernels = use_kernels and device == "cpu"
    return state


# ---- hyper-parameters ------------------------------------------------------------------------------
def test_group_hyper_draws_follow_libfm_conditionals():
    """λ | μ, θ ~ Gamma((α0 + n)/2, rate (β0 + Σ(θ − μ)²)/2) and μ | λ, θ ~ N((γ0μ0 + Σθ)/(γ0 + n),
    1/(λ(γ0 + n))), per column: Kolmogorov-Smirnov against scipy's distributions."""
    rng = np.random.default_rng(0)
    values = rng.normal([0.4, -0.2], [0.5, 1.5], size=(25, 2))
    mu_old = np.array([0.1, 0.3])
    draws = [draw_group_hyper(rng, values, mu_old) for _ in range(4000)]
    lam = np.array([d[0] for d in draws])
    mu = np.array([d[1] for d in draws])
    n = len(values)
    for column in range(2):
        rate = (BETA_0 + ((values[:, column] - mu_old[column]) ** 2).sum()) / 2
        gamma = stats.gamma(a=(ALPHA_0 + n) / 2, scale=1 / rate)
        assert stats.kstest(lam[:, column], gamma.cdf).pvalue > 1e-3
        mean = (GAMMA_0 * MU_0 + values[:, column].sum()) / (GAMMA_0 + n)
        standardised = (mu[:, column] - mean) * np.sqrt(lam[:, column] * (GAMMA_0 + n))
        assert stats.kstest(standardised, "norm").pvalue > 1e-3
    # the draws do depend on the data: a group twice as spread gets about a quarter of the precision
    wide = np.mean([draw_group_hyper(rng, 2 * values, 2 * mu_old)[0] for _ in range(2000)], axis=0)
    assert np.allclose(wide / lam.mean(0), 0.25, rtol=0.1)


def test_noise_precision_draw_follows_its_gamma_posterior():
    state = _state()
    residual = state.residual()
    alphas = []
    for _ in range(3000):
        state.draw_noise_precision(residual)
        alphas.append(state.alpha)
    rate = (BETA_0 + float((residual**2).sum())) / 2
    assert stats.kstest(alphas, stats.gamma(a=(ALPHA_0 + state.n) / 2, scale=1 / rate).cdf).pvalue > 1e-3


# ---- the relation-block trick ----------------------------------------------------------------------
def test_per_entity_sums_equal_per_rating_sums():
    """S, P, E, D of every user / item, summed rating by rating in plain Python, against the numba
    kernel (CPU) and the torch CSR products (the CUDA path), on the same state."""
    state = _state()
    state.sweep(sampling=True, reg=1.0)
    terms = state.terms()
    e = state.residual(terms).numpy()
    for side, own, other in (("user", state.users_np, state.items_np), ("item", state.items_np, state.users_np)):
        c = terms[state.other(side)][1].numpy()
        rows = state.n_users if side == "user" else state.n_items
        S, P = np.zeros((rows, state.k)), np.zeros((rows, state.k, state.k))
        E, D = np.zeros(rows), np.zeros((rows, state.k))
        for r in range(state.n):
            S[own[r]] += c[other[r]]
            P[own[r]] += np.outer(c[other[r]], c[other[r]])
            E[own[r]] += e[r]
            D[own[r]] += e[r] * c[other[r]]
        for use_kernels in (True, False):
            state.use_kernels = use_kernels
            (s, p), got_e, got_d = state.aggregates(side, state.residual(terms), terms[state.other(side)][1])
            for got, expected in ((s, S), (p, P), (got_e, E), (got_d, D)):
                np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_residual_kernel_equals_the_prediction_formula():
    state = _state()
    state.sweep(sampling=True, reg=1.0)
    fast = state.residual().numpy()
    state.use_kernels = False
    np.testing.assert_allclose(fast, state.residual().numpy(), rtol=1e-12, atol=1e-12)


def test_cpu_kernels_and_the_torch_path_make_the_same_chain():
    """Same seed, one state on the numba kernels and one on the torch CSR products (what CUDA runs):
    the same draws, so the same parameters after three Gibbs sweeps, up to rounding."""
    fast, plain = _state(use_kernels=True), _state(use_kernels=False)
    for _ in range(3):
        fast.sweep(sampling=True, reg=1.0)
        plain.sweep(sampling=True, reg=1.0)
    for name, value in fast.parameters().items():
        np.testing.assert_allclose(value, plain.parameters()[name], rtol=1e-7, atol=1e-9, err_msg=name)


def test_rao_blackwellised_item_block_is_the_conditional_mean():
    """The kept item parameters are the mode (= mean) of their Gaussian conditional given the rest:
    the gradient of α Σ(y − ŷ)² + Σ λ(θ − μ)² over the item ids' (w, v) vanishes there, computed by
    autograd on the explicit per-rating design."""
    import torch

    state = _state(seed=3)
    for _ in range(4):
        state.sweep(sampling=True, reg=1.0)
    p = state.parameters(rao_blackwell=True)
    drawn = state.parameters()
    assert not np.allclose(p["w_item"], drawn["w_item"])  # the draw differs from the mean ...
    np.testing.assert_array_equal(p["w_user"], drawn["w_user"])  # ... only for the item block
    users, items = state.users_np, state.items_np
    item_x, user_x = state.design["item"].x.toarray(), state.design["user"].x.toarray()
    w_item = torch.tensor(p["w_item"], requires_grad=True)
    v_item = torch.tensor(p["v_item"], requires_grad=True)
    x_i, x_u = torch.tensor(item_x[items]), torch.tensor(user_x[users])
    a = torch.tensor(p["v_user"][users]) + x_u @ torch.tensor(p["v_user_side"])
    g = x_i @ torch.tensor(p["v_item_side"])
    c = v_item[items] + g

    def intra(x, v_own, vs):
        s = x @ vs
        return (v_own * s).sum(1) + 0.5 * ((s**2).sum(1) - (x**2) @ (vs**2).sum(1))

    vs_u, vs_i = torch.tensor(p["v_user_side"]), torch.tensor(p["v_item_side"])
    predicted = (
        p["w0"]
        + torch.tensor(p["w_user"][users])
        + x_u @ torch.tensor(p["w_user_side"])
        + intra(x_u, torch.tensor(p["v_user"][users]), vs_u)
        + w_item[items]
        + x_i @ torch.tensor(p["w_item_side"])
        + intra(x_i, v_item[items], vs_i)
        + (a * c).sum(1)
    )
    group = state.id_group["item"]
    prior = state.lam_w[group] * (w_item - state.mu_w[group]) ** 2
    prior_v = (torch.tensor(state.lam_v[group]) * (v_item - torch.tensor(state.mu_v[group])) ** 2).sum(1)
    objective = state.alpha * ((torch.tensor(state.y_np) - predicted) ** 2).sum() + prior.sum() + prior_v.sum()
    objective.backward()
    assert w_item.grad.abs().max() < 1e-7 and v_item.grad.abs().max() < 1e-7


# ---- CUDA --------------------------------------------------------------------------------------------
def _cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the CUDA path (torch CSR products, float32) is checked on a GPU machine")
    return torch.device("cuda")


def test_cuda_and_cpu_agree():
    """Same data and seed on CUDA (float32, torch path) and CPU (float64, numba kernels).

    Tolerances: ALS is deterministic, so predictions agree to float32 rounding (1e-3 stars);
    MCMC chains drift apart in float32, so test RMSEs agree within 0.01 (the sampler's own spread)."""
    _cuda()
    users, items, ratings, _ = _ratings(n_users=120, n_items=90, density=0.4, seed=5)
    frame = pd.DataFrame({"user_id": users + 1, "item_id": items + 1, "rating": np.clip(ratings, 1, 5)})
    test = frame.sample(frac=0.2, random_state=0)
    train = frame.drop(test.index)
    test = test[test.user_id.isin(train.user_id) & test.item_id.isin(train.item_id)]
    genres = pd.DataFrame(
        (np.random.default_rng(1).random((90, 5)) < 0.3).astype(float), index=pd.Index(np.arange(1, 91), name="item_id")
    )
    truth = test.rating.to_numpy()
    for make, tolerance in (
        (lambda d: FactorizationMachine(n_factors=3, side_features=genres, implicit="both", solver="als", n_epochs=8, device=d), "predictions"),
        (lambda d: BiasedMF(n_factors=3, n_epochs=8, device=d), "predictions"),
        (lambda d: FactorizationMachine(n_factors=3, side_features=genres, implicit="both", n_epochs=60, burn_in=20, device=d), "rmse"),
        (lambda d: BiasedMF(n_factors=3, solver="mcmc", n_epochs=60, burn_in=20, device=d), "rmse"),
    ):  # fmt: skip
        cpu = make("cpu").fit(train)
        gpu = make("cuda").fit(train)
        assert gpu.device_.startswith("cuda") and cpu.device_ == "cpu"
        on_cpu, on_gpu = cpu.predict(test.user_id, test.item_id), gpu.predict(test.user_id, test.item_id)
        if tolerance == "predictions":
            np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-3)
        else:
            rmse = lambda p: float(np.sqrt(np.mean((p - truth) ** 2)))  # noqa: E731
            assert abs(rmse(on_gpu) - rmse(on_cpu)) < 0.01, (rmse(on_gpu), rmse(on_cpu))
