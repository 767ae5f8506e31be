"""Approximate neighbours for the user-KNN family (``neighbours="approx"``).

Exact user KNN needs, for every test pair (u, i), the similarity of u to *every* rater of i: on
ML-20M-shaped data that is one similarity per (user, co-rater) pair, the cost of the exact model.
The approximate option restricts each user's possible neighbours to a candidate list:

1. **Candidates** (at fit): pynndescent's NN-descent graph on dense user vectors (cosine; up to
   20,000 users the exact nearest neighbours by brute force instead): the unit profiles for
   ProfileKNN (its own similarity), a truncated SVD of the row-normalised, mean-centred ratings
   for UserKNN. Surprise's co-rated similarities are not a metric on vectors, and their top is
   made of users with one or two items in common with u (similarity 1), who rarely rated the
   item asked about: taking u's top-L *by the co-rated similarity itself* as candidates gave
   worse agreement on ML-100K (RMSE 1.06 at L = 100 vs 0.96 exact) than this taste proxy. The
   graph's neighbours of u are then re-scored with the model's *own* similarity.
2. **Per pair** (u, i) with a popular item: the neighbours are the candidates of u who rated i,
   by decreasing similarity, ties in the item's training-frame rater order (as exact): the top K
   of them, possibly fewer than K ("short" lists; counted in the stats).
3. **Exact part** (optional): pairs whose item has at most ``exact_raters`` raters (default 0:
   none) are computed exactly, from the similarities of the item's test users to its raters only.
   Off by default: the raters of rarely rated movies are mostly heavy users, so even these few
   pairs cost a large share of the exact model (on ML-20M shape, exact for items with <= 1000
   raters (14 % of the test pairs) took longer than the whole exact curve). A pair none of whose
   candidates rated the item gets the user's mean (flagged in ``fallback``).

``approx_curve`` returns the share of pairs computed exactly and the share of short lists; the
agreement with the exact model is measured by ``bench/scale.py`` (RMSE difference at every K and
neighbour-set overlap, :func:`neighbour_overlap`).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

try:
    import numba

    prange = numba.prange
except ImportError:  # pragma: no cover - numba comes with umap-learn
    numba = None
    prange = range

SVD_COMPONENTS = 48
# Up to this many users the embedding's nearest neighbours are found by brute force (one BLAS
# product per block): cheaper there than pynndescent's graph and its compilation (about a minute
# per process on a 2-core machine).
EXACT_CANDIDATES_MAX_USERS = 20_000  # below: exact nearest neighbours in the embedding
_BATCH_CELLS = 1 << 24


def _jit(function, parallel: bool = False):
    if numba is None:  # pragma: no cover
        return function
    return numba.njit(cache=True, nogil=True, parallel=parallel)(function)


# ---- candidate search -------------------------------------------------------------------------------
def _corated_pairs(indptr, indices, data, left, right, kind, support, out):
    """Co-rated cosine (kind 0) / Pearson (kind 1) of the pairs (left[p], right[p]) by merging the
    two sorted item lists (same formulas and summation order as the blockwise kernel)."""
    for p in prange(len(left)):
        a, b = left[p], right[p]
        i, j = indptr[a], indptr[b]
        i_end, j_end = indptr[a + 1], indptr[b + 1]
        product = squares_u = squares_v = common = sums_u = sums_v = 0.0
        while i < i_end and j < j_end:
            if indices[i] == indices[j]:
                ru, rv = data[i], data[j]
                product += ru * rv
                squares_u += ru * ru
                squares_v += rv * rv
                common += 1.0
                sums_u += ru
                sums_v += rv
                i += 1
                j += 1
            elif indices[i] < indices[j]:
                i += 1
            else:
                j += 1
        similarity = 0.0
        if a == b:
            similarity = 1.0
        elif common >= support:
            if kind == 1:
                numerator = common * product - sums_u * sums_v
                left_spread = common * squares_u - sums_u * sums_u
                right_spread = common * squares_v - sums_v * sums_v
                denominator = np.sqrt(max(left_spread * right_spread, 0.0))
            else:
                numerator = product
                denominator = np.sqrt(squares_u * squares_v)
            if denominator > 0:
                similarity = numerator / denominator
        out[p] = similarity


_corated_pairs = _jit(_corated_pairs, parallel=True)


def corated_pair_similarity(matrix: sp.csr_matrix, left, right, kind: str, min_support: int) -> np.ndarray:
    """Surprise's co-rated similarity for the given pairs of user codes (no users x users matrix)."""
    out = np.empty(len(left))
    _corated_pairs(
        matrix.indptr.astype(np.int64, copy=False),
        matrix.indices.astype(np.int64, copy=False),
        matrix.data,
        np.asarray(left, dtype=np.int64),
        np.asarray(right, dtype=np.int64),
        1 if kind == "pearson" else 0,
        float(max(min_support, 1)),
        out,
    )
    return out


