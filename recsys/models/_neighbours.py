"""Blockwise neighbour search for the user-KNN family (private kernels of knn.py, profiles.py).

Nothing here stores a users x users matrix. Similarities are computed for a *block* of users
against all users, used, and dropped:

1. **Similarity block.** ``(B, n_users)`` float64 on the CPU, ``(n_users, B)`` (columns = the
   block) in torch. Surprise's co-rated cosine/Pearson come from per-pair sums over the items both
   users rated; on the CPU a numba kernel accumulates them in one pass over the rating matrix (for
   every user v, for every item i of v, for every block user u who rated i), with the block's
   accumulators (a few KB) in cache; in torch they are sparse x dense products (cuSPARSE on a GPU).
   Cost: Σ over items of (block raters × all raters), i.e. Σ_i n_i² for all users, with no sparse
   output and no dense rating matrix. scipy's sparse product would build three sparse outputs of
   the block's (almost dense) similarity rows: we deliberately do not use it here.
2. **Selection.** For every test pair (u, i) of the block, the K_max users most similar to u among
   the raters of i (Surprise's definition), ordered by decreasing similarity with ties in the
   raters' training-frame order (Surprise's ``heapq.nlargest`` tie order), then cumulative sums
   over that order give the prediction for every K at once. CPU: a bounded heap per pair (numba);
   torch: raters padded to power-of-two buckets, ``topk`` plus an exact tie fix, in chunks.

Exactness: the sums are accumulated over the common items in increasing item order, as scipy's
sparse product did in the dense implementation, and the prediction sums run over the neighbours
in the same order as the dense ``np.cumsum``: results are bit-identical to the dense code (and so
to Surprise on ML-100K). On half-star scales every partial sum is exact in float64 anyway, so the
torch path agrees bit for bit on such data too; on other data it may differ in the last ulp.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# ---- numba kernels ------------------------------------------------------------------------------
# Plain Python loops compiled by numba (installed with umap-learn; the FM kernels use it the same
# way); without numba they run as Python, slowly but correctly. fastmath stays off: the sums must
# round exactly as the dense numpy code did.
try:
    import numba

    prange = numba.prange
except ImportError:  # pragma: no cover - numba comes with umap-learn
    numba = None
    prange = range


def _jit(function, parallel: bool = False):
    if numba is None:  # pragma: no cover
        return function
    return numba.njit(cache=True, nogil=True, parallel=parallel)(function)


def _corated_columns(
    indptr,
    indices,
    data,
    item_ptr,
    item_users,
    item_values,
    n_block,
    kind,
    support,
    dense,
    partials,
    norms,
    columns,
    out,
):
    """out[u, v] = similarity of block user u and user v, for every v: Surprise's co-rated cosine
    (kind 0) or Pearson (kind 1), or the plain cosine of the full rating rows (kind 2, `norms` =
    (block row norms, all row norms)).

    Sparse part: for every user v (in parallel chunks of v), for every item i of v in increasing
    item order, for every block user u who rated i, accumulate the pair's sums (a few KB per
    block, in cache). Dense part (``dense``): the same sums over the most popular items, already
    computed by BLAS as ``partials[s][v, u]`` (float32, exact on a half-star scale), added before
    the similarity of the pair is finished.
    """
    n_columns = len(columns)
    n_chunks = min(n_columns, 64)
    pearson = kind == 1
    width = 8 if pearson else 4  # per block user: product, squares u, squares v, count[, sums u, v]
    n_sums = 6 if pearson else 4
    for chunk in prange(n_chunks):
        acc = np.zeros(n_block * width)
        for column in range(chunk * n_columns // n_chunks, (chunk + 1) * n_columns // n_chunks):
            v = columns[column]
            for p in range(indptr[v], indptr[v + 1]):
                item = indices[p]
                rv = data[p]
                rv2 = rv * rv
                for q in range(item_ptr[item], item_ptr[item + 1]):
                    base = item_users[q] * width
                    ru = item_values[q]
                    acc[base] += ru * rv
                    acc[base + 1] += ru * ru
                    acc[base + 2] += rv2
                    acc[base + 3] += 1.0
                    if pearson:
                        acc[base + 4] += ru
                        acc[base + 5] += rv
            for u in range(n_block):
                base = u * width
                if dense:
                    for c in range(n_sums):
                        acc[base + c] += partials[c, v, u]
                common = acc[base + 3]
                similarity = 0.0
                if kind == 2:
                    denominator = norms[0, u] * norms[1, v]
                    if denominator > 0:
                        similarity = acc[base] / denominator
                elif common >= support:
                    if pearson:
                        numerator = common * acc[base] - acc[base + 4] * acc[base + 5]
                        left = common * acc[base + 1] - acc[base + 4] * acc[base + 4]
                        right = common * acc[base + 2] - acc[base + 5] * acc[base + 5]
                        denominator = np.sqrt(max(left * right, 0.0))
                    else:
                        numerator = acc[base]
                        denominator = np.sqrt(acc[base + 1] * acc[base + 2])
                    if denominator > 0:
                        similarity = numerator / denominator
                out[u, column] = similarity
                for c in range(width):
                    acc[base + c] = 0.0


def _heap_sift_down(sims, positions, size, root):
    """Min-heap on (similarity, -position): the root is the worst kept neighbour."""
    while True:
        child = 2 * root + 1
        if child >= size:
            return
        other = child + 1
        if other < size and (
            sims[other] < sims[child] or (sims[other] == sims[child] and positions[other] > positions[child])
        ):
            child = other
        if sims[child] < sims[root] or (sims[child] == sims[root] and positions[child] > positions[root]):
            sims[root], sims[child] = sims[child], sims[root]
            positions[root], positions[child] = positions[child], positions[root]
            root = child
        else:
            return


_heap_sift_down = _jit(_heap_sift_down)


def _select_curve(
    sims,
    pair_rows,
    pair_items,
    pair_out,
    rater_ptr,
    raters,
    rater_values,
    row_means,
    ks,
    k_max,
    positive_only,
    mean_centred,
    values_out,
    fallback_out,
):
    """Per pair: the K_max most similar raters of the item (ties: earlier rater first), then the
    prediction for every K in `ks` from running sums in that order (the dense code's np.cumsum)."""
    n_pairs = len(pair_rows)
    n_chunks = min(max(n_pairs, 1), 256)
    for chunk in prange(n_chunks):
        heap_sims = np.empty(k_max)
        heap_positions = np.empty(k_max, np.int64)
        order = np.empty(k_max, np.int64)
        numerators = np.empty(k_max)
        denominators = np.empty(k_max)
        for p in range(chunk * n_pairs // n_chunks, (chunk + 1) * n_pairs // n_chunks):
            row = pair_rows[p]
            item = pair_items[p]
            start = rater_ptr[item]
            n = rater_ptr[item + 1] - start
            m = min(k_max, n)
            for j in range(m):
                heap_sims[j] = sims[row, raters[start + j]]
                heap_positions[j] = j
            for j in range(m // 2 - 1, -1, -1):
                _heap_sift_down(heap_sims, heap_positions, m, j)
            for j in range(m, n):
                s = sims[row, raters[start + j]]
                if s > heap_sims[0]:  # equal similarity: the earlier rater (in the heap) wins
                    heap_sims[0] = s
                    heap_positions[0] = j
                    _heap_sift_down(heap_sims, heap_positions, m, 0)
            # Pop worst-first into the back: best-first order (sim desc, position asc).
            size = m
            while size > 0:
                size -= 1
                s = heap_sims[0]
                position = heap_positions[0]
                heap_sims[0] = heap_sims[size]
                heap_positions[0] = heap_positions[size]
                _heap_sift_down(heap_sims, heap_positions, size, 0)
                numerators[size] = s
                order[size] = position
            numerator = 0.0
            denominator = 0.0
            for j in range(m):
                s = numerators[j]
                if positive_only and not s > 0:
                    s = 0.0
                value = rater_values[start + order[j]]
                numerator += s * value
                denominator += abs(s)
                numerators[j] = numerator
                denominators[j] = denominator
            mean = row_means[p]
            for c in range(len(ks)):
                last = min(ks[c], n) - 1
                den = denominators[last]
                if den == 0:
                    values_out[c, pair_out[p]] = mean
                    fallback_out[c, pair_out[p]] = True
                else:
                    ratio = numerators[last] / den
                    values_out[c, pair_out[p]] = (mean + ratio) if mean_centred else (0.0 + ratio)
                    fallback_out[c, pair_out[p]] = False


_corated_columns = _jit(_corated_columns, parallel=True)
_select_curve = _jit(_select_curve, parallel=True)


# ---- similarity blocks ---------------------------------------------------------------------------
def _item_major_block(matrix: sp.csr_matrix, rows: np.ndarray):
    """(item_ptr, block user index, rating) of the block's ratings grouped by item, users ascending."""
    block = matrix[rows].tocsc()
    block.sort_indices()
    return block.indptr.astype(np.int64), block.indices.astype(np.int64), block.data.astype(np.float64)


# Items rated by at least this share of the users go to BLAS (dense float32 products) instead of the
# sparse kernel: an item rated by a share p of the users costs the sparse kernel ~p² n_users per
# block user and BLAS a constant; on a 2-core AVX-512 CPU the two meet near p = 0.2.
DENSE_ITEM_SHARE = 0.2
DENSE_MAX_ITEMS = 1024


class CoratedIndex:
    """What the co-rated similarity rows need: the rating matrix split into a sparse part (CSR,
    increasing item order) and, when exact, a dense float32 part for the most popular items."""

    def __init__(self, matrix: sp.csr_matrix, dense_share: float = DENSE_ITEM_SHARE):
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        matrix.sort_indices()
        n_users, n_items = matrix.shape
        counts = np.bincount(matrix.indices, minlength=n_items)
        dense = np.flatnonzero(counts >= max(dense_share * n_users, 1.0))
        dense = dense[np.argsort(-counts[dense], kind="stable")][:DENSE_MAX_ITEMS]
        data = matrix.data
        # float32 sums are exact when ratings are multiples of 1/2 and the sums stay below 2^22:
        # only then may the BLAS part be added to the sparse part without changing a bit.
        top = float(np.abs(data).max()) if len(data) else 0.0
        exact = bool(np.all(data * 2 == np.round(data * 2))) and len(dense) * max(top, 1.0) ** 2 < 2**22
        if not exact:
            dense = dense[:0]
        self.shape = matrix.shape
        self.dense_items = np.sort(dense)
        is_dense = np.zeros(n_items, dtype=bool)
        is_dense[self.dense_items] = True
        sparse = matrix.copy()
        sparse.data = np.where(is_dense[sparse.indices], 0.0, sparse.data)
        sparse.eliminate_zeros()
        self.sparse = sparse
        self.matrix = matrix
        columns = matrix[:, self.dense_items].toarray().astype(np.float32)
        self.dense_ratings = np.ascontiguousarray(columns)
        self.dense_squares = self.dense_ratings * self.dense_ratings
        self.dense_rated = (self.dense_ratings != 0).astype(np.float32)
        self.norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float64).ravel())

    def partials(self, rows: np.ndarray, pearson: bool) -> np.ndarray:
        """(n_sums, n_users, B) float32 sums over the dense items (BLAS)."""
        R, S, Z = self.dense_ratings, self.dense_squares, self.dense_rated
        Rb, Sb, Zb = R[rows].T, S[rows].T, Z[rows].T
        products = [(R, Rb), (Z, Sb), (S, Zb), (Z, Zb)]
        if pearson:
            products += [(Z, Rb), (R, Zb)]
        out = np.empty((len(products), self.shape[0], len(rows)), dtype=np.float32)
        for position, (left, right) in enumerate(products):
            np.matmul(left, right, out=out[position])
        return out


KINDS = {"cosine": 0, "pearson": 1, "plain_cosine": 2}


def corated_rows(
    index: CoratedIndex, rows: np.ndarray, kind: str, min_support: int = 1, out=None, columns=None
) -> np.ndarray:
    """(len(rows), n_users) similarities of users `rows` against every user: co-rated "cosine" or
    "pearson" (diagonal 1), or "plain_cosine" between the full rating rows (unrated = 0).
    With `columns` (user codes), only against those users: (len(rows), len(columns))."""
    n_users = index.shape[0]
    rows = np.asarray(rows, dtype=np.int64)
    full = columns is None
    columns = np.arange(n_users, dtype=np.int64) if full else np.asarray(columns, dtype=np.int64)
    out = np.empty((len(rows), len(columns))) if out is None else out[: len(rows), : len(columns)]
    pearson = kind == "pearson"
    dense = len(index.dense_items) > 0 and full  # a few columns: the sparse kernel alone
    matrix = index.sparse if dense else index.matrix
    if kind == "plain_cosine":
        norms = np.stack([index.norms[rows], index.norms])
    else:
        norms = np.zeros((2, 1))
    item_ptr, item_users, item_values = _item_major_block(matrix, rows)
    partials = index.partials(rows, pearson) if dense else np.zeros((1, 1, 1), dtype=np.float32)
    _corated_columns(
        matrix.indptr.astype(np.int64, copy=False),
        matrix.indices.astype(np.int64, copy=False),
        matrix.data,
        item_ptr,
        item_users,
        item_values,
        len(rows),
        KINDS[kind],
        float(max(min_support, 1)),
        dense,
        partials,
        norms,
        columns,
        out,
    )
    if kind != "plain_cosine":
        if full:
            out[np.arange(len(rows)), rows] = 1.0
        else:
            same = rows[:, None] == columns[None, :]
            out[same] = 1.0
    return out


def corated_columns_torch(tensors: dict, rows, kind: str, min_support: int, device):
    """(n_users, len(rows)) co-rated similarities in torch: columns are the block's users.

    `tensors` from :func:`torch_rating_tensors` (sparse CSR rating, square and indicator matrices).
    """
    import torch

    R, S, Z = tensors["ratings"], tensors["squares"], tensors["rated"]
    rows_t = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=device)
    block = _dense_rows_torch(tensors, rows_t)  # (B, n_items) ratings
    rated = (block != 0).to(block.dtype)
    squares = block * block
    products = torch.sparse.mm(R, block.T)  # Σ r_v r_u
    squares_u = torch.sparse.mm(Z, squares.T)  # Σ r_u² over the common items
    squares_v = torch.sparse.mm(S, rated.T)  # Σ r_v²
    common = torch.sparse.mm(Z, rated.T)
    del squares
    if kind == "pearson":
        sums_u = torch.sparse.mm(Z, block.T)
        sums_v = torch.sparse.mm(R, rated.T)
        numerator = common * products - sums_u * sums_v
        left = common * squares_u - sums_u * sums_u
        right = common * squares_v - sums_v * sums_v
        denominator = _sqrt(torch.clamp(left * right, min=0.0))
    else:
        numerator = products
        denominator = _sqrt(squares_u * squares_v)
    positive = denominator > 0
    similarity = torch.where(positive, numerator / torch.where(positive, denominator, 1.0), 0.0)
    similarity[common < max(min_support, 1)] = 0.0
    similarity[rows_t, torch.arange(len(rows_t), device=device)] = 1.0
    return similarity + 0.0  # no negative zeros: a radix sort would order -0.0 below 0.0


