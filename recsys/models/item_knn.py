"""ItemKNN for implicit feedback: cosine similarity of items' user sets, with shrinkage.

sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| · |U_j|) + shrink)   (U_i = users with a positive on i)

Each item keeps its `k` most similar items as neighbours (all items when k is None) and
score(u, j) = Σ_{i ∈ I_u, i among j's neighbours} sim(i, j)  (Sarwar et al. 2001; Deshpande &
Karypis 2004). Similarities are computed in column blocks and kept sparse, so memory grows with
items x k, not items².
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.models.base import check_count, check_positive
from recsys.models.implicit import ImplicitRanker, Interactions

_BLOCK_ITEMS = 1024


class ItemKNN(ImplicitRanker):
    def __init__(self, k: int | None = 100, shrink: float = 10.0, positive_threshold: float | None = None):
        self.k = k
        self.shrink = shrink
        self.positive_threshold = positive_threshold
        self._validate_params()

    def _validate_params(self) -> None:
        check_count(self.k, "k (neighbours)", allow_none=True)
        check_positive(self.shrink, "shrink", allow_zero=True)
        check_positive(self.positive_threshold, "positive_threshold", allow_zero=True, allow_none=True)

    def _fit(self, interactions: Interactions, progress) -> None:
        x = interactions.positives.tocsc().astype(np.float64)
        n_items = x.shape[1]
        counts = np.asarray(x.sum(axis=0)).ravel()
        norms = np.sqrt(counts)
        xt = x.T.tocsr()
        blocks = []
        k = n_items if self.k is None else min(self.k, n_items - 1)
        total = max(1, -(-n_items // _BLOCK_ITEMS))
        for number, start in enumerate(range(0, n_items, _BLOCK_ITEMS)):
            stop = min(start + _BLOCK_ITEMS, n_items)
            co = (xt @ x[:, start:stop]).toarray()  # items x block co-occurrence counts
            sims = co / (np.outer(norms, norms[start:stop]) + self.shrink + 1e-12)
            sims[start + np.arange(stop - start), np.arange(stop - start)] = 0.0  # no self-similarity
            if k < n_items:
                # keep each target item's k most similar source items (stable: ties -> lower id)
                order = np.argsort(-sims, axis=0, kind="stable")[:k]
                values = np.take_along_axis(sims, order, axis=0)
                cols = np.broadcast_to(np.arange(stop - start), order.shape)
                block = sp.csc_matrix((values.ravel(), (order.ravel(), cols.ravel())), shape=(n_items, stop - start))
            else:
                block = sp.csc_matrix(sims)
            block.eliminate_zeros()
            blocks.append(block)
            if progress is not None:
                progress(number + 1, total, "item similarities")
        self.similarity_ = sp.hstack(blocks).tocsr()
        self._positives = interactions.positives.tocsr().astype(np.float64)
        self.item_counts_ = counts

    def _score_codes(self, user_codes: np.ndarray) -> np.ndarray:
        return np.asarray((self._positives[user_codes] @ self.similarity_).todense(), dtype=np.float64)

    def _fallback_scores(self) -> np.ndarray:
        return self.item_counts_.astype(np.float64)
