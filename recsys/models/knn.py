"""User-based KNN rating prediction with a one-pass sweep over the neighbourhood size K.

Prediction for (u, i), over N_K(u, i) = the K users most similar to u among those who rated i:

    mean-centred:   r̄_u + Σ sim(u,v)·(r_vi − r̄_v) / Σ |sim(u,v)|
    weighted mean:        Σ sim(u,v)·r_vi        / Σ |sim(u,v)|

Semantics follow Surprise's `KNNWithMeans` / `KNNBasic` (surprise/prediction_algorithms/knns.py)
so the numbers can be checked against it:
- neighbours are chosen by largest similarity (`heapq.nlargest`); ties keep the order in which
  the raters appear in the training frame, as Surprise's trainset does;
- with `positive_only=True` (Surprise's behaviour) only neighbours with sim > 0 among those K
  contribute; `positive_only=False` also lets negative similarities vote (denominator Σ|sim|);
- when the selected neighbours carry no weight (Σ|sim| = 0) the prediction is the user's mean;
- users or items unseen in training get the global training mean (Surprise's "impossible"
  default). Both fallbacks are flagged in the mask `predict(..., return_fallback=True)` returns
  (no neighbour evidence, or an unseen user or item); `predict_k_curve` returns the mask per K
  and the unseen pairs separately (`KCurve`);
- predictions are clipped to the rating scale.

`predict_k_curve` sorts every (user, item) pair's candidate neighbours once and reads the
prediction for every K off cumulative sums, so a 10-point K curve costs one prediction pass.

No users x users matrix is ever stored (ML-20M's would take 150 GB): the test pairs are grouped
by user, similarities are computed for a block of users against all users (about 1 GiB), the
pairs of the block are scored, and the block is dropped (recsys.models._neighbours). The CPU path
is a pair of numba kernels (plus float32 BLAS for the most popular items where that is exact);
on a CUDA GPU the same steps run in torch (``engine="auto"``). Results are bit-identical to the
former dense implementation, hence to Surprise on ML-100K (bench/knn_vs_surprise.py).
``neighbours="approx"`` trades exactness for candidate lists (recsys.models.approx).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from recsys.errors import InvalidInput, InvalidParameter
from recsys.models.base import (
    RatingMatrix,
    RatingPredictor,
    check_choice,
    check_count,
    check_dense_size,
    check_is_fitted,
    check_positive_ratings,
    check_training_ratings,
)
from recsys.models.similarity import corated_cosine, corated_pearson


class KCurve(NamedTuple):
    """Predictions for a grid of K from one neighbour sort.

    values:   (len(ks), n_pairs) predictions, clipped to the training scale;
    fallback: (len(ks), n_pairs) True where the pair had no neighbour evidence at that K (the
              user's mean) or an unseen user or item (the global mean);
    unknown:  (n_pairs,) True where the user or the item is unseen in training;
    info:     how the neighbours were found: engine ("numba"/"torch"), device, blocks, and for
              ``neighbours="approx"`` the shares of pairs computed exactly and of short lists.
    """

    values: np.ndarray
    fallback: np.ndarray
    unknown: np.ndarray
    info: dict | None = None


def _check_ks(ks) -> np.ndarray:
    ks = np.atleast_1d(np.asarray(ks))
    if ks.size == 0:
        raise InvalidParameter("ks is empty: give at least one neighbourhood size K")
    for k in ks.tolist():
        check_count(k, "K (neighbours)")
    return ks.astype(np.int64)


def _check_flag(value, name: str) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameter(f"{name} must be True or False, got {value!r}")


ENGINES = ("auto", "numba", "torch")
NEIGHBOURS = ("exact", "approx")
# Similarity blocks are (B, n_users) float64: B is chosen so one block stays near this size.
_BLOCK_BYTES = 1 << 30


def resolve_engine(engine: str, device=None) -> tuple[str, object]:
    """("numba", None) or ("torch", torch.device): "auto" picks torch on CUDA, else numba."""
    check_choice(engine, "engine", ENGINES)
    if engine == "numba":
        return "numba", None
    from recsys.config import torch_device_name

    name = str(device) if device is not None else torch_device_name()
    if engine == "auto" and not name.startswith("cuda"):
        return "numba", None  # MPS has no float64; the CPU kernels beat torch on a CPU
    import torch

    return "torch", torch.device(name)


def _check_engine_params(engine, device, block_users) -> None:
    check_choice(engine, "engine", ENGINES)
    if device is not None and not isinstance(device, str):
        raise InvalidParameter(f"device must be None or a torch device name such as 'cuda', got {device!r}")
    check_count(block_users, "block_users", allow_none=True)


class NeighbourhoodPredictor(RatingPredictor):
    """User-similarity KNN machinery without a users x users matrix.

    Subclasses supply similarity *rows* for a block of users (``_similarity_rows``, numpy, and
    ``_similarity_columns_torch``, torch); predictions compute them block by block (see
    :mod:`recsys.models._neighbours`). ``engine``: "auto" (torch on a CUDA GPU, else the numba CPU
    kernels), "numba" or "torch" (on ``device``, default recsys.config.torch_device());
    ``block_users``: users per similarity block (None: about 1 GiB of float64 per block).
    ``neighbours="approx"`` restricts each user's neighbours to ``n_candidates`` candidates found
    with pynndescent, except for items with at most ``exact_raters`` raters (default 0: none),
    computed exactly (see :mod:`recsys.models.approx`); "exact" is Surprise's definition.
    """

    def __init__(
        self,
        k: int = 40,
        mean_centred: bool = True,
        positive_only: bool = True,
        neighbours: str = "exact",
        n_candidates: int = 200,
        exact_raters: int = 0,
        engine: str = "auto",
        device: str | None = None,
        block_users: int | None = None,
    ):
        self.k = k
        self.mean_centred = mean_centred
        self.positive_only = positive_only
        self.neighbours = neighbours
        self.n_candidates = n_candidates
        self.exact_raters = exact_raters
        self.engine = engine
        self.device = device
        self.block_users = block_users

    def _validate_params(self) -> None:
        check_count(self.k, "k (neighbours)")
        _check_flag(self.mean_centred, "mean_centred")
        _check_flag(self.positive_only, "positive_only")
        check_choice(self.neighbours, "neighbours", NEIGHBOURS)
        check_count(self.n_candidates, "n_candidates")
        check_count(self.exact_raters, "exact_raters", minimum=0)
        _check_engine_params(self.engine, self.device, self.block_users)

    # -- subclass hooks --------------------------------------------------------------------
    def _fit_similarity(self, train: pd.DataFrame) -> None:  # pragma: no cover - interface
        """Keep what the similarity rows need (called by fit after ratings_ is set)."""
        raise NotImplementedError

    def _similarity_rows(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(len(rows), n_users) float64 similarities of users `rows` (codes) to every user."""
        raise NotImplementedError  # pragma: no cover - interface

    def _torch_context(self, device):  # pragma: no cover - interface
        """Device-resident state for `_similarity_columns_torch` (built once per prediction call)."""
        raise NotImplementedError

    def _similarity_columns_torch(self, context, rows: np.ndarray):  # pragma: no cover - interface
        """(n_users, len(rows)) float64 tensor: the transpose of `_similarity_rows(rows)`."""
        raise NotImplementedError

    def _similarity_block(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """(len(rows), len(columns)) similarities between two sets of user codes."""
        raise NotImplementedError  # pragma: no cover - interface

    def _pair_similarity(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Similarities of the pairs of user codes (left[p], right[p])."""
        raise NotImplementedError  # pragma: no cover - interface

    def _candidate_vectors(self) -> np.ndarray:  # pragma: no cover - interface
        """Dense user vectors whose cosine neighbours are the approximate option's candidates."""
        raise NotImplementedError

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame) -> NeighbourhoodPredictor:
        self._validate_params()
        check_training_ratings(train)
        self.learn_rating_scale(train)
        self.ratings_ = RatingMatrix(train)
        self.user_means_ = self.ratings_.user_means()
        self.global_mean_ = float(train["rating"].to_numpy(dtype=np.float64).mean())
        self._fit_similarity(train)
        # Raters of each item in training-frame order (Surprise's tie order), as CSR-like arrays,
        # with their ratings (mean-centred when the model is).
        user_codes = self.ratings_.user_codes(train["user_id"].to_numpy())
        item_codes = self.ratings_.item_codes(train["item_id"].to_numpy())
        order = np.argsort(item_codes, kind="stable")
        self.item_raters_ = user_codes[order].astype(np.int64)
        self.item_rater_ratings_ = train["rating"].to_numpy(dtype=np.float64)[order]
        self.item_rater_ptr_ = np.concatenate(
            [[0], np.cumsum(np.bincount(item_codes, minlength=len(self.ratings_.item_ids)))]
        ).astype(np.int64)
        if self.mean_centred:
            self._rater_values = self.item_rater_ratings_ - self.user_means_[self.item_raters_]
        else:
            self._rater_values = self.item_rater_ratings_
        if self.neighbours == "approx":
            from recsys.models.approx import candidate_neighbours, entry_index

            self.candidates_, self.candidate_similarity_ = candidate_neighbours(self, self.n_candidates)
            self._entry_index = entry_index(self)
        return self

    @property
    def similarity_(self) -> np.ndarray:
        """The whole users x users similarity matrix, dense: for small data and analyses only
        (predictions never build it); refused beyond 4 GiB."""
        check_is_fitted(self, "ratings_")
        n_users = len(self.ratings_.user_ids)
        check_dense_size(n_users, n_users, "user-similarity", type(self).__name__)
        return self._similarity_rows(np.arange(n_users))

    def similarity_rows(self, user_ids) -> np.ndarray:
        """(len(user_ids), n_users) similarities of the given users to every training user (in
        ``ratings_.user_ids`` order); unknown users raise InvalidInput."""
        check_is_fitted(self)
        rows = self.ratings_.user_codes(np.atleast_1d(np.asarray(user_ids, dtype=np.int64)))
        if (rows < 0).any():
            raise InvalidInput(f"users not in the training ratings: {np.asarray(user_ids)[rows < 0][:10].tolist()}")
        return self._similarity_rows(rows)

    # -- prediction ------------------------------------------------------------------------
    def _predict(self, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, fallback, _, _ = self._k_curve(user_ids, item_ids, np.array([self.k], dtype=np.int64))
        return values[0], fallback[0]

    def predict_k_curve(self, user_ids, item_ids, ks, progress=None) -> KCurve:
        """Predictions for every K in `ks` from one neighbour sort, with their fallback masks.

        Returns :class:`KCurve` ``(values, fallback, unknown)``; ``values[j]`` equals
        ``UserKNN(k=ks[j])``'s predictions exactly.
        """
        check_is_fitted(self)
        ks = _check_ks(ks)
        user_ids = np.asarray(user_ids)
        item_ids = np.asarray(item_ids)
        if user_ids.shape != item_ids.shape or user_ids.ndim != 1:
            raise InvalidInput(
                f"user_ids {user_ids.shape} and item_ids {item_ids.shape} must be 1-D and of equal length"
            )
        values, fallback, unknown, info = self._k_curve(user_ids, item_ids, ks, progress)
        return KCurve(self.clip(values), fallback, unknown, info)

    def _block_size(self, engine: str, device, n_test_users: int) -> int:
        if self.block_users is not None:
            return int(self.block_users)
        n_users = max(len(self.ratings_.user_ids), 1)
        budget = _BLOCK_BYTES
        if engine == "torch":
            budget = _BLOCK_BYTES // 8  # about a dozen (n_users, B) temporaries per block
            if device.type == "cuda":
                import torch

                # about eight (n_users, B) float64 temporaries per block: a quarter of free memory
                budget = max(budget, torch.cuda.mem_get_info(device)[0] // 32)
        return int(np.clip(budget // (8 * n_users), 1, max(n_test_users, 1)))

    def _k_curve(self, user_ids, item_ids, ks, progress=None):
        """Unclipped (values, fallback) of shape (len(ks), n_pairs) and the unseen-pair mask."""
        from recsys.models import _neighbours as kernels

        users = self.ratings_.user_codes(user_ids)
        items = self.ratings_.item_codes(item_ids)
        n_pairs = len(users)
        predictions = np.full((len(ks), n_pairs), self.global_mean_, dtype=np.float64)
        fallback = np.ones((len(ks), n_pairs), dtype=bool)
        unknown = (users < 0) | (items < 0)
        known = np.flatnonzero(~unknown)
        if len(known) == 0:
            return predictions, fallback, unknown, {"engine": "none", "pairs": 0}
        raters = (self.item_rater_ptr_, self.item_raters_, self._rater_values)
        if self.neighbours == "approx":
            from recsys.models.approx import approx_curve

            info = approx_curve(self, users, items, known, ks, predictions, fallback, progress)
            return predictions, fallback, unknown, {"engine": "numba", "device": "cpu", **info}
        known = known[np.argsort(users[known], kind="stable")]
        test_users, first_pair = np.unique(users[known], return_index=True)
        engine, device = resolve_engine(self.engine, self.device)
        block = self._block_size(engine, device, len(test_users))
        n_blocks = -(-len(test_users) // block)
        pair_bounds = np.r_[first_pair, len(known)]
        if engine == "torch":
            import torch

            context = self._torch_context(device)
            raters_torch = tuple(torch.as_tensor(array, device=device) for array in raters)
        else:
            buffer = np.empty((block, len(self.ratings_.user_ids)))
        for number in range(n_blocks):
            rows = test_users[number * block : (number + 1) * block]
            pairs = known[pair_bounds[number * block] : pair_bounds[min((number + 1) * block, len(test_users))]]
            local = np.searchsorted(rows, users[pairs])
            means = self.user_means_[users[pairs]]
            if engine == "torch":
                columns = self._similarity_columns_torch(context, rows)
                values, empty = kernels.select_curve_torch(
                    columns, local, items[pairs], raters_torch, means, ks, self.positive_only, self.mean_centred
                )
                predictions[:, pairs] = values.cpu().numpy()
                fallback[:, pairs] = empty.cpu().numpy()
                del columns
            else:
                sims = self._similarity_rows(rows, out=buffer)
                kernels.select_curve(
                    sims,
                    local,
                    items[pairs],
                    pairs,
                    raters,
                    means,
                    ks,
                    self.positive_only,
                    self.mean_centred,
                    predictions,
                    fallback,
                )
            if progress is not None:
                progress(number + 1, n_blocks, f"neighbours of users, block {number + 1}/{n_blocks} ({engine})")
        info = {
            "engine": engine,
            "device": str(device) if device is not None else "cpu",
            "blocks": n_blocks,
            "block_users": block,
            "pairs": len(known),
        }
        return predictions, fallback, unknown, info


class UserKNN(NeighbourhoodPredictor):
    """User-based KNN on ratings with Surprise's co-rated cosine or Pearson similarity.

    similarity: "cosine" or "pearson" (computed over items both users rated);
    min_support: pairs of users with fewer common items get similarity 0.
    The remaining parameters are :class:`NeighbourhoodPredictor`'s.
    """

    SIMILARITIES = {"cosine": corated_cosine, "pearson": corated_pearson}
    # items rated by this share of users go through BLAS (see _neighbours.CoratedIndex); same results
    _dense_item_share = 0.2

    def __init__(
        self,
        k: int = 40,
        similarity: str = "cosine",
        min_support: int = 1,
        mean_centred: bool = True,
        positive_only: bool = True,
        neighbours: str = "exact",
        n_candidates: int = 200,
        exact_raters: int = 0,
        engine: str = "auto",
        device: str | None = None,
        block_users: int | None = None,
    ):
        super().__init__(
            k=k,
            mean_centred=mean_centred,
            positive_only=positive_only,
            neighbours=neighbours,
            n_candidates=n_candidates,
            exact_raters=exact_raters,
            engine=engine,
            device=device,
            block_users=block_users,
        )
        self.similarity = similarity
        self.min_support = min_support
        self._validate_params()

    def _validate_params(self) -> None:
        super()._validate_params()
        check_choice(self.similarity, "similarity", sorted(self.SIMILARITIES))
        check_count(self.min_support, "min_support", minimum=0)

    def _fit_similarity(self, train: pd.DataFrame) -> None:
        # The co-rated similarities read zeros of the sparse matrix as "not rated".
        from recsys.models._neighbours import CoratedIndex

        check_positive_ratings(train, type(self).__name__)
        self._corated = CoratedIndex(self.ratings_.matrix, self._dense_item_share)

    def _similarity_rows(self, rows, out=None):
        from recsys.models._neighbours import corated_rows

        return corated_rows(self._corated, rows, self.similarity, self.min_support, out)

    def _torch_context(self, device):
        from recsys.models._neighbours import torch_rating_tensors

        return torch_rating_tensors(self.ratings_.matrix, device)

    def _similarity_columns_torch(self, context, rows):
        from recsys.models._neighbours import corated_columns_torch

        return corated_columns_torch(context, rows, self.similarity, self.min_support, context["data"].device)

    def _similarity_block(self, rows, columns):
        from recsys.models._neighbours import corated_rows

        return corated_rows(self._corated, rows, self.similarity, self.min_support, columns=columns)

    def _pair_similarity(self, left, right):
        from recsys.models.approx import corated_pair_similarity

        return corated_pair_similarity(self.ratings_.matrix, left, right, self.similarity, self.min_support)

    def _candidate_vectors(self):
        from recsys.models.approx import rating_embedding

        return rating_embedding(self.ratings_.matrix)
