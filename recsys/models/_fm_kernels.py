"""Numba kernels of the FM's Gibbs / ALS sweeps (private; used by ``_fm_sampler._FMState``)."""

from __future__ import annotations

import numpy as np

# ---- coordinate-wise kernels on per-entity sums (numba) -------------------------------------------
# The side-feature coordinates are drawn one at a time (libFM's scheme; a feature shared by many rows
# interacts with the other features of its rows, so no exact joint block exists). Every rating of
# entity e (an item, say) sees the same side-feature row x_e, so the sums a coordinate needs are
# taken over entities, not ratings (the relation-block trick of Rendle 2013 / myFM's RelationBlock):
#   n_e  ratings of e,  E_e = Σ_r e_r,  S_e = Σ_r a_u,  P_e = Σ_r a_u a_uᵀ,  D_e = Σ_r e_r a_u,
# where a_u is the other side's factor sum and C_e = v_e + x_e V the entity's own. One coordinate
# then costs O(nnz of its column), a whole sweep O(nnz(X) k + n_entities k²). Written as plain
# Python loops and compiled with numba (a dependency of umap-learn, already installed); without
# numba they run as Python, slowly but correctly.


def _linear_coordinates(indptr, indices, data, columns, groups, w, mu, lam, alpha, n, E, D, S, noise, sampling):
    """w_j for j in `columns`: ŷ_r = ... + w_j x_ej, so h_r = x_ej."""
    k = S.shape[1]
    for j in columns:
        h2 = 0.0
        he = 0.0
        for p in range(indptr[j], indptr[j + 1]):
            e = indices[p]
            x = data[p]
            h2 += x * x * n[e]
            he += x * E[e]
        g = groups[j]
        old = w[j]
        precision = alpha * h2 + lam[g]
        new = (alpha * (he + old * h2) + lam[g] * mu[g]) / precision
        if sampling:
            new += noise[j] / np.sqrt(precision)
        delta = new - old
        w[j] = new
        for p in range(indptr[j], indptr[j + 1]):
            e = indices[p]
            step = delta * data[p]
            E[e] -= step * n[e]
            for f in range(k):
                D[e, f] -= step * S[e, f]


def _factor_coordinates(indptr, indices, data, groups, V, mu, lam, alpha, n, E, Dt, St, P, Ct, noise, sampling):
    """v_jf for every feature j, factor by factor: h_r = x_ej (a_uf + g_ef), g_ef = C_ef − x_ej v_jf.

    D, S, C come factor-major (k x n_entities, contiguous rows), P as n_entities x k x k.
    """
    d, k = V.shape
    n_entities = len(n)
    total = np.zeros(n_entities)
    total_g = np.zeros(n_entities)
    for f in range(k):
        total[:] = 0.0
        total_g[:] = 0.0
        c, s, dd = Ct[f], St[f], Dt[f]
        pff = np.empty(n_entities)
        for e in range(n_entities):
            pff[e] = P[e, f, f]
        for j in range(d):
            old = V[j, f]
            h2 = 0.0
            he = 0.0
            for p in range(indptr[j], indptr[j + 1]):
                e = indices[p]
                x = data[p]
                g = c[e] - x * old
                h2 += x * x * (pff[e] + 2.0 * g * s[e] + n[e] * g * g)
                he += x * (dd[e] + g * E[e])
            group = groups[j]
            precision = alpha * h2 + lam[group, f]
            new = (alpha * (he + old * h2) + lam[group, f] * mu[group, f]) / precision
            if sampling:
                new += noise[j, f] / np.sqrt(precision)
            delta = new - old
            V[j, f] = new
            if delta == 0.0:
                continue
            for p in range(indptr[j], indptr[j + 1]):
                e = indices[p]
                x = data[p]
                g = c[e] - x * old
                step = delta * x
                E[e] -= step * (s[e] + n[e] * g)
                dd[e] -= step * (pff[e] + g * s[e])
                total[e] += step
                total_g[e] += step * g
                c[e] += step
        # the other columns of D_e = Σ e_r a_u moved too: Δe_r = −Σ_j step_j (a_uf + g_ef)
        for f2 in range(k):
            if f2 != f:
                row, s2 = Dt[f2], St[f2]
                for e in range(n_entities):
                    row[e] -= total[e] * P[e, f, f2] + total_g[e] * s2[e]


def _rating_sums(indptr, other, position, e, other_sum, outer, S, P, E, D):
    """Per entity (CSR rows): E = Σ e_r, D = Σ e_r c_r and, with `outer`, S = Σ c_r, P = Σ c_r c_rᵀ."""
    k = other_sum.shape[1]
    for entity in range(len(indptr) - 1):
        for p in range(indptr[entity], indptr[entity + 1]):
            o = other[p]
            error = e[position[p]]
            E[entity] += error
            for f in range(k):
                D[entity, f] += error * other_sum[o, f]
            if outer:
                for f in range(k):
                    cf = other_sum[o, f]
                    S[entity, f] += cf
                    for f2 in range(f, k):
                        P[entity, f, f2] += cf * other_sum[o, f2]
        if outer:
            for f in range(k):
                for f2 in range(f + 1, k):
                    P[entity, f2, f] = P[entity, f, f2]


def _residual(y, users, items, w0, bias_u, bias_i, a, c, out):
    """e_r = y_r − (w0 + b_u + b_i + <a_u, c_i>) for every rating."""
    k = a.shape[1]
    for r in range(len(y)):
        u = users[r]
        i = items[r]
        total = w0 + bias_u[u] + bias_i[i]
        for f in range(k):
            total += a[u, f] * c[i, f]
        out[r] = y[r] - total


_KERNELS: dict = {}


def _kernel(name: str):
    if name not in _KERNELS:
        function = {
            "linear": _linear_coordinates,
            "factors": _factor_coordinates,
            "sums": _rating_sums,
            "residual": _residual,
        }[name]
        try:
            import numba

            function = numba.njit(cache=True, nogil=True)(function)
        except ImportError:  # pragma: no cover - numba comes with umap-learn
            pass
        _KERNELS[name] = function
    return _KERNELS[name]