def _sqrt(x):
    """Correctly rounded square root: torch's vectorised float64 sqrt on AVX-512 CPUs is off by an
    ulp for about 1 % of inputs (torch 2.x), numpy's and CUDA's are exact; ties between
    neighbours must not depend on the engine."""
    import torch

    if x.device.type == "cpu":
        return torch.from_numpy(np.sqrt(x.numpy()))
    return torch.sqrt(x)


def torch_rating_tensors(matrix: sp.csr_matrix, device) -> dict:
    """Sparse CSR tensors of the ratings, their squares and the rated indicator, on `device`."""
    import torch

    def csr(values):
        return torch.sparse_csr_tensor(
            torch.as_tensor(matrix.indptr.astype(np.int64), device=device),
            torch.as_tensor(matrix.indices.astype(np.int64), device=device),
            torch.as_tensor(values, dtype=torch.float64, device=device),
            size=matrix.shape,
            check_invariants=False,  # built from a canonical scipy CSR matrix
        )

    data = matrix.data.astype(np.float64)
    return {
        "ratings": csr(data),
        "squares": csr(data * data),
        "rated": csr(np.ones_like(data)),
        "indptr": torch.as_tensor(matrix.indptr.astype(np.int64), device=device),
        "indices": torch.as_tensor(matrix.indices.astype(np.int64), device=device),
        "data": torch.as_tensor(data, device=device),
        "shape": matrix.shape,
    }


