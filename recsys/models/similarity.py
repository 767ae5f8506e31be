"""Similarity matrices shared by the neighbourhood models and the top-N studies.

Two families:
- `cosine_similarity_matrix`: plain cosine between full rows (profiles, item embeddings).
- `corated_cosine` / `corated_pearson`: Surprise's user-user similarities, computed only over the
  items both users rated, with a minimum number of common items (`min_support`). They are written
  as sparse matrix products instead of Surprise's triple loop, but follow its formulas exactly
  (surprise/similarities.pyx), so `UserKNN` can reproduce `KNNWithMeans` to the last digit.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.errors import InvalidInput


def _as_float_rows(X) -> sp.csr_matrix | np.ndarray:
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InvalidInput(f"expected a 2-D matrix of row vectors, got shape {X.shape}")
    return X


def _row_norms(X) -> np.ndarray:
    if sp.issparse(X):
        return np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return np.linalg.norm(X, axis=1)


def unit_rows(X):
    """Rows scaled to unit length; all-zero rows stay zero (no direction, so no similarity)."""
    return _normalise_rows(_as_float_rows(X))


def _normalise_rows(X):
    norms = _row_norms(X)
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    if sp.issparse(X):
        return sp.diags(inverse) @ X
    return X * inverse[:, None]


def cosine_similarity_matrix(X, Y=None, dtype=np.float64) -> np.ndarray:
    """Cosine similarity between the rows of X (and the rows of Y when given), dense result.

    Rows that are all zero (a user without a profile, an item without features) have similarity
    0 with everything, themselves included, instead of NaN: callers treat 0 as "no evidence".
    Accepts dense arrays or scipy sparse matrices.
    """
    Xn = _normalise_rows(_as_float_rows(X))
    Yn = Xn if Y is None else _normalise_rows(_as_float_rows(Y))
    if Y is not None and Xn.shape[1] != Yn.shape[1]:
        raise InvalidInput(f"X has {Xn.shape[1]} columns but Y has {Yn.shape[1]}")
    product = Xn @ Yn.T
    if sp.issparse(product):
        product = product.toarray()
    product = np.asarray(product, dtype=np.float64)
    # Rounding can push unit vectors a hair past +-1.
    np.clip(product, -1.0, 1.0, out=product)
    return product.astype(dtype, copy=False)


def _corated_sums(ratings: sp.csr_matrix):
    """Per user pair: sum r_u r_v, common-item counts, and the per-side sums over common items."""
    R = sp.csr_matrix(ratings, dtype=np.float64)
    R.eliminate_zeros()
    rated = R.copy()
    rated.data = np.ones_like(rated.data)
    squares = R.multiply(R).tocsr()
    products = (R @ R.T).toarray()
    common = (rated @ rated.T).toarray()
    # squares_left[u, v] = sum over items both rated of r_ui^2
    squares_left = (squares @ rated.T).toarray()
    sums_left = (R @ rated.T).toarray()
    return products, common, squares_left, sums_left


def corated_cosine(ratings: sp.csr_matrix, min_support: int = 1) -> np.ndarray:
    """Surprise's cosine: sum_common r_u r_v / sqrt(sum_common r_u^2 * sum_common r_v^2).

    Pairs with fewer than `min_support` common items get 0; the diagonal is 1 (as in Surprise).
    Ratings must be non-zero (MovieLens scales start at 1): zero entries mean "not rated".
    """
    products, common, squares_left, _ = _corated_sums(ratings)
    denominator = np.sqrt(squares_left * squares_left.T)
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(denominator > 0, products / np.where(denominator > 0, denominator, 1.0), 0.0)
    similarity[common < max(min_support, 1)] = 0.0
    np.fill_diagonal(similarity, 1.0)
    return similarity


def corated_pearson(ratings: sp.csr_matrix, min_support: int = 1) -> np.ndarray:
    """Surprise's Pearson over common items (means taken over the common items of each pair).

    n·Σr_u r_v − Σr_u Σr_v / sqrt((n·Σr_u² − (Σr_u)²)(n·Σr_v² − (Σr_v)²)); 0 where the
    denominator is 0 or the pair has fewer than `min_support` common items; diagonal 1.
    """
    products, common, squares_left, sums_left = _corated_sums(ratings)
    sums_right = sums_left.T
    numerator = common * products - sums_left * sums_right
    spread_left = common * squares_left - sums_left**2
    denominator = np.sqrt(np.clip(spread_left * spread_left.T, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), 0.0)
    similarity[common < max(min_support, 1)] = 0.0
    np.fill_diagonal(similarity, 1.0)
    return similarity


def stable_topk(scores: np.ndarray, m: int) -> np.ndarray:
    """Column indices of the m largest entries of every row, best first, ties to the lower column:
    exactly ``np.argsort(-scores, axis=1, kind="stable")[:, :m]``, in O(columns) per row plus a
    sort of the kept ones (argpartition finds the m-th value; equal values are then taken in
    column order). -inf entries sort last, like in the full sort."""
    scores = np.asarray(scores)
    n_rows, n_columns = scores.shape
    m = min(int(m), n_columns)
    if m <= 0:
        return np.empty((n_rows, 0), dtype=np.int64)
    if m >= n_columns // 2:
        return np.argsort(-scores, axis=1, kind="stable")[:, :m]
    threshold = -np.partition(-scores, m - 1, axis=1)[:, m - 1 : m]
    greater = scores > threshold
    need = m - greater.sum(axis=1, keepdims=True)
    equal = scores == threshold
    chosen = greater | (equal & (np.cumsum(equal, axis=1) <= need))
    columns = np.nonzero(chosen)[1].reshape(n_rows, m)  # ascending column order per row
    kept = np.take_along_axis(scores, columns, axis=1)
    return np.take_along_axis(columns, np.argsort(-kept, axis=1, kind="stable"), axis=1)
