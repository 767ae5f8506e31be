"""The FM's prediction formula with the unseen-id rules (private; see ``fm.py``)."""

from __future__ import annotations

import numpy as np

UNSEEN_RULES = ("prior", "user_average", "average", "zero")


# ---- prediction ------------------------------------------------------------------------------------
def _squared(x):
    import scipy.sparse as sp

    return x.multiply(x).tocsr() if sp.issparse(x) else np.square(x)


def _fm_side(p: dict, side: str, codes: np.ndarray, x, x_squared=None):
    """Per distinct user (or item), an unseen id counted as zeros: linear part, within-row pairwise
    part and factor sum (a_u or c_i, see _FMState). `x` (dense or scipy sparse) is the side row;
    `x_squared` its elementwise square, when the caller has it already."""
    known = codes >= 0
    safe = np.where(known, codes, 0)
    v = p[f"v_{side}"][safe] * known[:, None]
    linear = p[f"w_{side}"][safe] * known
    if x.shape[1] == 0:
        return linear, np.zeros(len(codes)), v
    vs = p[f"v_{side}_side"]
    feature_sum = np.asarray(x @ vs)
    squares = np.asarray((_squared(x) if x_squared is None else x_squared) @ (vs**2).sum(1)).ravel()
    linear = linear + np.asarray(x @ p[f"w_{side}_side"]).ravel()
    intra = (v * feature_sum).sum(1) + 0.5 * ((feature_sum**2).sum(1) - squares)
    return linear, intra, v + feature_sum


def stand_in_rows(matrix) -> dict:
    """Per side, the binary pattern whose rows are the other side's entities (see stand_in_parameters)."""
    import scipy.sparse as sp

    pattern = sp.csr_matrix(matrix, copy=True)
    pattern.data[:] = 1.0
    return {"item": pattern, "user": pattern.T.tocsr()}


def stand_in_parameters(p: dict, matrix, id_parts: dict | None = None, rows_by_side: dict | None = None) -> dict:
    """The id parameters an unseen user/item borrows (``unseen`` rules of FactorizationMachine).

    ``*_unseen``: the rating-weighted mean id ("an average rated item"); ``*_by_other``: per user,
    the mean over the items it rated in training (per item, over its raters). `matrix`: the
    training users x items rating matrix (its pattern is used). `id_parts`: per side, each training
    entity's (bias, factor sum) of what only training entities have (id and implicit-feedback
    rows); averaged instead of the bare id parameters, so the stand-in is an average entity as the
    model sees it (default: the id parameters alone). `rows_by_side`: stand_in_rows(matrix), when
    the caller has it already.
    """
    by_side = rows_by_side or stand_in_rows(matrix)  # rows: the other side's entities
    out = dict(p)
    for side, rows in by_side.items():
        w, v = id_parts[side] if id_parts else (p[f"w_{side}"], p[f"v_{side}"])
        stacked = np.column_stack([w, v])
        counts = np.asarray(rows.sum(axis=0)).ravel()  # ratings per entity of this side
        mean = counts @ stacked / counts.sum()
        out[f"w_{side}_unseen"], out[f"v_{side}_unseen"] = float(mean[0]), mean[1:]
        per_other = np.asarray(rows @ stacked) / np.asarray(rows.sum(axis=1))
        out[f"w_{side}_by_other"], out[f"v_{side}_by_other"] = per_other[:, 0], per_other[:, 1:]
    return out


def _imputed_ids(p: dict, side: str, own_codes: np.ndarray, other_codes: np.ndarray, unseen: str):
    """Stand-in (w, v) per pair for an unseen user/item id; zeros where the id is known.

    "prior": the id group's prior mean (the posterior of a parameter no rating touched);
    "average": the rating-weighted mean id; "user_average": the mean over the ids the other side of
    the pair rated in training (the items this user rated, the users who rated this item), else
    the rating-weighted mean; "zero": nothing (the textbook FM).
    """
    k = p["v_user"].shape[1]
    unknown = own_codes < 0
    w, v = np.zeros(len(own_codes)), np.zeros((len(own_codes), k))
    if unseen == "zero" or not unknown.any():
        return w, v
    if unseen == "prior":
        w[unknown], v[unknown] = p[f"w_{side}_prior"], p[f"v_{side}_prior"]
        return w, v
    w[unknown], v[unknown] = p[f"w_{side}_unseen"], p[f"v_{side}_unseen"]
    if unseen == "user_average":
        by_other = unknown & (other_codes >= 0)
        w[by_other] = p[f"w_{side}_by_other"][other_codes[by_other]]
        v[by_other] = p[f"v_{side}_by_other"][other_codes[by_other]]
    return w, v


def _fm_formula(
    p: dict,
    user_codes,
    item_codes,
    item_x,
    user_x,
    unseen: str = "zero",
    user_rows=None,
    item_rows=None,
    item_x_squared=None,
    user_x_squared=None,
) -> np.ndarray:
    """ŷ = w0 + Σ w_j x_j + ½ Σ_f [(Σ_j v_jf x_j)² − Σ_j v_jf² x_j²] with x = [user | item | side features].

    The pairwise sum splits into user-side pairs + item-side pairs + <a_u, c_i>, so the arguments may
    describe each distinct user/item once, with `user_rows`/`item_rows` mapping pairs to them. An
    unseen id's stand-in parameters (w*, v*, see _imputed_ids; `p` then carries the stand-ins of
    stand_in_parameters) add w* + <v*, own side's factor sum> + their share of the cross term.
    """
    lin_u, intra_u, a = _fm_side(p, "user", user_codes, user_x, user_x_squared)
    lin_i, intra_i, c = _fm_side(p, "item", item_codes, item_x, item_x_squared)
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