def _dense_rows_torch(tensors: dict, rows_t):
    import torch

    indptr, indices, data = tensors["indptr"], tensors["indices"], tensors["data"]
    starts, stops = indptr[rows_t], indptr[rows_t + 1]
    counts = stops - starts
    local = torch.repeat_interleave(torch.arange(len(rows_t), device=rows_t.device), counts)
    offsets = torch.arange(int(counts.sum()), device=rows_t.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts
    )
    positions = torch.repeat_interleave(starts, counts) + offsets
    dense = torch.zeros((len(rows_t), tensors["shape"][1]), dtype=torch.float64, device=rows_t.device)
    dense[local, indices[positions]] = data[positions]
    return dense


# ---- selection ------------------------------------------------------------------------------------
def select_curve(
    sims,
    pair_rows,
    pair_items,
    pair_out,
    raters_index,
    row_means,
    ks,
    positive_only: bool,
    mean_centred: bool,
    values_out,
    fallback_out,
) -> None:
    """Fill values_out[:, pair_out] / fallback_out[:, pair_out] from a (B, n_users) similarity block.

    `raters_index`: (rater_ptr, raters, rater_values) of the fitted model (raters per item in
    training-frame order; values mean-centred when the model is).
    """
    rater_ptr, raters, rater_values = raters_index
    ks = np.asarray(ks, dtype=np.int64)
    _select_curve(
        sims,
        np.asarray(pair_rows, dtype=np.int64),
        np.asarray(pair_items, dtype=np.int64),
        np.asarray(pair_out, dtype=np.int64),
        rater_ptr,
        raters,
        rater_values,
        np.asarray(row_means, dtype=np.float64),
        ks,
        int(ks.max()),
        bool(positive_only),
        bool(mean_centred),
        values_out,
        fallback_out,
    )


