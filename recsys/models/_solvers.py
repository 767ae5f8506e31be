"""Private numerical kernels of the factor models (torch): shared by BiasedMF and FactorizationMachine.

- device/dtype/thread helpers and CSR products (sparse sums without float atomics, so a seed
  gives identical results on CPU);
- ``_ridge_rows``: per-row closed-form ridge solves (ALS) and their Gaussian posterior draws (Gibbs);
- ``default_burn_in``: sweeps discarded before MCMC samples are kept.

The FM's own numerics live beside this module: ``_fm_sampler`` (``_FMState``: blocked ALS / Gibbs
sweeps, libFM's MCMC, and ``draw_group_hyper``), ``_fm_kernels`` (its numba kernels) and
``_fm_predict`` (the FM's prediction formula with the unseen-id rules).

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
    """Run a CPU fit on one torch (and BLAS) thread when the problem is small, then restore.

    The sweeps are many small tensor ops; waking a second thread costs more than it saves (a tiny
    fit took 19 s instead of 0.8 s with 2 threads on a busy 2-core machine; a 19 x 19 numpy Gram
    matrix took 150 ms instead of 1 ms with OpenBLAS's threads contending).
    """

    def __init__(self, device, n_ratings: int, n_threads: int | None):
        import torch

        self.torch = torch
        if n_threads is None:
            n_threads = 1 if (device.type == "cpu" and n_ratings < SMALL_PROBLEM_RATINGS) else None
        self.wanted = n_threads

    def __enter__(self):
        from threadpoolctl import threadpool_limits  # comes with scikit-learn

        self.previous = self.torch.get_num_threads()
        self.blas = threadpool_limits(limits=int(self.wanted), user_api="blas") if self.wanted else None
        if self.wanted:
            self.torch.set_num_threads(int(self.wanted))
        return self

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.previous)
        if self.blas is not None:
            self.blas.restore_original_limits()
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
    """Σ_{c in row} values[r, c] · dense[c] for every row, as one CSR x dense product.

    `values` None: the pattern's ones (no gather of a ones vector into row order)."""
    import torch

    crow, col, order, shape = pattern
    if values is None:
        values = torch.ones(len(col), dtype=dense.dtype, device=dense.device)
    else:
        values = values[order]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
        matrix = torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)
    return matrix @ dense


def _ridge_rows(pattern, targets, other, ridge, *, alpha=1.0, generator=None, prior_mean=None, with_mean=False):
    """Solve (or sample) one ridge regression per row: the ALS / Gibbs block update.

    For row r with ratings on columns c: A_r = α Σ_c x_c x_cᵀ + diag(ridge_r),
    b_r = α Σ_c y_rc x_c + ridge_r ⊙ prior_mean. Returns A_r⁻¹ b_r, or with a generator one draw
    from N(A_r⁻¹ b_r, A_r⁻¹) (with `with_mean`: the pair (draw, A_r⁻¹ b_r)).
    """
    import torch

    n_other, dim = other.shape
    # The Gram matrices are symmetric: only the upper triangle's dim (dim + 1) / 2 products go
    # through the sparse product (the dominant cost, about half of dim²), then are mirrored. Each
    # entry is the same sum of the same products as the full product's, so the result is identical.
    upper_rows, upper_cols = torch.triu_indices(dim, dim, device=other.device)
    outer = other[:, upper_rows] * other[:, upper_cols]
    upper = _row_sums(pattern, None, outer) * alpha
    gram = upper.new_zeros(upper.shape[0], dim, dim)
    gram[:, upper_rows, upper_cols] = upper
    gram[:, upper_cols, upper_rows] = upper
    rhs = _row_sums(pattern, targets, other) * alpha
    if prior_mean is not None:
        rhs = rhs + ridge * prior_mean
    system = gram + torch.diag_embed(ridge)
    chol = torch.linalg.cholesky(system)
    mean = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    if generator is None:
        return mean
    noise = torch.randn(mean.shape, generator=generator, dtype=torch.float64).to(mean.device, mean.dtype)
    # x = mean + L^-T z has covariance (L Lᵀ)^-1 = A^-1.
    draw = mean + torch.linalg.solve_triangular(chol.mT, noise.unsqueeze(-1), upper=True).squeeze(-1)
    return (draw, mean) if with_mean else draw


def _start_fit(model: RatingPredictor, train: pd.DataFrame):
    """What every MF/FM fit does first: validate, learn the rating scale, index ids, pick the device."""
    check_training_ratings(train)
    model.learn_rating_scale(train)
    model._validate_params()
    device = _resolve_device(model.device)
    model.device_ = str(device)
    model.ratings_ = RatingMatrix(train)
    return device, _float_dtype(device)


def default_burn_in(burn_in: int | None, n_epochs: int) -> int:
    """Sweeps discarded before samples are kept: as given, else 10 (at most half the sweeps)."""
    return int(burn_in) if burn_in is not None else min(10, n_epochs // 2)