def rating_embedding(matrix: sp.csr_matrix, components: int = SVD_COMPONENTS, seed: int = 0) -> np.ndarray:
    """Dense user vectors for the candidate search: truncated SVD of the mean-centred ratings with
    unit rows (users who agree on what they rated end up close)."""
    from sklearn.decomposition import TruncatedSVD

    counts = np.diff(matrix.indptr)
    sums = np.add.reduceat(matrix.data, matrix.indptr[:-1]) if matrix.nnz else np.zeros(matrix.shape[0])
    means = np.divide(sums, counts, out=np.zeros(matrix.shape[0]), where=counts > 0)
    centred = matrix.copy()
    centred.data = matrix.data - np.repeat(means, counts)
    norms = np.sqrt(np.asarray(centred.multiply(centred).sum(axis=1)).ravel())
    centred = sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ centred
    components = max(1, min(components, min(matrix.shape) - 1))
    return TruncatedSVD(components, random_state=seed).fit_transform(centred).astype(np.float32)


def candidate_neighbours(model, n_candidates: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(codes, similarities), each (n_users, L): every user's candidate neighbours by decreasing
    model similarity (ties: lower code), -1 / -inf padding. Small data: every other user."""
    n_users = len(model.ratings_.user_ids)
    L = min(int(n_candidates), n_users - 1)
    if L <= 0:
        return np.full((n_users, 0), -1, dtype=np.int64), np.full((n_users, 0), -np.inf)
    if L >= n_users - 1:
        graph = np.tile(np.arange(n_users), (n_users, 1))
    elif n_users <= EXACT_CANDIDATES_MAX_USERS:
        graph = _nearest_by_cosine(model._candidate_vectors(), L)
    else:
        from pynndescent import NNDescent

        index = NNDescent(
            model._candidate_vectors(),
            metric="cosine",
            n_neighbors=L + 1,
            random_state=seed,
            low_memory=True,
            compressed=True,
        )
        graph = index.neighbor_graph[0].astype(np.int64)
    users = np.repeat(np.arange(n_users), graph.shape[1])
    others = graph.ravel()
    keep = (others != users) & (others >= 0)
    users, others = users[keep], others[keep]
    sims = model._pair_similarity(users, others)
    # Sort per user by (similarity desc, code asc) and keep L.
    order = np.lexsort((others, -sims, users))
    users, others, sims = users[order], others[order], sims[order]
    starts = np.searchsorted(users, np.arange(n_users))
    rank = np.arange(len(users)) - starts[users]
    kept = rank < L
    codes = np.full((n_users, L), -1, dtype=np.int64)
    similarity = np.full((n_users, L), -np.inf)
    codes[users[kept], rank[kept]] = others[kept]
    similarity[users[kept], rank[kept]] = sims[kept]
    return codes, similarity


def _nearest_by_cosine(vectors: np.ndarray, L: int) -> np.ndarray:
    """(n, L) the exact cosine nearest neighbours of every row (itself excluded), by blocks."""
    from recsys.models.similarity import stable_topk, unit_rows

    unit = unit_rows(vectors)
    n = len(unit)
    graph = np.empty((n, L), dtype=np.int64)
    block = max(1, min(n, (1 << 27) // (8 * n)))
    for start in range(0, n, block):
        rows = np.arange(start, min(start + block, n))
        sims = unit[rows] @ unit.T
        sims[np.arange(len(rows)), rows] = -np.inf
        graph[rows] = stable_topk(sims, L)
    return graph


# ---- per-pair selection among candidates -----------------------------------------------------------
def _approx_select(
    user_ptr,
    test_users,
    pair_items,
    pair_out,
    candidates,
    candidate_sims,
    indptr,
    indices,
    entry_position,
    entry_value,
    rater_ptr,
    row_means,
    ks,
    k_max,
    positive_only,
    mean_centred,
    n_items,
    values_out,
    fallback_out,
    found_out,
):
    n_groups = len(test_users)
    n_chunks = min(max(n_groups, 1), 256)
    L = candidates.shape[1]
    for chunk in prange(n_chunks):
        mark = np.full(n_items, -1, np.int64)
        numerators = np.empty(k_max)
        denominators = np.empty(k_max)
        for g in range(chunk * n_groups // n_chunks, (chunk + 1) * n_groups // n_chunks):
            u = test_users[g]
            first, last = user_ptr[g], user_ptr[g + 1]
            n_pairs = last - first
            sims = np.empty((n_pairs, L))
            positions = np.empty((n_pairs, L), np.int64)
            values = np.empty((n_pairs, L))
            counts = np.zeros(n_pairs, np.int64)
            for local in range(n_pairs):
                mark[pair_items[first + local]] = local
            for c in range(L):
                v = candidates[u, c]
                if v < 0:
                    break
                s = candidate_sims[u, c]
                for q in range(indptr[v], indptr[v + 1]):
                    local = mark[indices[q]]
                    if local >= 0:
                        n = counts[local]
                        sims[local, n] = s
                        positions[local, n] = entry_position[q]
                        values[local, n] = entry_value[q]
                        counts[local] = n + 1
            for local in range(n_pairs):
                p = first + local
                mark[pair_items[p]] = -1
                n = counts[local]
                # entries arrive by decreasing similarity; equal ones go to the earlier rater
                for a in range(1, n):
                    s, position, value = sims[local, a], positions[local, a], values[local, a]
                    b = a - 1
                    while b >= 0 and sims[local, b] == s and positions[local, b] > position:
                        sims[local, b + 1] = sims[local, b]
                        positions[local, b + 1] = positions[local, b]
                        values[local, b + 1] = values[local, b]
                        b -= 1
                    sims[local, b + 1] = s
                    positions[local, b + 1] = position
                    values[local, b + 1] = value
                m = min(k_max, n)
                numerator = 0.0
                denominator = 0.0
                for j in range(m):
                    s = sims[local, j]
                    if positive_only and not s > 0:
                        s = 0.0
                    numerator += s * values[local, j]
                    denominator += abs(s)
                    numerators[j] = numerator
                    denominators[j] = denominator
                found_out[pair_out[p]] = n
                mean = row_means[p]
                for c in range(len(ks)):
                    if m == 0:
                        values_out[c, pair_out[p]] = mean
                        fallback_out[c, pair_out[p]] = True
                        continue
                    j = min(ks[c], m) - 1
                    if denominators[j] == 0:
                        values_out[c, pair_out[p]] = mean
                        fallback_out[c, pair_out[p]] = True
                    else:
                        ratio = numerators[j] / denominators[j]
                        values_out[c, pair_out[p]] = (mean + ratio) if mean_centred else (0.0 + ratio)
                        fallback_out[c, pair_out[p]] = False


_approx_select = _jit(_approx_select, parallel=True)


def entry_index(model) -> tuple[np.ndarray, np.ndarray]:
    """Per entry of the CSR rating matrix (user v, item j): v's position among j's raters in
    training-frame order, and the rating value the prediction uses (mean-centred or raw)."""
    ptr, raters = model.item_rater_ptr_, model.item_raters_
    items = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    position = np.arange(len(raters)) - ptr[items]
    order = np.lexsort((items, raters))  # CSR order: by user, then item
    return position[order].astype(np.int64), model._rater_values[order]


def approx_curve(model, users, items, known, ks, predictions, fallback, progress=None) -> dict:
    """Fill predictions/fallback[:, known] with the approximate neighbours; returns stats."""
    from recsys.models import _neighbours as kernels

    ks = np.asarray(ks, dtype=np.int64)
    k_max = int(ks.max())
    ptr = model.item_rater_ptr_
    raters_count = np.diff(ptr)
    cap = int(model.exact_raters)
    n_raters = raters_count[items[known]]
    exact_pairs = known[n_raters <= cap]
    approx_pairs = known[n_raters > cap]
    found = np.zeros(len(users), dtype=np.int64)

    # Exact part: small items in batches (their test users x the union of their raters).
    if len(exact_pairs):
        exact_pairs = exact_pairs[np.lexsort((users[exact_pairs], items[exact_pairs]))]
        bounds = np.flatnonzero(np.r_[True, np.diff(items[exact_pairs]) != 0, True])
        first_group, n_rows, n_columns = 0, 0, 0
        for group in range(len(bounds) - 1):
            n_rows += bounds[group + 1] - bounds[group]  # pairs: at least the users
            n_columns += raters_count[items[exact_pairs[bounds[group]]]]
            if n_rows * n_columns > _BATCH_CELLS or group == len(bounds) - 2:
                batch = exact_pairs[bounds[first_group] : bounds[group + 1]]
                _exact_batch(model, users, items, batch, ks, predictions, fallback, kernels)
                found[batch] = raters_count[items[batch]]
                first_group, n_rows, n_columns = group + 1, 0, 0
        if progress is not None:
            progress(1, 2, f"exact neighbours for {len(exact_pairs):,} pairs of items with <= {cap} raters")

    # Approximate part: candidates of u who rated i.
    if len(approx_pairs):
        approx_pairs = approx_pairs[np.lexsort((items[approx_pairs], users[approx_pairs]))]
        key = users[approx_pairs] * (len(ptr) - 1) + items[approx_pairs]
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        unique_pairs = approx_pairs[first]  # a pair asked twice is computed once
        pair_users = users[unique_pairs]
        test_users, user_start = np.unique(pair_users, return_index=True)
        matrix = model.ratings_.matrix
        positions, entry_values = model._entry_index
        _approx_select(
            np.r_[user_start, len(unique_pairs)].astype(np.int64),
            test_users.astype(np.int64),
            items[unique_pairs].astype(np.int64),
            unique_pairs.astype(np.int64),
            model.candidates_,
            model.candidate_similarity_,
            matrix.indptr.astype(np.int64),
            matrix.indices.astype(np.int64),
            positions,
            entry_values,
            ptr,
            model.user_means_[pair_users],
            ks,
            k_max,
            bool(model.positive_only),
            bool(model.mean_centred),
            len(ptr) - 1,
            predictions,
            fallback,
            found,
        )
        source = unique_pairs[inverse]
        predictions[:, approx_pairs] = predictions[:, source]
        fallback[:, approx_pairs] = fallback[:, source]
        found[approx_pairs] = found[source]
        if progress is not None:
            progress(2, 2, f"candidate neighbours for {len(approx_pairs):,} pairs")
    wanted = np.minimum(k_max, raters_count[items[known]])
    stats = {
        "pairs": int(len(known)),
        "exact_share": float(len(exact_pairs) / max(len(known), 1)),
        "short_share": float(np.mean(found[known] < wanted)) if len(known) else 0.0,
        "exact_raters": int(cap),
        "candidates": int(model.candidates_.shape[1]),
    }
    logger.info("approximate neighbours: %s", stats)
    return stats


def _exact_batch(model, users, items, batch, ks, predictions, fallback, kernels) -> None:
    """Exact K curve for `batch` (pairs of a few small items) from similarities of the batch's
    users to the union of the items' raters only."""
    ptr, raters = model.item_rater_ptr_, model.item_raters_
    batch_items = np.unique(items[batch])
    spans = [np.arange(ptr[i], ptr[i + 1]) for i in batch_items]
    entries = np.concatenate(spans)
    columns = np.unique(raters[entries])
    rows = np.unique(users[batch])
    sims = model._similarity_block(rows, columns)
    # Local rater lists: the batch's items renumbered 0.., raters as column positions.
    local_ptr = np.r_[0, np.cumsum([len(span) for span in spans])].astype(np.int64)
    local_raters = np.searchsorted(columns, raters[entries]).astype(np.int64)
    local_values = model._rater_values[entries]
    kernels.select_curve(
        sims,
        np.searchsorted(rows, users[batch]),
        np.searchsorted(batch_items, items[batch]),
        batch,
        (local_ptr, local_raters, local_values),
        model.user_means_[users[batch]],
        ks,
        model.positive_only,
        model.mean_centred,
        predictions,
        fallback,
    )


# ---- agreement with the exact model -----------------------------------------------------------------
def neighbour_lists(model, user_ids, item_ids, k: int) -> np.ndarray:
    """(n_pairs, k) user codes of the neighbours N_K(u, i) the model uses (-1 padded), for a
    sample of pairs (a Python loop per pair: for measuring agreement, not for predicting)."""
    users = model.ratings_.user_codes(user_ids)
    items = model.ratings_.item_codes(item_ids)
    out = np.full((len(users), k), -1, dtype=np.int64)
    ptr, raters = model.item_rater_ptr_, model.item_raters_
    known = np.flatnonzero((users >= 0) & (items >= 0))
    if model.neighbours == "exact":
        for block in np.array_split(known, max(1, len(known) // 256)):
            if not len(block):
                continue
            rows = np.unique(users[block])
            sims = model._similarity_rows(rows)
            for p in block:
                item_raters = raters[ptr[items[p]] : ptr[items[p] + 1]]
                row = sims[np.searchsorted(rows, users[p]), item_raters]
                top = np.argsort(-row, kind="stable")[:k]
                out[p, : len(top)] = item_raters[top]
        return out
    cap = int(model.exact_raters)
    for p in known:
        item_raters = raters[ptr[items[p]] : ptr[items[p] + 1]]
        if len(item_raters) <= cap:
            row = model._similarity_block(np.array([users[p]]), item_raters)[0]
            top = np.argsort(-row, kind="stable")[:k]
            out[p, : len(top)] = item_raters[top]
            continue
        candidates = model.candidates_[users[p]]
        sims = model.candidate_similarity_[users[p]]
        where = {v: position for position, v in enumerate(item_raters)}
        rated = [(sims[c], where[v], v) for c, v in enumerate(candidates) if v >= 0 and v in where]
        rated.sort(key=lambda t: (-t[0], t[1]))
        chosen = [v for _, _, v in rated[:k]]
        out[p, : len(chosen)] = chosen
    return out


def neighbour_overlap(exact_model, approx_model, user_ids, item_ids, k: int) -> float:
    """Mean |N_K^exact ∩ N_K^approx| / |N_K^exact| over the pairs (with at least one exact neighbour)."""
    exact = neighbour_lists(exact_model, user_ids, item_ids, k)
    approx = neighbour_lists(approx_model, user_ids, item_ids, k)
    shares = []
    for a, b in zip(exact, approx):
        a = set(a[a >= 0].tolist())
        if a:
            shares.append(len(a & set(b[b >= 0].tolist())) / len(a))
    return float(np.mean(shares)) if shares else float("nan")