def stable_topk_torch(scores, m: int):
    """Column positions of the m largest entries per row, best first; ties: lower position first
    (numpy's stable argsort of -scores). Exactly m per row (rows need at least m columns)."""
    import torch

    threshold = torch.topk(scores, m, dim=1).values[:, m - 1 : m]
    greater = scores > threshold
    need = m - greater.sum(dim=1, keepdim=True)
    equal = scores == threshold
    chosen = greater | (equal & (torch.cumsum(equal.to(torch.int32), dim=1) <= need))
    positions = torch.nonzero(chosen)[:, 1].view(scores.shape[0], m)  # ascending within each row
    kept = scores.gather(1, positions)
    order = torch.sort(kept, dim=1, descending=True, stable=True).indices
    return positions.gather(1, order)


def select_curve_torch(
    columns,
    pair_cols,
    pair_items,
    raters_torch,
    row_means,
    ks,
    positive_only: bool,
    mean_centred: bool,
    max_cells: int = 1 << 24,
):
    """Torch version of :func:`select_curve` on an (n_users, B) similarity block; returns
    (values (len(ks), P), no_evidence (len(ks), P)) tensors for the pairs in the given order."""
    import torch

    device = columns.device
    rater_ptr, raters, rater_values = raters_torch
    pair_cols = torch.as_tensor(np.asarray(pair_cols, dtype=np.int64), device=device)
    pair_items = torch.as_tensor(np.asarray(pair_items, dtype=np.int64), device=device)
    means = torch.as_tensor(np.asarray(row_means, dtype=np.float64), device=device)
    ks_t = torch.as_tensor(np.asarray(ks, dtype=np.int64), device=device)
    k_max = int(np.max(ks))
    n_pairs = len(pair_cols)
    values = torch.empty((len(ks_t), n_pairs), dtype=torch.float64, device=device)
    no_evidence = torch.empty((len(ks_t), n_pairs), dtype=torch.bool, device=device)
    starts = rater_ptr[pair_items]
    counts = rater_ptr[pair_items + 1] - starts
    # Power-of-two buckets of rater counts: padding wastes at most half of each row.
    buckets = torch.clamp(torch.ceil(torch.log2(counts.to(torch.float64))), min=6).to(torch.int64)
    for bucket in torch.unique(buckets).tolist():
        members = torch.nonzero(buckets == bucket)[:, 0]
        width = 1 << bucket
        m = min(k_max, width)
        step = max(1, max_cells // width)
        arange = torch.arange(width, device=device)
        for first in range(0, len(members), step):
            chunk = members[first : first + step]
            n = counts[chunk]
            valid = arange[None, :] < n[:, None]
            where = torch.where(valid, starts[chunk][:, None] + arange[None, :], 0)
            scores = columns[raters[where], pair_cols[chunk][:, None]]
            scores = torch.where(valid, scores, -torch.inf)
            top = stable_topk_torch(scores, m)
            similarity = scores.gather(1, top)
            kept = valid.gather(1, top)
            if positive_only:
                similarity = torch.where(similarity > 0, similarity, 0.0)
            similarity = torch.where(kept, similarity, 0.0)
            neighbour_values = torch.where(kept, rater_values[where.gather(1, top)], 0.0)
            numerator = torch.cumsum(similarity * neighbour_values, dim=1)
            denominator = torch.cumsum(torch.abs(similarity), dim=1)
            last = (torch.minimum(ks_t[None, :], n[:, None]) - 1).clamp(max=m - 1)
            numerator = numerator.gather(1, last)
            denominator = denominator.gather(1, last)
            empty = denominator == 0
            mean = means[chunk][:, None]
            ratio = numerator / torch.where(empty, 1.0, denominator)
            estimate = torch.where(empty, mean, (mean if mean_centred else 0.0) + ratio)
            values[:, chunk] = estimate.T
            no_evidence[:, chunk] = empty.T
    return values, no_evidence
